//! The embedded default: what `roost` runs with when given no config, so a newcomer can point a
//! mail client at it within a minute. Everything binds to loopback on unprivileged ports, mail
//! and users live in `./data`, certificates in `./certs`. Started as root in a directory that
//! `nobody` (the login process and the mail workers) cannot pass through, such as `/root/roost`,
//! mail and queue live in a directory of their own under `/var/lib/roost/embedded/` instead,
//! with `./data/mail` and `./data/queue` linking there, and the log says so at start.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use roost_storage::quota::QuotaLimits;
use roost_storage::MailLocation;

use super::AccessDenied;
use super::{
    AuthConfig, Config, Limits, Listener, MailConfig, Network, Passdb, Protocol, SmtpConfig,
    StatusConfig, TlsConfig,
};
use crate::password::{self, Scheme};
use crate::system::{blocking_directory, SystemUser};

/// Where the embedded default started as root keeps mail and queue when the start directory
/// cannot be reached by `nobody` (one directory per start directory, see [`relocated_dir`]).
pub const RELOCATED_ROOT: &str = "/var/lib/roost/embedded";
/// The account the embedded default started as root stores mail as and logs clients in as.
const NOBODY: &str = "nobody";

/// The embedded config, plus the first user's password when it was just created.
pub struct EmbeddedSetup {
    /// The configuration to serve.
    pub config: Config,
    /// `(user, password)` of a freshly created first user, to print once.
    pub new_user: Option<(String, String)>,
    /// What to log once logging is set up: where mail and the queue were placed, and why.
    pub notices: Vec<String>,
}

/// Where the embedded default keeps the data that processes other than root touch: the mail
/// (workers running as `nobody`) and the queue (the login process, as `nobody`).
struct Shared {
    /// The directory holding `mail/` and `queue/`.
    dir: PathBuf,
    /// The owner of the mail when started as root.
    mail_user: Option<String>,
    /// Why it is not `./data`, when it is not.
    notices: Vec<String>,
}

/// Builds the embedded default under `dir`, creating `data/` and a first user if missing.
pub fn embedded(dir: &Path) -> anyhow::Result<EmbeddedSetup> {
    let data = dir.join("data");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data)
        .map_err(|e| start_dir_error(&data, e))?;
    let users = data.join("users");
    let new_user = if users.exists() {
        None
    } else {
        Some(create_first_user(&users)?)
    };
    let shared = if crate::system::running_as_root() {
        shared_as_root(dir, &data)?
    } else {
        shared_in_data(&data)?
    };
    let config = build_config(dir, users, &shared.dir, shared.mail_user)?;
    Ok(EmbeddedSetup {
        config,
        new_user,
        notices: shared.notices,
    })
}

/// The embedded default's settings: users in `users`, mail and queue under `shared`.
fn build_config(
    dir: &Path,
    users: PathBuf,
    shared: &Path,
    mail_user: Option<String>,
) -> anyhow::Result<Config> {
    let location = format!("maildir:{}/%u", shared.join("mail").display());
    Ok(Config {
        listeners: Protocol::ALL
            .iter()
            .filter(|p| !matches!(p, Protocol::Smtp | Protocol::Lmtp))
            .map(|&protocol| Listener {
                protocol,
                addr: SocketAddr::from(([127, 0, 0, 1], protocol.embedded_port())),
            })
            .collect(),
        mail: MailConfig {
            location: MailLocation::parse(&location)?,
            user: mail_user,
            privileged_gid: None,
            quota_full_tempfail: false,
        },
        auth: AuthConfig {
            passdbs: vec![Passdb::PasswdFile(users)],
            allow_plaintext_without_tls: false,
            trusted_networks: Network::loopback(),
            failure_delay: Duration::from_secs(2),
            max_failures_per_ip: 10,
            max_failures_per_user: 20,
            default_quota: QuotaLimits::default(),
        },
        tls: TlsConfig {
            cert: dir.join("certs/server.crt"),
            key: dir.join("certs/server.key"),
            configured: false,
        },
        limits: limits(),
        spam: None,
        sieve: super::SieveConfig::default(),
        smtp: SmtpConfig {
            local_domains: vec![
                "localhost".into(),
                roost_storage::host::name().to_lowercase(),
            ],
            ..SmtpConfig::with_queue(shared.join("queue"))
        },
        status: StatusConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8025))),
            admin_password: None,
            admin_users: Vec::new(),
        },
        autoconfig: None,
        log_level: "info".into(),
        login_user: super::DEFAULT_LOGIN_USER.to_string(),
        path: None,
    })
}

