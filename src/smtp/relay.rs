//! The SMTP client that hands queued mail to the relayhost, built on lettre's low-level
//! connection: one connection per queue entry, TLS as configured (STARTTLS or implicit, the
//! certificate checked against the system's roots or `relayhost_ca`), AUTH PLAIN or LOGIN when
//! a password is configured, and per-recipient results. A password is never sent over a
//! connection that is not encrypted. The message is mapped from its queue file, not copied.

use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use roost_protocol::smtp::params::{is_orcpt, is_xtext};

use super::deliver::Outcome;
use super::queue::{Envelope, Recipient};
use crate::config::smtp::{RelayCredentials, RelayTls};
use crate::config::{Relayhost, SmtpConfig};

/// How long connecting, the greeting and EHLO may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one reply may take (RFC 5321 4.5.3.2 asks clients for minutes; this is enough for
/// an MTA on the same network).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long sending the message and reading the reply to its end may take.
const DATA_TIMEOUT: Duration = Duration::from_secs(600);
/// Why an attempt with a password stops on a connection without TLS.
pub const NO_TLS_FOR_PASSWORD: &str = "relayhost offers no TLS; not sending the password in clear";

/// What the relayhost did with the message.
#[derive(Debug)]
pub struct Sent {
    /// One outcome per recipient, in order.
    pub outcomes: Vec<Outcome>,
    /// Whether the relayhost offered DSN and got the sender's DSN parameters: it sends the
    /// reports from here on.
    pub dsn_passed_on: bool,
}

/// Whether the sender gave any DSN parameter for this message or these recipients.
fn wants_dsn(envelope: &Envelope, rcpts: &[Recipient]) -> bool {
    envelope.ret.is_some()
        || envelope.envid.is_some()
        || rcpts
            .iter()
            .any(|r| r.notify.is_some() || r.orcpt.is_some())
}

/// Why the conversation with the relayhost broke down (every recipient gets this).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Connecting, TLS, reading or writing failed or timed out, or the relayhost lacks what
    /// the attempt needs.
    #[error("relayhost {host}: {what}")]
    Network {
        /// The relayhost.
        host: String,
        /// What happened.
        what: String,
    },
    /// A reply that refuses the whole transaction.
    #[error("relayhost {host} said: {reply}")]
    Refused {
        /// The relayhost.
        host: String,
        /// The reply, on one line.
        reply: String,
        /// Whether it was 5xx (and retrying will not help).
        permanent: bool,
    },
}

impl RelayError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused {
                permanent: true, ..
            } => Outcome::Permanent(self.to_string()),
            _ => Outcome::Temporary(self.to_string()),
        }
    }
}

/// A lettre error as ours: a reply keeps its code and text, anything else is a network error.
fn from_lettre(host: &str, e: &lettre::transport::smtp::Error) -> RelayError {
    match e.status() {
        Some(code) => RelayError::Refused {
            host: host.to_string(),
            reply: match std::error::Error::source(e) {
                Some(text) => format!("{code} {text}"),
                None => code.to_string(),
            },
            permanent: e.is_permanent(),
        },
        None => RelayError::Network {
            host: host.to_string(),
            what: e.to_string(),
        },
    }
}

/// Runs one lettre step under a deadline.
async fn timed<T>(
    host: &str,
    limit: Duration,
    step: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, RelayError> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(from_lettre(host, &e)),
        Err(_) => Err(RelayError::Network {
            host: host.to_string(),
            what: "timed out waiting for a reply".into(),
        }),
    }
}

/// The TLS settings for the relayhost: its host name checked, against `ca` or the system's
/// roots.
fn tls_parameters(relayhost: &Relayhost, ca: Option<&Path>) -> Result<TlsParameters, RelayError> {
    let network = |what: String| RelayError::Network {
        host: relayhost.to_string(),
        what,
    };
    let mut builder = TlsParameters::builder(relayhost.host.clone());
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| network(format!("{}: {e}", ca.display())))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| network(format!("{}: {e}", ca.display())))?;
        builder = builder
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| network(format!("TLS set-up: {e}")))
}

/// One connection to the relayhost.
struct Client {
    conn: AsyncSmtpConnection,
    host: String,
    helo: ClientId,
}

impl Client {
    /// Connects (TLS from the start for `smtps://`), reads the greeting and sends EHLO.
    async fn connect(
        config: &SmtpConfig,
        relayhost: &Relayhost,
        helo: &str,
    ) -> Result<Client, RelayError> {
        let host = relayhost.to_string();
        let helo = ClientId::Domain(helo.to_string());
        let tls = match relayhost.tls {
            RelayTls::Implicit => Some(tls_parameters(relayhost, config.relayhost_ca.as_deref())?),
            RelayTls::Plain | RelayTls::StartTls => None,
        };
        let target = (relayhost.host.as_str(), relayhost.port);
        let connect =
            AsyncSmtpConnection::connect_tokio1(target, Some(CONNECT_TIMEOUT), &helo, tls, None);
        let conn = timed(&host, CONNECT_TIMEOUT + REPLY_TIMEOUT, connect).await?;
        Ok(Client { conn, host, helo })
    }

