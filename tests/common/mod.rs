//! Test support: start the real `roost` binary with a temp config on ephemeral loopback ports,
//! wait until it listens, read its log, and talk to it with line clients or Python's stdlib
//! mail clients (imaplib, poplib, smtplib), which nobody here wrote.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The roost binary under test: `ROOST_BIN` when set (`.ci/test` copies the binaries where
/// the unprivileged test user can run them), else the one cargo built.
pub fn roost_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("ROOST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_roost").to_string())
    })
}

/// A script of `tests/clients/`: under `ROOST_TEST_ROOT` when set (see [`roost_bin`]), else
/// in the source tree.
pub fn client_script(name: &str) -> PathBuf {
    let root = std::env::var_os("ROOST_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    root.join("tests").join("clients").join(name)
}

/// Whether the tests run as root (CI does): sessions then run in workers as the mail owner.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// uid of a system user, from `id -u`.
pub fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").arg("-u").arg(user).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// A running server in its own temp dir.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub addrs: HashMap<String, SocketAddr>,
    /// Unix sockets listened on (LMTP), by protocol.
    pub sockets: HashMap<String, PathBuf>,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// The virtual-mail owner used when tests run as root.
pub const ROOT_MAIL_USER: &str = "nobody";

/// A plaintext password for each test user of the default passwd-file.
pub const PASSWORD: &str = "S3cret pass";

/// Writes the default passwd-file (one user per scheme, all with [`PASSWORD`]).
pub fn write_users(dir: &Path) {
    let mut text = String::from("# test users\n");
    for (user, scheme) in [
        ("plain", "PLAIN"),
        ("sha512", "SHA512-CRYPT"),
        ("sha256", "SHA256-CRYPT"),
        ("blf", "BLF-CRYPT"),
        ("argon", "ARGON2ID"),
    ] {
        let out = Command::new(roost_bin())
            .args(["pw", "-s", scheme, "-p", PASSWORD])
            .output()
            .expect("roost pw runs");
        assert!(out.status.success(), "roost pw -s {scheme} failed: {out:?}");
        let hash = String::from_utf8(out.stdout).unwrap();
        text.push_str(&format!("{user}:{}::::::\n", hash.trim()));
    }
    std::fs::write(dir.join("users"), text).unwrap();
}

/// The base config: the given protocols on 127.0.0.1:0, passwd-file users, short timeouts.
pub fn base_config(protocols: &[&str], extra: &str) -> String {
    let quoted: Vec<String> = protocols.iter().map(|p| format!("\"{p}\"")).collect();
    let mut listen = String::new();
    for p in protocols {
        listen.push_str(&format!("{p} = \"127.0.0.1:0\"\n"));
    }
    let mail_user = if is_root() {
        format!("user = \"{ROOT_MAIL_USER}\"\n")
    } else {
        String::new()
    };
    format!(
        "protocols = [{}]\n[listen]\n{listen}[mail]\nlocation = \"maildir:MAILROOT/%u\"\n{mail_user}{extra}",
        quoted.join(", ")
    )
}

impl TestServer {
    /// Starts roost with `config` (MAILROOT replaced by the temp mail dir) and waits for its
    /// listeners. `config` should not contain `[auth]` unless `with_auth` is false.
    pub fn start(config: &str) -> TestServer {
        Self::try_start(config).unwrap_or_else(|log| panic!("server did not start:\n{log}"))
    }

    /// Like [`start`], but returns the log instead of panicking when the server exits.
    pub fn try_start(config: &str) -> Result<TestServer, String> {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        if is_root() {
            // The workers run as the mail owner: let them reach and own the mail root.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
            let status = Command::new("chown")
                .arg(ROOT_MAIL_USER)
                .arg(&mail)
                .status()
                .unwrap();
            assert!(status.success());
        }
        write_users(dir.path());
        let text = config.replace("MAILROOT", &mail.display().to_string());
        let text = with_queue_dir(text);
        let text = if text.contains("[auth]") {
            text
        } else {
            format!("{text}\n[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 300\n")
        };
        let path = dir.path().join("roost.toml");
        std::fs::write(&path, &text).unwrap();
        let mut child = Command::new(roost_bin())
            .args(["serve", "-c"])
            .arg(&path)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let expected = text
            .lines()
            .find(|l| l.starts_with("protocols"))
            .map(|l| l.matches('"').count() / 2)
            .unwrap_or(0)
            + usize::from(text.contains("[status]"))
            + usize::from(text.contains("[autoconfig]"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let found = parse_listening(&line);
                log2.lock().unwrap().push(line);
                if let Some((protocol, endpoint)) = found {
                    let _ = tx.send(Startup::Listening(protocol, endpoint));
                }
            }
            let _ = tx.send(Startup::LogEnded);
        });
        let mut addrs = HashMap::new();
        let mut sockets = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let whole_log = |log: &Arc<Mutex<Vec<String>>>| log.lock().unwrap().join("\n");
        while addrs.len() + sockets.len() < expected {
            if let Ok(Some(_)) = child.try_wait() {
                // It exited: wait (bounded) until the log reader has every line of why.
                let until = Instant::now() + Duration::from_secs(5);
                while let Ok(event) =
                    rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    if let Startup::LogEnded = event {
                        break;
                    }
                }
                return Err(whole_log(&log));
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Startup::Listening(p, Endpoint::Tcp(a))) => {
                    addrs.insert(p, a);
                }
                Ok(Startup::Listening(p, Endpoint::Unix(path))) => {
                    sockets.insert(p, path);
                }
                Ok(Startup::LogEnded) => {} // try_wait reports the exit next round
                Err(_) if Instant::now() > deadline => return Err(whole_log(&log)),
                Err(_) => {}
            }
        }
        Ok(TestServer {
            dir,
            child,
            addrs,
            sockets,
            log,
        })
    }

    /// The bound address of a protocol.
    pub fn addr(&self, protocol: &str) -> SocketAddr {
        self.addrs[protocol]
    }

    /// The mail root inside the temp dir.
    pub fn mail_root(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {needle:?} in:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the server to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SMTP-family servers need a queue directory: the tests keep it in the temp dir.
fn with_queue_dir(text: String) -> String {
    let smtp = ["\"submission", "\"smtp\"", "\"lmtp\""].iter().any(|p| {
        text.lines()
            .any(|l| l.starts_with("protocols") && l.contains(p))
    });
    if !smtp || text.contains("queue_dir") {
        return text;
    }
    if text.contains("[smtp]\n") {
        text.replacen("[smtp]\n", "[smtp]\nqueue_dir = \"queue\"\n", 1)
    } else {
        format!("{text}\n[smtp]\nqueue_dir = \"queue\"\n")
    }
}

/// What the log reader tells a starting server's waiter.
enum Startup {
    /// A listener is up.
    Listening(String, Endpoint),
    /// The server's stderr closed: every log line has been read.
    LogEnded,
}

/// Where a listener was bound.
enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Parses `... listening protocol="imap" addr=127.0.0.1:1234` (or `socket=/path`).
fn parse_listening(line: &str) -> Option<(String, Endpoint)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |name: &str| {
        let start = line.find(&format!("{name}="))? + name.len() + 1;
        let rest = &line[start..];
        let end = rest.find(' ').unwrap_or(rest.len());
        Some(rest[..end].trim_matches('"').to_string())
    };
    if let Some(path) = field("socket") {
        return Some((field("protocol")?, Endpoint::Unix(PathBuf::from(path))));
    }
    Some((
        field("protocol")?,
        Endpoint::Tcp(field("addr")?.parse().ok()?),
    ))
}

