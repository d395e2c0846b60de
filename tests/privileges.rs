//! Real PAM and privilege separation, as a mail host needs them: started as root, roost logs a
//! system user in with their Linux password and runs their session in a worker with their uid,
//! so the mail it stores is theirs; virtual users' mail belongs to `[mail] user`.
//!
//! Needs root and the test account that `.ci/setup` creates (`roost-test`, password below, PAM
//! service file /etc/pam.d/roost). Without them the tests say so and pass, except under CI,
//! where a missing prerequisite is a failure.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{base_config, is_root, mail_client, uid_of, TestServer, PASSWORD, ROOT_MAIL_USER};

const PAM_USER: &str = "roost-test";
const PAM_PASSWORD: &str = "roost-Test-pw1";

fn prerequisites() -> Option<(u32, PathBuf)> {
    let uid = uid_of(PAM_USER);
    let ready = is_root() && uid.is_some() && Path::new("/etc/pam.d/roost").exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run these as root after .ci/setup created {PAM_USER}"
        );
        eprintln!(
            "skipping: needs root, the {PAM_USER} account and /etc/pam.d/roost (run .ci/setup)"
        );
        return None;
    }
    let home = Command::new("getent")
        .args(["passwd", PAM_USER])
        .output()
        .ok()?;
    let home = String::from_utf8(home.stdout)
        .ok()?
        .trim()
        .split(':')
        .nth(5)?
        .to_string();
    Some((uid?, PathBuf::from(home)))
}

/// Starts a client that logs in, appends a message and holds the session for a moment.
fn append_and_hold(addr: std::net::SocketAddr, user: &str, password: &str) -> Child {
    let script = common::client_script("mailclients.py");
    Command::new("python3")
        .arg(script)
        .args([
            "imap",
            "--port",
            &addr.port().to_string(),
            "--user",
            user,
            "--password",
            password,
        ])
        .args([
            "--append",
            "Subject: owned\\n\\nwho owns me?\\n",
            "--hold",
            "1.5",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// uids of the server's session workers (`roost worker` children of the master).
fn worker_uids(server_pid: u32) -> Vec<u32> {
    children(server_pid)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" worker "))
        .map(|(uid, _)| uid)
        .collect()
}

/// Whether a test that needs root skips here (an ordinary user outside CI; CI runs as root).
fn skipped_unless_root() -> bool {
    if is_root() {
        return false;
    }
    assert!(std::env::var_os("CI").is_none(), "CI runs as root");
    eprintln!("skipping: needs root");
    true
}

/// `(uid, command line)` of every child process of `server_pid`.
fn children(server_pid: u32) -> Vec<(u32, String)> {
    child_processes(server_pid)
        .into_iter()
        .map(|(_, uid, cmd)| (uid, cmd))
        .collect()
}

/// `(pid, uid, command line)` of every child process of `server_pid`.
fn child_processes(server_pid: u32) -> Vec<(u32, u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok())
        };
        if field("PPid:") == Some(server_pid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
            found.extend(pid.zip(field("Uid:")).map(|(pid, uid)| (pid, uid, cmdline)));
        }
    }
    found
}

