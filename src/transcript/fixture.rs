//! The world a transcript runs in: a temp dir with a config, a passwd-file, seeded maildirs and
//! SMTP maps, and the session context the real server would build for a connection from the
//! transcript's peer. [`session`] is the one place that knows how sessions are put together.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::io::DuplexStream;
use tokio_util::sync::CancellationToken;

use super::script::{Seed, Setup};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::listen::acceptor::Accepted;
use crate::listen::conn::{Connection, Stream};
use crate::listen::tls::{TlsPem, TlsStore};
use crate::privilege::in_process::InProcess;

/// The user every transcript has, with the integration tests' password.
pub const DEFAULT_USER: (&str, &str) = ("plain", "S3cret pass");
/// A second user, for mail between users and aliases.
const OTHER_USER: (&str, &str) = ("bob", "bobs password");

/// The base configuration (`ROOT`: the temp dir); `@config` lines are merged over it. The
/// timeouts stay at their defaults: a transcript never waits for one.
const BASE_CONFIG: &str = r#"
[mail]
location = "maildir:ROOT/mail/%u"
[auth]
passdb = ["passwd-file:ROOT/users"]
failure_delay_ms = 0
[smtp]
queue_dir = "ROOT/queue"
local_domains = ["example.com"]
aliases = "ROOT/aliases"
virtual = "ROOT/virtual"
max_recipients = 3
max_message_size = 200000
"#;

/// `/etc/aliases` and the virtual map of every transcript (as in `tests/smtp.rs`).
const ALIASES: &str = "postmaster: plain\nteam: plain, bob\nfar: someone@far.example\n";
const VIRTUAL: &str = "sales@example.com  bob\n";

/// A prepared temp dir and the configuration read from it.
pub struct Fixture {
    /// Kept so the temp dir lives (and is removed) with the fixture.
    _dir: tempfile::TempDir,
    /// The validated configuration.
    pub config: Arc<Config>,
}

impl Fixture {
    /// Writes config, users, maps and seeded mail for `setup`; `messages` holds the seed files.
    pub fn new(setup: &Setup, messages: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path();
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        let mut users = String::new();
        let defaults = [DEFAULT_USER, OTHER_USER].map(|(n, p)| (n.to_string(), p.to_string()));
        for (name, password) in defaults.iter().chain(&setup.users) {
            users.push_str(&format!("{name}:{{PLAIN}}{password}::::::\n"));
        }
        fs::write(root.join("users"), users).map_err(|e| io("users", e))?;
        fs::write(root.join("aliases"), ALIASES).map_err(|e| io("aliases", e))?;
        fs::write(root.join("virtual"), VIRTUAL).map_err(|e| io("virtual", e))?;
        fs::create_dir(root.join("mail")).map_err(|e| io("mail", e))?;
        seed(&root.join("mail"), setup, messages)?;
        let path = root.join("roost.toml");
        let text = config_text(setup)?.replace("ROOT", &root.display().to_string());
        fs::write(&path, text).map_err(|e| io("roost.toml", e))?;
        let config = Config::load(&path).map_err(|e| format!("config:\n{e}"))?;
        Ok(Self {
            _dir: dir,
            config: Arc::new(config),
        })
    }
}

/// The base config with the transcript's protocol listed and its `@config` lines merged in.
fn config_text(setup: &Setup) -> Result<String, String> {
    let name = setup.protocol.name();
    let head = format!("protocols = [\"{name}\"]\n[listen]\n{name} = \"127.0.0.1:0\"\n");
    let mut base: toml::Table = format!("{head}{BASE_CONFIG}")
        .parse()
        .map_err(|e| format!("base config: {e}"))?;
    let extra: toml::Table = setup
        .config
        .join("\n")
        .parse()
        .map_err(|e| format!("@config: {e}"))?;
    merge(&mut base, extra);
    Ok(base.to_string())
}