/// A plain line-oriented client for raw protocol dialogues.
pub struct LineClient {
    reader: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects (bounded by a 10 s read timeout).
    pub fn connect(addr: SocketAddr) -> LineClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        LineClient {
            reader: BufReader::new(stream),
        }
    }

    /// The client's own address (the server's "foreign address").
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().unwrap()
    }

    /// Reads one line, CRLF included; empty at EOF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &str) {
        self.reader.get_mut().write_all(bytes.as_bytes()).unwrap();
    }

    /// Sends raw bytes that need not be text (a literal of any bytes).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Sends a line and returns lines until one starts with `until`.
    pub fn cmd(&mut self, line: &str, until: &str) -> Vec<String> {
        self.send(&format!("{line}\r\n"));
        self.until(until)
    }

    /// Reads lines until one starts with `prefix` (bounded by the read timeout).
    pub fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                panic!("connection closed while waiting for {prefix:?}; got {lines:?}");
            }
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Reads exactly `n` bytes (an IMAP literal).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).unwrap();
        buf
    }

    /// Sets the read timeout (for "within one second" checks).
    pub fn set_timeout(&mut self, limit: Duration) {
        self.reader.get_ref().set_read_timeout(Some(limit)).unwrap();
    }

    /// Reads until EOF.
    pub fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// The result of one run of `tests/clients/mailclients.py`.
pub struct ClientRun {
    /// Exit code: 0 success, 3 login refused.
    pub code: i32,
    /// What the client printed.
    pub stdout: String,
    /// Its errors.
    pub stderr: String,
}

