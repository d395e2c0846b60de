//! Mail-client self-configuration (`[autoconfig] listen`, off by default), so a user types only
//! an address and a password:
//!
//! ```text
//!   GET  /mail/config-v1.1.xml?emailaddress=…                 Thunderbird (autoconfig.DOMAIN)
//!   GET  /.well-known/autoconfig/mail/config-v1.1.xml?…       Thunderbird (DOMAIN)
//!   POST /autodiscover/autodiscover.xml                        Outlook's POX Autodiscover
//! ```
//!
//! Both documents are generated from the listeners roost actually bound (their ports and TLS
//! modes), `[autoconfig] hostname` and the configured user-name form; implicit TLS is offered
//! before STARTTLS (RFC 8314). Outlook asks over HTTPS only: `[autoconfig] listen_tls` serves
//! the same documents with the mail certificate (reloaded with it on SIGHUP).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::http::{self, Request, Response};
use super::page::escape;
use crate::config::{AutoconfigConfig, Family, Protocol, UsernameForm};
use crate::listen::tls::TlsStore;

/// `Content-Type` of both documents.
const XML: &str = "application/xml; charset=utf-8";
/// Outlook's response schema.
const POX_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// What the documents are made from.
pub struct Autoconfig {
    /// `[autoconfig]`.
    pub config: AutoconfigConfig,
    /// The bound mail listeners.
    pub listeners: Vec<(Protocol, SocketAddr)>,
}

/// Serves an autoconfig listener until shutdown: plain HTTP, or HTTPS with `tls` (the mail
/// listeners' certificate store, so it follows their reloads).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsStore>>,
    autoconfig: Arc<Autoconfig>,
    open: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    http::serve(listener, tls, open, shutdown, move |request| {
        let autoconfig = Arc::clone(&autoconfig);
        async move { autoconfig.respond(&request) }
    })
    .await;
}

/// `local@domain`, if the text is a plausible address (it is echoed back, escaped).
fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.trim().split_once('@')?;
    let plausible = |part: &str| {
        !part.is_empty()
            && part.len() <= 254
            && part
                .chars()
                .all(|c| c.is_ascii_graphic() && !"<>&\"'@".contains(c))
    };
    (plausible(local) && plausible(domain)).then_some((local, domain))
}

impl Autoconfig {
    /// Answers one request.
    pub fn respond(&self, request: &Request) -> Response {
        let path = request.path.to_ascii_lowercase();
        match (request.method.as_str(), path.as_str()) {
            ("GET", "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml") => {
                let address = request.query_param("emailaddress");
                let domain = address.as_deref().and_then(split_address).map(|(_, d)| d);
                Response::new(200, XML, self.thunderbird(domain))
            }
            ("POST", "/autodiscover/autodiscover.xml") => {
                let body = String::from_utf8_lossy(&request.body);
                Response::new(200, XML, self.outlook(email_in_request(&body)))
            }
            (_, "/autodiscover/autodiscover.xml") => {
                Response::text(405, "POST an Autodiscover request\n").with_header("Allow", "POST")
            }
            _ => Response::text(
                404,
                "Not found: /mail/config-v1.1.xml or POST /autodiscover/autodiscover.xml\n",
            ),
        }
    }

    /// The listeners of a family, implicit TLS first.
    fn offered(&self, family: Family) -> Vec<(Protocol, SocketAddr)> {
        let mut offered: Vec<_> = self
            .listeners
            .iter()
            .copied()
            .filter(|(p, _)| p.family() == family)
            .collect();
        offered.sort_by_key(|(p, _)| !p.implicit_tls());
        offered
    }

