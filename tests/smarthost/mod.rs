//! A small SMTP server standing in for roost's relayhost, with what a real smarthost has:
//! STARTTLS or implicit TLS (a certificate from a test CA made with rcgen), AUTH PLAIN/LOGIN
//! with one user, and DSN in EHLO on request. It records every line it is sent (and whether
//! the connection was encrypted then) and every message it accepts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// How the smarthost protects its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain only; no STARTTLS offered.
    Plain,
    /// STARTTLS offered.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// What the smarthost offers and expects.
#[derive(Clone, Debug)]
pub struct Options {
    pub tls: Security,
    /// The one user and password it accepts; with it, MAIL needs AUTH first.
    pub login: Option<(String, String)>,
    /// The AUTH mechanisms in EHLO (advertised even without TLS, as a careless server would).
    pub mechanisms: &'static str,
    /// Whether EHLO lists DSN.
    pub dsn: bool,
    /// The reply to every RCPT.
    pub rcpt_reply: String,
    /// RCPT lines containing this get 550 5.1.1 instead.
    pub refuse: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: Security::Plain,
            login: None,
            mechanisms: "PLAIN LOGIN",
            dsn: false,
            rcpt_reply: "250 2.1.5 Ok".into(),
            refuse: None,
        }
    }
}

/// One line the smarthost was sent.
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub tls: bool,
}

/// One message it accepted.
#[derive(Clone, Debug)]
pub struct Got {
    /// The whole MAIL FROM line.
    pub mail: String,
    /// The whole RCPT TO line of every accepted recipient.
    pub rcpts: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub authenticated: bool,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    received: Vec<Got>,
    attempts: usize,
}