/// Merges `extra` into `base`, table by table; other values replace.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(more)) => merge(inner, more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Gives every user an INBOX with a fixed UIDVALIDITY and puts the seed messages into it as
/// an MTA would have, with fixed INTERNALDATEs, so UIDs and dates in transcripts never vary.
fn seed(mail: &Path, setup: &Setup, messages: &Path) -> Result<(), String> {
    let users = [DEFAULT_USER.0, OTHER_USER.0]
        .into_iter()
        .chain(setup.users.iter().map(|(name, _)| name.as_str()));
    for user in users {
        let maildir = mail.join(user);
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(maildir.join(sub)).map_err(|e| format!("{user}/{sub}: {e}"))?;
        }
        let uidlist = format!("3 V{} N1\n", setup.uidvalidity);
        fs::write(maildir.join("dovecot-uidlist"), uidlist)
            .map_err(|e| format!("{user}: dovecot-uidlist: {e}"))?;
    }
    for (i, seed) in setup.seeds.iter().enumerate() {
        let bytes = fs::read(messages.join(&seed.file))
            .map_err(|e| format!("message {}: {e}", seed.file))?;
        let path = seed_path(&mail.join(&seed.user), i, seed);
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let secs = setup.internaldate + 60 * i as i64;
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .map_err(|e| format!("{}: mtime: {e}", path.display()))?;
    }
    Ok(())
}

/// `new/<name>` for a new message, `cur/<name>:2,<flags>` for one already seen by a client.
fn seed_path(maildir: &Path, i: usize, seed: &Seed) -> PathBuf {
    let name = format!("1700000000.M{i:03}P1.transcript");
    match &seed.flags {
        None => maildir.join("new").join(name),
        Some(flags) => maildir.join("cur").join(format!("{name}:2,{flags}")),
    }
}

/// The TLS material of every transcript: generated once, never used for a handshake (an
/// in-memory stream refuses STARTTLS after the server's go-ahead).
fn tls_store() -> Result<Arc<TlsStore>, String> {
    static STORE: OnceLock<Result<Arc<TlsStore>, String>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                .map_err(|e| format!("certificate: {e}"))?;
            let pem = TlsPem {
                cert: certified.cert.pem().into_bytes(),
                key: certified.key_pair.serialize_pem().into_bytes(),
            };
            TlsStore::new(&pem)
                .map(Arc::new)
                .map_err(|e| format!("TLS: {e}"))
        })
        .clone()
}

/// The session the real server would run for this connection, ready to spawn: the server's
/// own handler for the protocol, with this process verifying logins and delivering
/// ([`InProcess`], as roost started by an ordinary user), over `stream` instead of a socket.
/// The one place to adapt when the server's wiring changes shape.
pub fn serve(
    fixture: &Fixture,
    setup: &Setup,
    stream: DuplexStream,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    let config = Arc::clone(&fixture.config);
    let protocol = setup.protocol;
    let mut conn = Connection::new(
        Stream::Memory(stream),
        config.limits.idle_timeout(protocol.family()),
        CancellationToken::new(),
        None,
    );
    if protocol.requires_login() {
        conn.start_login_clock(config.limits.login_timeout);
    }
    conn.set_tls_handshake_timeout(config.limits.tls_handshake_timeout);
    let auth = Arc::new(Authenticator::new(&config.auth));
    let privileged = Arc::new(InProcess::new(&config, auth));
    let (handlers, _) = crate::server::handlers(&config, privileged, tls_store()?)
        .map_err(|e| format!("handlers: {e:#}"))?;
    let handler = handlers
        .get(&protocol.family())
        .cloned()
        .ok_or_else(|| format!("no handler for {}", protocol.name()))?;
    let accepted = Accepted {
        protocol,
        peer: SocketAddr::new(setup.peer, 50_000),
        local: SocketAddr::from(([127, 0, 0, 1], protocol.default_port())),
    };
    Ok(crate::listen::acceptor::run_to_end(
        handler.serve(conn, accepted),
    ))
}