/// Connection limits and timeouts, as a small single-host install wants them.
fn limits() -> Limits {
    Limits {
        max_connections: 1000,
        max_connections_per_ip: 50,
        imap_idle_timeout: Duration::from_secs(30 * 60),
        pop3_idle_timeout: Duration::from_secs(10 * 60),
        smtp_idle_timeout: Duration::from_secs(5 * 60),
        login_timeout: Duration::from_secs(3 * 60),
        tls_handshake_timeout: Duration::from_secs(30),
        max_literal_bytes: 50 * 1024 * 1024,
    }
}

/// A failure to create `./data`: as an ordinary user, the usual cause is starting roost in a
/// directory that user cannot write.
fn start_dir_error(data: &Path, e: std::io::Error) -> anyhow::Error {
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return anyhow::Error::new(e).context(format!("creating {}", data.display()));
    }
    anyhow::Error::new(AccessDenied {
        path: data.to_path_buf(),
        user: crate::system::current_user_name(),
        role: "roost, which keeps the embedded default's data where it is started",
        blocked_at: None,
        key: "a config file's [mail] location and [smtp] queue_dir (`roost serve -c FILE`)".into(),
    })
}

fn exists_ok(e: std::io::Error, path: &Path) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        return Ok(());
    }
    Err(anyhow::Error::new(e).context(format!("creating {}", path.display())))
}

/// Started as an ordinary user, that user runs everything: mail and queue stay in `./data`.
fn shared_in_data(data: &Path) -> anyhow::Result<Shared> {
    let mail = data.join("mail");
    DirBuilder::new()
        .mode(0o700)
        .create(&mail)
        .or_else(|e| exists_ok(e, &mail))?;
    Ok(Shared {
        dir: data.to_path_buf(),
        mail_user: None,
        notices: Vec::new(),
    })
}

/// Started as root: mail and queue stay in `./data` when `nobody` can pass through every
/// directory above it; otherwise (roost started in `/root`, or in a `mktemp -d` directory) they
/// move to a directory of their own under [`RELOCATED_ROOT`], and `./data/mail` and
/// `./data/queue` become symbolic links to it. The users file and certificates stay where they
/// are: only the master, as root, reads them.
fn shared_as_root(dir: &Path, data: &Path) -> anyhow::Result<Shared> {
    let owner = SystemUser::by_name(NOBODY)
        .context("the embedded default as root needs the user nobody")?;
    // `data` itself is ours and made passable below: the start directory and those above it
    // decide.
    let Some(blocked) = blocking_directory(dir, owner.uid, owner.gid) else {
        hand_mail_root_to(data, &data.join("mail"), &owner)?;
        return Ok(Shared {
            dir: data.to_path_buf(),
            mail_user: Some(NOBODY.into()),
            notices: Vec::new(),
        });
    };
    let shared = relocated_dir(dir);
    DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&shared)
        .with_context(|| format!("creating {}", shared.display()))?;
    for name in ["mail", "queue"] {
        adopt(&data.join(name), &shared.join(name))?;
    }
    hand_mail_root_to(&shared, &shared.join("mail"), &owner)?;
    if let Some(still) = blocking_directory(&shared, owner.uid, owner.gid) {
        return Err(AccessDenied {
            path: shared.join("mail"),
            user: NOBODY.into(),
            role: "the login process and the mail workers",
            blocked_at: Some(still),
            key: "a config file's [mail] location and [smtp] queue_dir (roost serve -c FILE)"
                .into(),
        }
        .into());
    }
    let notice = format!(
        "{} cannot be reached by {NOBODY} ({} has mode {:04o}): mail and queue are kept in {} \
         (./data/mail and ./data/queue link there)",
        data.display(),
        blocked.0.display(),
        blocked.1,
        shared.display()
    );
    Ok(Shared {
        dir: shared,
        mail_user: Some(NOBODY.into()),
        notices: vec![notice],
    })
}

