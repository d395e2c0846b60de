//! Outlook's Autodiscover over HTTPS (`[autoconfig] listen_tls`), as Outlook meets it: a
//! certificate checked against a CA the client trusts, the POX answer naming the listeners
//! roost really has, a certificate reload on SIGHUP, and the config error when there is no
//! certificate to serve.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{base_config, roost_bin, TestServer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};

/// A test certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Writes a server certificate for `localhost` signed by this CA, and its key, to `dir`.
    fn issue(&self, dir: &Path) {
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    }

    /// A client configuration that trusts this CA only (the platform's roots are not loaded).
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert.der().to_vec()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// One HTTPS exchange with a client that checks the certificate (as `localhost`): status code
/// and body, or the TLS error.
fn https(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    request: &str,
) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// What Outlook POSTs.
fn autodiscover_request(email: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>{email}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
    );
    format!(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.org\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `(Type, Server, Port, Encryption, LoginName)` of every `<Protocol>` in a POX answer.
fn protocols(xml: &str) -> Vec<Vec<String>> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("Protocol"))
        .map(|n| {
            ["Type", "Server", "Port", "Encryption", "LoginName"]
                .iter()
                .map(|tag| {
                    n.children()
                        .find(|c| c.has_tag_name(*tag))
                        .and_then(|c| c.text())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

fn config(certs: &Path, protocols: &[&str]) -> String {
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[status]\nlisten = \"127.0.0.1:0\"\n\
         [autoconfig]\nlisten_tls = \"127.0.0.1:0\"\nhostname = \"mail.example.com\"\n",
        certs.join("server.crt").display(),
        certs.join("server.key").display()
    );
    base_config(protocols, &extra)
}

#[test]
fn outlook_gets_the_real_listeners_over_https_with_a_certificate_it_can_check() {
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("roost test CA");
    ca.issue(certs.path());
    let server = TestServer::start(&config(
        certs.path(),
        &["imap", "imaps", "pop3", "submission", "submissions"],
    ));
    let port = |proto: &str| server.addr(proto).port().to_string();
    let addr = server.addr("autoconfig-tls");

    let (code, xml) = https(
        addr,
        ca.client(),
        &autodiscover_request("alice@example.org"),
    )
    .unwrap();
    assert_eq!(code, 200, "{xml}");
    let row = |kind: &str, proto: &str, encryption: &str| {
        vec![
            kind.to_string(),
            "mail.example.com".into(),
            port(proto),
            encryption.into(),
            "alice@example.org".into(),
        ]
    };
    assert_eq!(
        protocols(&xml),
        vec![
            row("IMAP", "imaps", "SSL"),
            row("POP3", "pop3", "TLS"),
            row("SMTP", "submissions", "SSL"),
        ],
        "{xml}"
    );

    // Thunderbird's document is there too, over the same HTTPS.
    let (code, xml) = https(
        addr,
        ca.client(),
        "GET /mail/config-v1.1.xml?emailaddress=alice%40example.org HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!(code, 200, "{xml}");
    assert!(
        xml.contains(&format!("<port>{}</port>", port("imaps"))),
        "{xml}"
    );

    // A client that trusts another CA refuses the certificate: it is really being checked.
    let stranger = Ca::new("someone else's CA");
    let refused = https(addr, stranger.client(), &autodiscover_request("a@b.c")).unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");

    // Plain HTTP on the HTTPS port gets no answer, and the status page lists the listener.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1"));
    let (_, body) = status_json(&server);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listener = report["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["proto"] == "autoconfig-tls")
        .cloned()
        .unwrap_or_default();
    assert_eq!(listener["local"], addr.to_string(), "{report:#}");
    assert_eq!(listener["tls"], "implicit");
}

fn status_json(server: &TestServer) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr("status")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn sighup_gives_autodiscover_the_new_certificate_too() {
    let certs = tempfile::tempdir().unwrap();
    let old = Ca::new("old CA");
    old.issue(certs.path());
    let server = TestServer::start(&config(certs.path(), &["imaps"]));
    let addr = server.addr("autoconfig-tls");
    let request = autodiscover_request("alice@example.org");
    assert_eq!(https(addr, old.client(), &request).unwrap().0, 200);

    // A certificate from another CA, as a renewal with a new chain would bring, then SIGHUP.
    let new = Ca::new("new CA");
    new.issue(certs.path());
    server.signal("HUP");
    server.wait_for_log("SIGHUP: TLS certificate reloaded");
    // As root the login process installs the pair a moment after the master logs it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match https(addr, new.client(), &request) {
            Ok((code, xml)) => {
                assert_eq!(code, 200, "{xml}");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "never reloaded: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(https(addr, old.client(), &request).is_err());
}

#[test]
fn listen_tls_without_a_certificate_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:{PLAIN}pw\n").unwrap();
    let path = dir.path().join("roost.toml");
    std::fs::write(
        &path,
        "protocols = [\"imaps\"]\n[listen]\nimaps = \"127.0.0.1:0\"\n[mail]\n\
         location = \"maildir:/srv/mail/%u\"\n[auth]\npassdb = [\"passwd-file:users\"]\n\
         [autoconfig]\nlisten_tls = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = Command::new(roost_bin())
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "roost.toml:9: autoconfig.listen_tls: needs the certificate of [tls] cert and key"
        ),
        "{text}"
    );
}