/// Runs the stdlib mail client script: `protocol` is imap, pop3, smtp or fingerprint.
pub fn mail_client(protocol: &str, addr: SocketAddr, args: &[&str]) -> ClientRun {
    let script = client_script("mailclients.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(protocol)
        .args([
            "--host",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(args)
        .output()
        .expect("python3 is installed (the project's .ci/setup installs it)");
    ClientRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`mail_client`], asserting success.
pub fn mail_client_ok(protocol: &str, addr: SocketAddr, args: &[&str]) -> String {
    let run = mail_client(protocol, addr, args);
    assert_eq!(
        run.code, 0,
        "{protocol} client failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

/// Drops messages into `maildir`'s `new/` as an MTA would (bytes exactly as given), creating
/// the maildir if needed, and gives everything to the mail owner when the tests run as root
/// (the session worker runs as that user and must be able to move the files).
pub fn seed_maildir(maildir: &Path, messages: &[&[u8]]) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (i, message) in messages.iter().enumerate() {
        let name = format!("1700000000.M{i}P1.seed");
        std::fs::write(maildir.join("new").join(name), message).unwrap();
    }
    give_to_mail_owner(maildir);
}

/// When running as root, hands `path` (recursively) to [`ROOT_MAIL_USER`], like an MTA
/// delivering as the mail user would have left it.
pub fn give_to_mail_owner(path: &Path) {
    if !is_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-R", ROOT_MAIL_USER])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The UIDVALIDITY a maildir's `dovecot-uidlist` records.
pub fn maildir_uidvalidity(maildir: &Path) -> u32 {
    let text = std::fs::read_to_string(maildir.join("dovecot-uidlist")).unwrap();
    let header = text.lines().next().unwrap();
    let v = header
        .split_whitespace()
        .find_map(|f| f.strip_prefix('V'))
        .unwrap();
    v.parse().unwrap()
}

/// A message as POP3 RETR / IMAP BODY[] deliver it: every line ending CRLF.
pub fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The octets POP3 LIST reports and RETR sends (before the terminator): the CRLF form, plus the
/// CRLF RETR adds when the message lacks a final line end.
pub fn pop3_size(message: &[u8]) -> usize {
    crlf(message).len()
        + if message.ends_with(b"\n") || message.is_empty() {
            0
        } else {
            2
        }
}

/// Peak resident memory (VmHWM, kB) of `pid` and every process descended from it: the master,
/// the login process and session workers together when roost runs as root.
pub fn peak_rss_kb_of_tree(pid: u32) -> u64 {
    let mut total = 0;
    let mut pids = vec![pid];
    while let Some(p) = pids.pop() {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        // Children hang off the thread that forked them, so every thread is asked.
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total
}

impl LineClient {
    /// Connects from a chosen local source address (any of 127.0.0.0/8 works on loopback), so
    /// one test can play several clients.
    pub fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> LineClient {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(source, 0)).unwrap();
            socket.connect(addr).await.unwrap()
        });
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        LineClient {
            reader: BufReader::new(stream),
        }
    }

    /// Starts TLS on this connection (after the server said yes to STARTTLS/STLS). Nothing
    /// may be buffered from before the handshake.
    pub fn into_tls(self) -> TlsLineClient {
        assert!(
            self.reader.buffer().is_empty(),
            "server bytes after the STARTTLS reply: {:?}",
            String::from_utf8_lossy(self.reader.buffer())
        );
        TlsLineClient {
            reader: BufReader::new(tls_client(self.reader.into_inner())),
        }
    }
}

/// A line client over TLS, accepting the test server's self-signed certificate.
pub struct TlsLineClient {
    reader: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsLineClient {
    /// Reads one line, CRLF included; empty at EOF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    /// Sends a line and returns lines until one starts with `until`.
    pub fn cmd(&mut self, line: &str, until: &str) -> Vec<String> {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        stream.flush().unwrap();
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            assert!(
                !line.is_empty(),
                "connection closed while waiting for {until:?}; got {lines:?}"
            );
            let done = line.starts_with(until);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

/// A rustls client on `tcp` that accepts any server certificate (signatures still checked).
pub fn tls_client(tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    struct AnyCert(Arc<CryptoProvider>);
    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Connects to the server's IMAP listener and logs `user` in with the test password.
pub fn imap_login(server: &TestServer, user: &str) -> LineClient {
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    c.cmd(&format!("a LOGIN {user} \"{PASSWORD}\""), "a OK");
    c
}

/// Sends `tag command` and returns its untagged lines and the tagged one, CRLF stripped.
pub fn imap_run(c: &mut LineClient, tag: &str, command: &str) -> (Vec<String>, String) {
    let mut lines: Vec<String> = c
        .cmd(&format!("{tag} {command}"), &format!("{tag} "))
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .collect();
    let tagged = lines.pop().unwrap_or_default();
    (lines, tagged)
}

/// As [`imap_run`], for a command that must succeed: asserts the tagged OK.
pub fn imap_ok(c: &mut LineClient, tag: &str, command: &str) -> (Vec<String>, String) {
    let (lines, tagged) = imap_run(c, tag, command);
    assert!(
        tagged.starts_with(&format!("{tag} OK")),
        "{command}: {lines:?} {tagged}"
    );
    (lines, tagged)
}

/// A loopback port nothing listens on right now (for configs that must name one).
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether something accepts connections on loopback `port` within `limit`.
pub fn port_opens(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every message file in a user's maildir INBOX, oldest first.
pub fn inbox_files(server: &TestServer, user: &str) -> Vec<PathBuf> {
    let root = server.mail_root().join(user);
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join(d))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
}

/// Waits (bounded, 20 s) until a user's maildir INBOX holds `n` messages; their files, oldest
/// first. Fails with the server's log when they do not come.
pub fn wait_inbox_files(server: &TestServer, user: &str, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = inbox_files(server, user);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{user} got {} of {n} messages:\n{}",
            got.len(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