    /// Thunderbird's `config-v1.1.xml`.
    pub fn thunderbird(&self, domain: Option<&str>) -> String {
        let host = escape(&self.config.hostname);
        let domain = escape(domain.unwrap_or(&self.config.hostname));
        let username = match self.config.username {
            UsernameForm::Address => "%EMAILADDRESS%",
            UsernameForm::LocalPart => "%EMAILLOCALPART%",
        };
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
             <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
             <displayName>{host}</displayName>\n    <displayShortName>{host}</displayShortName>\n"
        );
        for (family, element, kind) in [
            (Family::Imap, "incomingServer", "imap"),
            (Family::Pop3, "incomingServer", "pop3"),
            (Family::Smtp, "outgoingServer", "smtp"),
        ] {
            for (protocol, addr) in self.offered(family) {
                let socket = if protocol.implicit_tls() {
                    "SSL"
                } else {
                    "STARTTLS"
                };
                let _ = write!(
                    out,
                    "    <{element} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      \
                     <port>{}</port>\n      <socketType>{socket}</socketType>\n      \
                     <authentication>password-cleartext</authentication>\n      \
                     <username>{username}</username>\n    </{element}>\n",
                    addr.port()
                );
            }
        }
        out.push_str("  </emailProvider>\n</clientConfig>\n");
        out
    }

    /// Outlook's POX Autodiscover answer: one `<Protocol>` per family, the best-protected.
    pub fn outlook(&self, email: Option<&str>) -> String {
        let host = escape(&self.config.hostname);
        let login = email.and_then(split_address).map(|(local, domain)| {
            escape(&match self.config.username {
                UsernameForm::Address => format!("{local}@{domain}"),
                UsernameForm::LocalPart => local.to_string(),
            })
        });
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
             <Response xmlns=\"{POX_RESPONSE}\">\n    <Account>\n      <AccountType>email</AccountType>\n      \
             <Action>settings</Action>\n"
        );
        for (family, kind) in [
            (Family::Imap, "IMAP"),
            (Family::Pop3, "POP3"),
            (Family::Smtp, "SMTP"),
        ] {
            let Some((protocol, addr)) = self.offered(family).into_iter().next() else {
                continue;
            };
            let encryption = if protocol.implicit_tls() {
                "SSL"
            } else {
                "TLS"
            };
            let _ = write!(
                out,
                "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        \
                 <Port>{}</Port>\n        <DomainRequired>off</DomainRequired>\n",
                addr.port()
            );
            if let Some(login) = &login {
                let _ = writeln!(out, "        <LoginName>{login}</LoginName>");
            }
            let _ = write!(
                out,
                "        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>{encryption}</Encryption>\n        \
                 <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
            );
        }
        out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
        out
    }
}

/// The `<EMailAddress>` of an Autodiscover request, without an XML parser: the element is
/// flat text, and what we take from it is checked by [`split_address`] and escaped.
fn email_in_request(body: &str) -> Option<&str> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let len = body[start..].find("</EMailAddress>")?;
    Some(body[start..start + len].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn autoconfig(username: UsernameForm) -> Autoconfig {
        Autoconfig {
            config: AutoconfigConfig {
                listen: "127.0.0.1:0".parse().ok(),
                listen_tls: None,
                hostname: "mail.example.com".into(),
                username,
            },
            listeners: vec![
                (Protocol::Imap, "0.0.0.0:143".parse().unwrap()),
                (Protocol::Imaps, "0.0.0.0:993".parse().unwrap()),
                (Protocol::Submission, "0.0.0.0:587".parse().unwrap()),
            ],
        }
    }

    #[test]
    fn thunderbird_gets_implicit_tls_first_and_only_what_listens() {
        let xml = autoconfig(UsernameForm::Address).thunderbird(Some("example.org"));
        let imaps = xml.find("<port>993</port>").unwrap();
        let imap = xml.find("<port>143</port>").unwrap();
        assert!(imaps < imap, "{xml}");
        assert!(xml.contains("<emailProvider id=\"example.org\">"));
        assert!(xml.contains("<outgoingServer type=\"smtp\">"));
        assert!(!xml.contains("pop3"), "{xml}");
        assert!(xml.contains("%EMAILADDRESS%"));
    }

    #[test]
    fn outlook_login_name_follows_the_username_form_and_hostile_input_is_dropped() {
        let body = "<Autodiscover><Request><EMailAddress>alice@example.org</EMailAddress></Request></Autodiscover>";
        let local = autoconfig(UsernameForm::LocalPart).outlook(email_in_request(body));
        assert!(local.contains("<LoginName>alice</LoginName>"), "{local}");
        assert!(local.contains("<Port>993</Port>") && !local.contains("<Port>143</Port>"));
        assert!(
            local.contains("<Encryption>TLS</Encryption>"),
            "STARTTLS submission"
        );
        let hostile = "<EMailAddress><x>@evil</EMailAddress>";
        let xml = autoconfig(UsernameForm::Address).outlook(email_in_request(hostile));
        assert!(!xml.contains("LoginName") && !xml.contains("<x>"), "{xml}");
    }
}