    fn network(&self, what: impl Into<String>) -> RelayError {
        RelayError::Network {
            host: self.host.clone(),
            what: what.into(),
        }
    }

    /// STARTTLS where the configuration asks for it, or where a password is to be sent.
    async fn secure(
        &mut self,
        config: &SmtpConfig,
        relayhost: &Relayhost,
    ) -> Result<(), RelayError> {
        let needed = relayhost.tls == RelayTls::StartTls || config.relay_credentials.is_some();
        if self.conn.is_encrypted() || !needed {
            return Ok(());
        }
        if !self.conn.can_starttls() {
            return Err(self.network(if config.relay_credentials.is_some() {
                NO_TLS_FOR_PASSWORD
            } else {
                "relayhost offers no STARTTLS"
            }));
        }
        let params = tls_parameters(relayhost, config.relayhost_ca.as_deref())?;
        let starttls = self.conn.starttls(params, &self.helo);
        timed(&self.host.clone(), REPLY_TIMEOUT, starttls).await
    }

    /// AUTH PLAIN (or LOGIN, if that is all the relayhost offers), only over TLS; a refusal
    /// (535, a wrong password) is temporary: the admin can fix the file.
    async fn authenticate(&mut self, credentials: &RelayCredentials) -> Result<(), RelayError> {
        if !self.conn.is_encrypted() {
            return Err(self.network(NO_TLS_FOR_PASSWORD));
        }
        let mechanisms = [Mechanism::Plain, Mechanism::Login];
        if self
            .conn
            .server_info()
            .get_auth_mechanism(&mechanisms)
            .is_none()
        {
            return Err(self.network("relayhost offers neither AUTH PLAIN nor AUTH LOGIN"));
        }
        let credentials = Credentials::new(credentials.user.clone(), credentials.password.clone());
        let host = self.host.clone();
        match timed(
            &host,
            REPLY_TIMEOUT,
            self.conn.auth(&mechanisms, &credentials),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(RelayError::Refused { host, reply, .. }) => Err(RelayError::Refused {
                host,
                reply: format!("authentication failed: {reply}"),
                permanent: false,
            }),
            Err(e) => Err(e),
        }
    }