/// The directory of one start directory's mail and queue under [`RELOCATED_ROOT`]: its last
/// name and a digest of its whole path, so two checkouts never share mail and a restart in the
/// same place finds its mail again.
fn relocated_dir(dir: &Path) -> PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(32)
        .collect();
    Path::new(RELOCATED_ROOT).join(format!("{name}-{hex}"))
}

/// Makes `link` (`./data/mail`) a symbolic link to `target`. What a start that could not serve
/// left at `link` (directories without files) is removed; a real directory with files is moved
/// to `target` if that does not exist yet, and otherwise left for the admin to merge.
fn adopt(link: &Path, target: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(link) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{}", link.display()))),
        Ok(meta) if meta.file_type().is_symlink() => {
            if fs::read_link(link).ok().as_deref() == Some(target) {
                return Ok(());
            }
            fs::remove_file(link).with_context(|| format!("replacing {}", link.display()))?;
        }
        Ok(_) if !target.exists() && fs::rename(link, target).is_ok() => {}
        Ok(_) => remove_empty_tree(link).with_context(|| {
            format!(
                "{} holds files but {NOBODY} cannot reach it; move them to {} by hand",
                link.display(),
                target.display()
            )
        })?,
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

/// Removes a tree of directories that holds no file; fails, removing nothing more, at a file.
fn remove_empty_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is a file",
                entry.path().display()
            )));
        }
        remove_empty_tree(&entry.path())?;
    }
    fs::remove_dir(dir)
}

/// Started as root, sessions never run as root: the embedded default stores mail as `nobody`
/// (a real deployment names its own `[mail] user`, such as `vmail`). `parent` becomes
/// passable (0711) so `nobody` reaches `mail` inside it.
fn hand_mail_root_to(parent: &Path, mail: &Path, owner: &SystemUser) -> anyhow::Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(mail)
        .or_else(|e| exists_ok(e, mail))?;
    fs::set_permissions(parent, fs::Permissions::from_mode(0o711))
        .with_context(|| format!("chmod 0711 {}", parent.display()))?;
    std::os::unix::fs::chown(mail, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("chown {} {}", owner.name, mail.display()))?;
    Ok(())
}

/// Writes a passwd-file with one user named after the account running roost.
fn create_first_user(users: &Path) -> anyhow::Result<(String, String)> {
    let name = std::env::var("USER")
        .ok()
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
        .unwrap_or_else(|| "roost".into());
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
    let hashed = password::hash(Scheme::Sha512Crypt, &password)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(users)
        .with_context(|| format!("creating {}", users.display()))?;
    writeln!(
        file,
        "# roost passwd-file (Dovecot format): user:{{SCHEME}}hash:uid:gid::home::"
    )?;
    writeln!(file, "{name}:{hashed}::::::")?;
    file.sync_all()?;
    fs::set_permissions(users, fs::Permissions::from_mode(0o600))?;
    Ok((name, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_start_directory_gets_its_own_relocated_dir() {
        let a = relocated_dir(Path::new("/root/roost"));
        assert!(a.starts_with(RELOCATED_ROOT), "{}", a.display());
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("roost-"));
        assert_eq!(a, relocated_dir(Path::new("/root/roost")));
        assert_ne!(a, relocated_dir(Path::new("/home/x/roost")));
    }

    #[test]
    fn adopting_replaces_leftover_directories_but_never_drops_files() {
        let top = tempfile::tempdir().unwrap();
        let (link, target) = (top.path().join("queue"), top.path().join("shared-queue"));
        fs::create_dir_all(link.join("tmp")).unwrap();
        fs::create_dir_all(&target).unwrap();
        adopt(&link, &target).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), target);
        adopt(&link, &target).unwrap();

        let (mail, shared) = (top.path().join("mail"), top.path().join("shared-mail"));
        fs::create_dir_all(mail.join("alice")).unwrap();
        fs::write(mail.join("alice/msg"), "x").unwrap();
        fs::create_dir_all(&shared).unwrap();
        let refused = adopt(&mail, &shared).unwrap_err();
        assert!(
            format!("{refused:#}").contains("move them to"),
            "{refused:#}"
        );
        assert!(mail.join("alice/msg").exists());

        fs::remove_dir(&shared).unwrap();
        adopt(&mail, &shared).unwrap();
        assert!(
            shared.join("alice/msg").exists(),
            "moved when nothing was there"
        );
        assert_eq!(fs::read_link(&mail).unwrap(), shared);
    }
}