/// Waits (bounded) until a worker with `uid` runs, returning whether it did.
fn saw_worker_with_uid(server_pid: u32, uid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if worker_uids(server_pid).contains(&uid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn finish(client: Child) -> String {
    let out = client.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "client failed: {stdout}");
    stdout
}

fn stored_messages(maildir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(maildir.join("cur"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn pam_user_session_runs_as_that_user_and_their_mail_is_theirs() {
    let Some((uid, home)) = prerequisites() else {
        return;
    };
    let maildir = home.join("Maildir");
    let _ = std::fs::remove_dir_all(&maildir);
    let config = base_config(
        &["imap"],
        "[auth]\npassdb = [\"pam:roost\"]\nfailure_delay_ms = 100\n",
    )
    .replace("maildir:MAILROOT/%u", "maildir:~/Maildir");
    let server = TestServer::start(&config);

    let client = append_and_hold(server.addr("imap"), PAM_USER, PAM_PASSWORD);
    assert!(
        saw_worker_with_uid(server.child.id(), uid),
        "a worker runs with {PAM_USER}'s uid {uid}"
    );
    let out = finish(client);
    assert!(
        out.contains("APPEND OK") && out.contains("MESSAGES 1"),
        "{out}"
    );
    server.wait_for_log(&format!(
        "imap-login: Login: user=<{PAM_USER}>, method=PLAIN"
    ));

    let messages = stored_messages(&maildir);
    assert_eq!(messages.len(), 1);
    let meta = std::fs::metadata(&messages[0]).unwrap();
    assert_eq!(
        (meta.uid(), mode(&messages[0])),
        (uid, 0o600),
        "the message is {PAM_USER}'s, 0600"
    );
    for dir in ["", "new", "cur", "tmp"] {
        let path = maildir.join(dir);
        assert_eq!(
            (std::fs::metadata(&path).unwrap().uid(), mode(&path)),
            (uid, 0o700),
            "{}",
            path.display()
        );
    }
    assert!(
        !worker_uids(server.child.id()).contains(&0),
        "no session ever runs as root"
    );
}

#[test]
fn the_process_that_talks_to_clients_is_not_root() {
    if skipped_unless_root() {
        return;
    }
    let server = TestServer::start(&base_config(
        &["imap", "pop3s"],
        "[server]\nlogin_user = \"nobody\"\n",
    ));
    let nobody = uid_of("nobody").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let login = loop {
        let found: Vec<(u32, String)> = children(server.child.id())
            .into_iter()
            .filter(|(_, cmd)| !cmd.contains(" worker "))
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(login.len(), 1, "one login process: {login:?}");
    assert_eq!(login[0].0, nobody, "the login process runs as nobody");
    // The master holds no client connection. (The master is root and dumpable, so ss would
    // name it if it held one; the login process is not dumpable and may show unattributed.)
    let mut c = common::LineClient::connect(server.addr("imap"));
    assert!(c.line().starts_with("* OK"));
    let out = Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let port = format!(":{} ", server.addr("imap").port());
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(&port)).collect();
    assert!(!ours.is_empty(), "{text}");
    for line in ours {
        assert!(
            !line.contains(&format!("pid={},", server.child.id())),
            "the master touches no client: {line}"
        );
    }
}

/// The `ss -tnpH` line of the server's end of the connection whose client is at `client`.
fn server_end(client: std::net::SocketAddr) -> String {
    let out = Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(3) == Some(&client.to_string().as_str()))
        .map(|fields| fields.join(" "))
        .unwrap_or_else(|| panic!("no server end for {client} in:\n{text}"))
}

/// Logged in over plain IMAP, the client talks to its worker directly: the worker holds the
/// connection itself (no process copies its bytes any more), and the session still works.
/// Over TLS the login process keeps the connection, where TLS ends.
#[test]
fn a_plain_connection_is_handed_to_the_worker_itself() {
    if skipped_unless_root() {
        return;
    }
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut client = imap_session(server.addr("imap"), "plain");
    client.cmd("s SELECT INBOX", "s OK");
    let local = client.local_addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (workers, line) = loop {
        let workers: Vec<u32> = child_processes(server.child.id())
            .into_iter()
            .filter(|(_, _, cmd)| cmd.contains(" worker "))
            .map(|(pid, _, _)| pid)
            .collect();
        let line = server_end(local);
        let held = workers
            .iter()
            .any(|pid| line.contains(&format!("pid={pid},")));
        if held || Instant::now() > deadline {
            break (workers, line);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!workers.is_empty(), "a worker serves the session");
    assert!(
        workers
            .iter()
            .any(|pid| line.contains(&format!("pid={pid},"))),
        "the worker {workers:?} holds the client's connection: {line}"
    );
    client.cmd("n NOOP", "n OK");
    client.cmd("l LOGOUT", "l OK");
    assert!(client.rest().is_empty(), "the connection ends after LOGOUT");
}

#[test]
fn pam_refuses_a_wrong_password_and_an_unknown_user() {
    if prerequisites().is_none() {
        return;
    }
    let server = TestServer::start(&base_config(
        &["imap"],
        "[auth]\npassdb = [\"pam:roost\"]\nfailure_delay_ms = 100\n",
    ));
    for (user, password) in [
        (PAM_USER, "wrong-password"),
        ("no-such-user-here", "x"),
        ("root", "x"),
    ] {
        let run = mail_client(
            "imap",
            server.addr("imap"),
            &["--user", user, "--password", password],
        );
        assert_eq!(run.code, 3, "{user}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("AUTHENTICATIONFAILED"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn virtual_users_mail_belongs_to_the_configured_mail_user() {
    if skipped_unless_root() {
        return;
    }
    let mail_uid = uid_of(ROOT_MAIL_USER).unwrap();
    let server = TestServer::start(&base_config(&["imap"], ""));
    let client = append_and_hold(server.addr("imap"), "sha512", PASSWORD);
    assert!(
        saw_worker_with_uid(server.child.id(), mail_uid),
        "a worker runs as {ROOT_MAIL_USER}"
    );
    finish(client);
    let maildir = server.mail_root().join("sha512");
    let messages = stored_messages(&maildir);
    assert_eq!(messages.len(), 1);
    assert_eq!(std::fs::metadata(&messages[0]).unwrap().uid(), mail_uid);
    assert_eq!(mode(&maildir), 0o700);
}

#[test]
fn a_virtual_user_without_a_mail_owner_is_refused_rather_than_served_as_root() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let config = base_config(&["imap"], "").replace(&format!("user = \"{ROOT_MAIL_USER}\"\n"), "");
    let server = TestServer::start(&config);
    let run = mail_client(
        "imap",
        server.addr("imap"),
        &["--user", "plain", "--password", PASSWORD],
    );
    assert_ne!(run.code, 0);
    server.wait_for_log("no mail owner for plain: set [mail] user");
}

#[test]
fn a_pam_users_mbox_in_a_mail_group_spool_works_with_the_privileged_group() {
    let Some((uid, _home)) = prerequisites() else {
        return;
    };
    let Some(mail_gid) = Command::new("getent")
        .args(["group", "mail"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8(o.stdout)
                .ok()?
                .split(':')
                .nth(2)?
                .trim()
                .parse::<u32>()
                .ok()
        })
    else {
        return eprintln!("skipping: no group mail");
    };
    let spool = tempfile::tempdir().unwrap();
    // Like Debian's /var/mail: root:mail 2775, the user's mbox theirs, 0600.
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o2775)).unwrap();
    std::os::unix::fs::chown(spool.path(), Some(0), Some(mail_gid)).unwrap();
    let mbox = spool.path().join(PAM_USER);
    std::fs::write(
        &mbox,
        "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nSubject: delivered by the MTA\n\nhello\n\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&mbox, Some(uid), None).unwrap();
    std::fs::set_permissions(&mbox, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = spool_config("mail", spool.path());
    let server = TestServer::start(&config);
    let client = append_and_hold(server.addr("imap"), PAM_USER, PAM_PASSWORD);
    let groups = (0..200).find_map(|_| {
        let found = children(server.child.id())
            .into_iter()
            .find(|(u, cmd)| *u == uid && cmd.contains(" worker "));
        if found.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        found
    });
    assert!(groups.is_some(), "a worker runs as {PAM_USER}");
    let out = finish(client);
    assert!(
        out.contains("APPEND OK") && out.contains("MESSAGES 2"),
        "{out}"
    );
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert!(
        text.contains("X-IMAPbase: "),
        "the rewrite in the spool worked: {text}"
    );
    assert!(
        text.contains("Subject: delivered by the MTA") && text.contains("Subject: owned"),
        "{text}"
    );
    let meta = std::fs::metadata(&mbox).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (uid, 0o600),
        "still the user's, still private"
    );
    assert!(
        !spool.path().join(format!("{PAM_USER}.lock")).exists(),
        "dotlock released"
    );
}

/// The gid of the `mail` group, if the system has one.
fn mail_gid() -> Option<u32> {
    let out = Command::new("getent")
        .args(["group", "mail"])
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .split(':')
        .nth(2)?
        .trim()
        .parse()
        .ok()
}

/// A directory like Debian's /var/mail: root:mail 2775.
/// What the spool tests need: the PAM user's uid and home, the mail group and a spool
/// directory like Debian's `/var/mail`; `None` (with a note) where the machine lacks one.
fn spool_prerequisites() -> Option<(u32, PathBuf, u32, tempfile::TempDir)> {
    let (uid, home) = prerequisites()?;
    let Some(mail_gid) = mail_gid() else {
        eprintln!("skipping: no group mail");
        return None;
    };
    Some((uid, home, mail_gid, mail_spool(mail_gid)))
}

/// IMAP for the PAM user with mboxes under `~/MAIL_ROOT` and the INBOX in `spool`, and the
/// mail group as the privileged group.
fn spool_config(mail_root: &str, spool: &Path) -> String {
    let location = format!("mbox:~/{mail_root}:INBOX={}/%u", spool.display());
    base_config(
        &["imap"],
        "[auth]\npassdb = [\"pam:roost\"]\nfailure_delay_ms = 100\n",
    )
    .replace("maildir:MAILROOT/%u", &location)
    .replace("[mail]\n", "[mail]\nprivileged_group = \"mail\"\n")
}

fn mail_spool(mail_gid: u32) -> tempfile::TempDir {
    let spool = tempfile::tempdir().unwrap();
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o2775)).unwrap();
    std::os::unix::fs::chown(spool.path(), Some(0), Some(mail_gid)).unwrap();
    spool
}

/// A directory in the PAM user's home, theirs, removed again when dropped.
struct HomeDir(PathBuf);

impl HomeDir {
    fn new(home: &Path, name: &str, uid: u32) -> Self {
        let path = home.join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(path)
    }
}

impl Drop for HomeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `Groups:` and `Gid:` (real, effective, saved, fs) of the PAM user's session worker.
fn worker_groups(server_pid: u32, uid: u32) -> (Vec<u32>, Vec<u32>) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| -> Vec<u32> {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .filter_map(|v| v.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let worker = String::from_utf8_lossy(&cmdline).contains("worker");
        if field("PPid:") == [server_pid] && field("Uid:").first() == Some(&uid) && worker {
            return (field("Groups:"), field("Gid:"));
        }
    }
    panic!("no worker with uid {uid}");
}

fn login_pam(server: &TestServer) -> common::LineClient {
    let mut c = common::LineClient::connect(server.addr("imap"));
    assert!(c.line().starts_with("* OK"));
    let reply = c.cmd(&format!("l LOGIN {PAM_USER} \"{PAM_PASSWORD}\""), "l ");
    assert!(reply.last().unwrap().starts_with("l OK"), "{reply:?}");
    c
}

#[test]
fn the_privileged_group_is_only_saved_and_mailbox_names_through_a_symlink_are_refused() {
    let Some((uid, home, mail_gid, spool)) = spool_prerequisites() else {
        return;
    };
    // Another user's spool file, readable and writable by the mail group, as on Debian.
    let victim = spool.path().join("victim");
    let secret = "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nSubject: secret\n\nnot yours\n\n";
    std::fs::write(&victim, secret).unwrap();
    std::os::unix::fs::chown(&victim, Some(0), Some(mail_gid)).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o660)).unwrap();
    // The local user links the spool into their mail root: `ln -s /var/mail ~/mail/var`.
    let root = HomeDir::new(&home, "roost-symlink-test", uid);
    std::os::unix::fs::symlink(spool.path(), root.0.join("var")).unwrap();
    std::os::unix::fs::lchown(root.0.join("var"), Some(uid), None).unwrap();
    let config = spool_config("roost-symlink-test", spool.path());
    let server = TestServer::start(&config);
    let mut c = login_pam(&server);
    for (i, command) in [
        "SELECT var/victim",
        "EXAMINE var/victim",
        "STATUS var/victim (MESSAGES)",
        "DELETE var/victim",
        "RENAME var/victim Stolen",
        "CREATE var/planted",
    ]
    .iter()
    .enumerate()
    {
        let reply = c.cmd(&format!("s{i} {command}"), &format!("s{i} "));
        let last = reply.last().unwrap();
        assert!(
            last.starts_with(&format!("s{i} NO")) && last.contains("symbolic link"),
            "{command}: {reply:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), secret);
    assert!(!spool.path().join("planted").exists());
    // The user's own INBOX in the spool still works (created, dotlocked with the group).
    let reply = c.cmd("i SELECT INBOX", "i ");
    assert!(reply.last().unwrap().starts_with("i OK"), "{reply:?}");
    let (groups, gids) = worker_groups(server.child.id(), uid);
    let own = gids[0];
    assert!(!groups.contains(&mail_gid), "not supplementary: {groups:?}");
    assert_eq!(
        gids,
        [own, own, mail_gid, own],
        "real, effective, saved, fs gid: the mail group only saved"
    );
    let inbox = std::fs::metadata(spool.path().join(PAM_USER)).unwrap();
    assert_eq!(
        (inbox.uid(), inbox.permissions().mode() & 0o777),
        (uid, 0o600)
    );
    c.cmd("z LOGOUT", "z ");
    let _ = std::fs::remove_file(spool.path().join(PAM_USER));
}

#[test]
fn an_inbox_spool_file_that_is_not_the_users_own_is_refused() {
    let Some((_, _, _, spool)) = spool_prerequisites() else {
        return;
    };
    // Left world-writable by someone else: the user could write it, but it is not theirs.
    let inbox = spool.path().join(PAM_USER);
    let text = "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nSubject: planted\n\nx\n\n";
    std::fs::write(&inbox, text).unwrap();
    std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o666)).unwrap();
    let config = spool_config("mail", spool.path());
    let server = TestServer::start(&config);
    let mut c = login_pam(&server);
    let reply = c.cmd("s SELECT INBOX", "s ");
    assert!(
        reply.last().unwrap().starts_with("s NO [NOPERM]"),
        "{reply:?}"
    );
    assert_eq!(std::fs::read_to_string(&inbox).unwrap(), text, "untouched");
    c.cmd("z LOGOUT", "z ");
}