    /// Whether the relayhost offers DSN (RFC 3461): lettre keeps only the extensions it knows,
    /// so EHLO is asked again (before AUTH, after STARTTLS).
    async fn offers_dsn(&mut self) -> Result<bool, RelayError> {
        let reply = self.command(&format!("EHLO {}", self.helo)).await?;
        let dsn = reply.message().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("DSN"))
        });
        Ok(dsn)
    }

    /// One command line (CRLF added); a refusal is an error.
    async fn command(&mut self, line: &str) -> Result<Response, RelayError> {
        let host = self.host.clone();
        timed(
            &host,
            REPLY_TIMEOUT,
            self.conn.command(format!("{line}\r\n")),
        )
        .await
    }

    /// What a reply (or a refusal) means for the recipients it answers.
    fn outcome(&self, result: Result<Response, RelayError>) -> Result<Outcome, RelayError> {
        match result {
            Ok(_) => Ok(Outcome::Delivered),
            Err(e @ RelayError::Refused { .. }) => Ok(e.outcome()),
            Err(e) => Err(e),
        }
    }

    /// MAIL FROM, with the parameters the message needs and the relayhost offers; a message
    /// that needs SMTPUTF8 from a relayhost without it fails for good.
    async fn mail_from(&mut self, envelope: &Envelope, dsn: bool) -> Result<(), RelayError> {
        use lettre::transport::smtp::extension::Extension;
        let info = self.conn.server_info();
        let mut mail = format!("MAIL FROM:<{}>", envelope.from);
        if envelope.eight_bit && info.supports_feature(Extension::EightBitMime) {
            mail.push_str(" BODY=8BITMIME");
        }
        if envelope.smtputf8 {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(RelayError::Refused {
                    host: self.host.clone(),
                    reply: "does not support SMTPUTF8, which this message needs".into(),
                    permanent: true,
                });
            }
            mail.push_str(" SMTPUTF8");
        }
        if dsn {
            if let Some(ret) = envelope.ret {
                mail.push_str(&format!(" RET={ret}"));
            }
            // Checked again: the queue file is not trusted to hold only what the session let in.
            if let Some(envid) = envelope
                .envid
                .as_deref()
                .filter(|e| is_xtext(e) && e.len() <= 100)
            {
                mail.push_str(&format!(" ENVID={envid}"));
            }
        }
        self.command(&mail).await.map(drop)
    }

    /// One RCPT TO per recipient; a refusal becomes that recipient's outcome. Returns the
    /// indexes of the recipients accepted.
    async fn rcpt_to(
        &mut self,
        rcpts: &[Recipient],
        outcomes: &mut [Outcome],
        dsn: bool,
    ) -> Result<Vec<usize>, RelayError> {
        let mut accepted = Vec::new();
        for (i, (rcpt, slot)) in rcpts.iter().zip(outcomes.iter_mut()).enumerate() {
            let mut line = format!("RCPT TO:<{}>", rcpt.address);
            if dsn {
                if let Some(notify) = rcpt.notify {
                    line.push_str(&format!(" NOTIFY={notify}"));
                }
                if let Some(orcpt) = rcpt.orcpt.as_deref().filter(|o| is_orcpt(o)) {
                    line.push_str(&format!(" ORCPT={orcpt}"));
                }
            }
            let reply = self.command(&line).await;
            match self.outcome(reply)? {
                Outcome::Delivered => accepted.push(i),
                refused => *slot = refused,
            }
        }
        Ok(accepted)
    }

    /// DATA, the message (dot-stuffed by lettre), and the verdict on it.
    async fn data(&mut self, message: &File) -> Result<Outcome, RelayError> {
        // SAFETY: a queue file is never written after its commit, and the caller holds the
        // entry's lock, so the mapping's bytes do not change while it is read.
        let map = match message.metadata().map(|m| m.len()) {
            Ok(0) => None,
            _ => Some(
                unsafe { memmap2::Mmap::map(message) }
                    .map_err(|e| self.network(format!("reading the message: {e}")))?,
            ),
        };
        let bytes: &[u8] = map.as_deref().unwrap_or_default();
        // lettre ends the data with CRLF . CRLF: the message's own last line end is that CRLF.
        let body = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        self.command("DATA").await?;
        let host = self.host.clone();
        let sent = self.conn.message_iter(body.chunks(64 * 1024));
        let end = timed(&host, DATA_TIMEOUT, sent).await;
        self.outcome(end)
    }
}

/// Sends the message to `rcpts` through the relayhost; one outcome per recipient, in order.
pub async fn send(
    config: &SmtpConfig,
    relayhost: &Relayhost,
    helo: &str,
    envelope: &Envelope,
    message: &File,
    rcpts: &[Recipient],
) -> Sent {
    let mut sent = Sent {
        outcomes: vec![Outcome::Temporary("not attempted".into()); rcpts.len()],
        dsn_passed_on: false,
    };
    let run = transaction(config, relayhost, helo, envelope, message, rcpts, &mut sent);
    if let Err(e) = run.await {
        tracing::warn!(id = %envelope.id, "relay: {e}");
        for o in sent.outcomes.iter_mut() {
            if matches!(o, Outcome::Temporary(_)) {
                *o = e.outcome();
            }
        }
    }
    sent
}

/// One SMTP transaction: recipients the relayhost refuses get their own outcome, those it
/// accepted share the verdict on the message; an error ends it for all not yet decided.
async fn transaction(
    config: &SmtpConfig,
    relayhost: &Relayhost,
    helo: &str,
    envelope: &Envelope,
    message: &File,
    rcpts: &[Recipient],
    sent: &mut Sent,
) -> Result<(), RelayError> {
    if let (Some(file), None) = (&config.relayhost_password_file, &config.relay_credentials) {
        return Err(RelayError::Network {
            host: relayhost.to_string(),
            what: format!(
                "{} could not be read when the configuration was loaded; not relaying without the login",
                file.display()
            ),
        });
    }
    let mut c = Client::connect(config, relayhost, helo).await?;
    c.secure(config, relayhost).await?;
    let dsn = wants_dsn(envelope, rcpts) && c.offers_dsn().await?;
    if let Some(credentials) = &config.relay_credentials {
        c.authenticate(credentials).await?;
    }
    c.mail_from(envelope, dsn).await?;
    let accepted = c.rcpt_to(rcpts, &mut sent.outcomes, dsn).await?;
    if !accepted.is_empty() {
        let verdict = c.data(message).await?;
        for i in accepted {
            if let Some(o) = sent.outcomes.get_mut(i) {
                *o = verdict.clone();
            }
        }
    }
    sent.dsn_passed_on = dsn;
    let host = c.host.clone();
    let _ = timed(&host, REPLY_TIMEOUT, c.conn.quit()).await;
    Ok(())
}