/// The running smarthost.
pub struct Smarthost {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A test CA and a certificate it signed for `localhost`.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestCa {
    /// A fresh CA and a `localhost` certificate from it.
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "roost test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        TestCa {
            ca_pem: ca.pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes the CA certificate to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .unwrap();
        Arc::new(config)
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

type Conn = BufReader<Box<dyn Stream>>;

fn tls_over(inner: Box<dyn Stream>, config: &Arc<rustls::ServerConfig>) -> Conn {
    let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
    BufReader::new(Box::new(rustls::StreamOwned::new(conn, inner)))
}

fn send(io: &mut Conn, text: &str) -> std::io::Result<()> {
    io.get_mut().write_all(text.as_bytes())?;
    io.get_mut().flush()
}

fn read_line(io: &mut Conn) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if io.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// One connection's progress.
struct Session {
    opts: Options,
    tls: bool,
    authenticated: bool,
    got: Option<Got>,
}

impl Smarthost {
    /// Starts the smarthost on a loopback port, serving at most 100 connections.
    pub fn start(opts: Options, ca: &TestCa) -> Smarthost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let config = ca.server_config();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(100).flatten() {
                let _ = Self::session(stream, &opts, &config, &st);
            }
        });
        Smarthost { addr, state }
    }

    fn session(
        tcp: TcpStream,
        opts: &Options,
        config: &Arc<rustls::ServerConfig>,
        state: &Mutex<State>,
    ) -> std::io::Result<()> {
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        state.lock().unwrap().attempts += 1;
        let mut s = Session {
            opts: opts.clone(),
            tls: opts.tls == Security::Implicit,
            authenticated: false,
            got: None,
        };
        let mut io: Conn = if s.tls {
            tls_over(Box::new(tcp), config)
        } else {
            BufReader::new(Box::new(tcp))
        };
        send(&mut io, "220 smarthost.test ESMTP\r\n")?;
        for _ in 0..1000 {
            let Some(line) = read_line(&mut io)? else {
                return Ok(());
            };
            state.lock().unwrap().seen.push(Seen {
                line: line.clone(),
                tls: s.tls,
            });
            let upper = line.to_ascii_uppercase();
            if upper == "STARTTLS" && opts.tls == Security::StartTls && !s.tls {
                send(&mut io, "220 2.0.0 Ready to start TLS\r\n")?;
                io = tls_over(io.into_inner(), config);
                s.tls = true;
                continue;
            }
            if upper == "QUIT" {
                return send(&mut io, "221 2.0.0 Bye\r\n");
            }
            let reply = s.reply(&line, &mut io, state)?;
            send(&mut io, &reply)?;
        }
        Ok(())
    }

    /// Every line sent to it so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Whether any line sent to it starts with `prefix` (case-insensitively).
    pub fn saw(&self, prefix: &str) -> bool {
        let prefix = prefix.to_ascii_uppercase();
        self.seen()
            .iter()
            .any(|s| s.line.to_ascii_uppercase().starts_with(&prefix))
    }

    /// The messages it accepted.
    pub fn received(&self) -> Vec<Got> {
        self.state.lock().unwrap().received.clone()
    }

    /// Connections so far.
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    /// Waits (bounded) for `n` messages.
    pub fn wait(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the smarthost got {} of {n} messages; saw {:?}",
                got.len(),
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for `n` connections to have ended their first command round.
    pub fn wait_attempts(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.attempts() < n {
            assert!(Instant::now() < deadline, "{} attempts", self.attempts());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Session {
    fn ehlo(&self) -> String {
        let mut lines = vec!["smarthost.test".to_string(), "8BITMIME".into()];
        if self.opts.tls == Security::StartTls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.opts.login.is_some() {
            lines.push(format!("AUTH {}", self.opts.mechanisms));
        }
        if self.opts.dsn {
            lines.push("DSN".into());
        }
        lines.push("HELP".into());
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
            .collect()
    }

    fn reply(
        &mut self,
        line: &str,
        io: &mut Conn,
        state: &Mutex<State>,
    ) -> std::io::Result<String> {
        let upper = line.to_ascii_uppercase();
        Ok(if upper.starts_with("EHLO") {
            self.ehlo()
        } else if upper.starts_with("AUTH ") {
            self.auth(line, io, state)?
        } else if upper.starts_with("MAIL FROM:") {
            if self.opts.login.is_some() && !self.authenticated {
                return Ok("530 5.7.0 Authentication required\r\n".into());
            }
            self.got = Some(Got {
                mail: line.to_string(),
                rcpts: Vec::new(),
                data: Vec::new(),
                tls: self.tls,
                authenticated: self.authenticated,
            });
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let refused = self
                .opts
                .refuse
                .as_ref()
                .is_some_and(|r| line.contains(r.as_str()));
            let reply = if refused {
                "550 5.1.1 No such user here".to_string()
            } else {
                self.opts.rcpt_reply.clone()
            };
            if let (true, Some(got)) = (reply.starts_with('2'), self.got.as_mut()) {
                got.rcpts.push(line.to_string());
            }
            format!("{reply}\r\n")
        } else if upper == "DATA" {
            send(io, "354 go ahead\r\n")?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                io.read_until(b'\n', &mut l)?;
                if l.is_empty() || l == b".\r\n" {
                    break;
                }
                data.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            }
            if let Some(mut got) = self.got.take() {
                got.data = data;
                state.lock().unwrap().received.push(got);
            }
            "250 2.0.0 Ok: queued\r\n".into()
        } else {
            "250 2.0.0 Ok\r\n".into()
        })
    }

    /// AUTH PLAIN (initial response or not) and AUTH LOGIN.
    fn auth(&mut self, line: &str, io: &mut Conn, state: &Mutex<State>) -> std::io::Result<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |s: &str| {
            String::from_utf8(b64.decode(s.trim()).unwrap_or_default()).unwrap_or_default()
        };
        let next = |io: &mut Conn, prompt: &str| -> std::io::Result<String> {
            send(io, &format!("334 {prompt}\r\n"))?;
            let line = read_line(io)?.unwrap_or_default();
            state.lock().unwrap().seen.push(Seen {
                line: line.clone(),
                tls: self.tls,
            });
            Ok(line)
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let mechanism = words.get(1).map(|m| m.to_ascii_uppercase());
        let (user, password) = match mechanism.as_deref() {
            Some("PLAIN") => {
                let blob = match words.get(2) {
                    Some(b) => decode(b),
                    None => decode(&next(io, "")?),
                };
                let mut parts = blob.split('\0').skip(1);
                (
                    parts.next().unwrap_or_default().to_string(),
                    parts.next().unwrap_or_default().to_string(),
                )
            }
            Some("LOGIN") => {
                let user = decode(&next(io, &b64.encode("Username:"))?);
                (user, decode(&next(io, &b64.encode("Password:"))?))
            }
            _ => return Ok("504 5.5.4 Unrecognized authentication type\r\n".into()),
        };
        if self.opts.login.as_ref() == Some(&(user, password)) {
            self.authenticated = true;
            Ok("235 2.7.0 Authentication successful\r\n".into())
        } else {
            Ok("535 5.7.8 Authentication credentials invalid\r\n".into())
        }
    }
}