#[test]
fn roost_deliver_creates_and_dotlocks_a_spool_inbox_with_the_group_only_saved() {
    let Some((uid, home, _, spool)) = spool_prerequisites() else {
        return;
    };
    let _root = HomeDir::new(&home, "roost-lda-test", uid);
    let config = spool_config("roost-lda-test", spool.path());
    let server = TestServer::start(&config);
    let mut child = Command::new(common::roost_bin())
        .args(["deliver", "-c"])
        .arg(server.dir.path().join("roost.toml"))
        .args(["-u", PAM_USER, "-f", "sender@far.example"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"Subject: lda\nX-UID: 4294967295\nStatus: RO\n\nbody\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let inbox = spool.path().join(PAM_USER);
    let meta = std::fs::metadata(&inbox).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (uid, 0o600)
    );
    let text = std::fs::read_to_string(&inbox).unwrap();
    assert!(
        text.contains("Subject: lda") && !text.contains("4294967295"),
        "{text}"
    );
    assert!(!spool.path().join(format!("{PAM_USER}.lock")).exists());
}

/// Logs `user` in over IMAP and selects INBOX.
fn imap_session(addr: std::net::SocketAddr, user: &str) -> common::LineClient {
    let mut client = common::LineClient::connect(addr);
    client.until("* OK");
    let login = client.cmd(&format!("a LOGIN {user} \"{PASSWORD}\""), "a ");
    assert!(login.last().unwrap().starts_with("a OK"), "{login:?}");
    client
}

/// The subjects of every message in the session's INBOX.
fn inbox_subjects(client: &mut common::LineClient) -> Vec<String> {
    client.cmd("s SELECT INBOX", "s OK");
    let lines = client.cmd("f FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "f ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn virtual_users_of_one_owner_share_a_few_workers_and_stay_apart() {
    if !is_root() {
        eprintln!("skipping: needs root (the single-process model has no workers)");
        return;
    }
    let server = TestServer::start(&base_config(&["imap"], ""));
    let addr = server.addr("imap");
    let users = ["plain", "sha512", "sha256", "blf", "argon"];
    let mut sessions: Vec<_> = users.iter().map(|u| (*u, imap_session(addr, u))).collect();
    for (user, client) in &mut sessions {
        let message = format!("Subject: for {user}\r\n\r\nonly {user} reads this\r\n");
        client.send(&format!(
            "p APPEND INBOX {{{}+}}\r\n{message}\r\n",
            message.len()
        ));
        let reply = client.until("p ");
        assert!(reply.last().unwrap().starts_with("p OK"), "{reply:?}");
    }
    let owner = uid_of(ROOT_MAIL_USER).unwrap();
    let workers = worker_uids(server.child.id());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        workers.iter().all(|uid| *uid == owner) && workers.len() <= cores.clamp(1, 8),
        "five sessions of one owner run in at most one worker per core, not a process each: {workers:?}"
    );
    // Ending one session (the client just vanishes) leaves the others of its worker serving.
    let (_, gone) = sessions.remove(0);
    drop(gone);
    for (user, client) in &mut sessions {
        assert_eq!(inbox_subjects(client), [format!("for {user}")], "{user}");
        let noop = client.cmd("n NOOP", "n ");
        assert!(noop.last().unwrap().starts_with("n OK"), "{user}: {noop:?}");
    }
    let mut again = imap_session(addr, "plain");
    assert_eq!(inbox_subjects(&mut again), ["for plain"]);
    // Once the last session has ended, the workers exit (after a short linger).
    drop((sessions, again));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !worker_uids(server.child.id()).is_empty() {
        assert!(Instant::now() < deadline, "idle workers never exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_users_many_sessions_spread_over_the_owners_workers_and_hear_of_each_others_changes() {
    if !is_root() {
        eprintln!("skipping: needs root (the single-process model has no workers)");
        return;
    }
    let server = TestServer::start(&base_config(&["imap"], ""));
    let addr = server.addr("imap");
    let mut first = imap_session(addr, "plain");
    let message = "Subject: shared\r\n\r\nseen by every session\r\n";
    let reply = first.cmd(
        &format!("p APPEND INBOX {{{}+}}\r\n{message}", message.len()),
        "p ",
    );
    assert!(reply.last().unwrap().starts_with("p OK"), "{reply:?}");
    let mut others: Vec<_> = (0..9).map(|_| imap_session(addr, "plain")).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = worker_uids(server.child.id());
    assert!(
        workers.len() <= cores.clamp(1, 8) && (cores == 1 || workers.len() >= 2),
        "ten sessions of one user use the cores (at most one worker each): {workers:?}"
    );
    for client in others.iter_mut().chain([&mut first]) {
        let select = client.cmd("s SELECT INBOX", "s ");
        assert!(select.last().unwrap().starts_with("s OK"), "{select:?}");
    }
    let store = first.cmd("f STORE 1 +FLAGS (\\Flagged)", "f ");
    assert!(store.last().unwrap().starts_with("f OK"), "{store:?}");
    // Sessions in the other worker learn of it through the disk, those in the same through the
    // shared view: each one's next NOOP says so.
    for (n, client) in others.iter_mut().enumerate() {
        let noop = client.cmd("n NOOP", "n ");
        assert!(
            noop.iter()
                .any(|l| l.starts_with("* 1 FETCH") && l.contains("\\Flagged")),
            "session {n}: {noop:?}"
        );
    }
}
