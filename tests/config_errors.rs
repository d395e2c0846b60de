//! A bad config stops roost with an error naming file, line and key; a good one is accepted.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::roost_bin;

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:{PLAIN}pw\n").unwrap();
    let path = dir.path().join("roost.toml");
    std::fs::write(&path, config).unwrap();
    let check = Command::new(roost_bin())
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stderr).into_owned()
        + &String::from_utf8_lossy(&check.stdout);
    if !check.status.success() {
        let serve = Command::new(roost_bin())
            .args(["serve", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !serve.status.success(),
            "serve accepted a config check-config refused"
        );
        assert!(
            String::from_utf8_lossy(&serve.stderr).contains("roost.toml:"),
            "serve names the file"
        );
    }
    (check.status.success(), text)
}

const GOOD: &str = r#"protocols = ["imap", "pop3"]
[listen]
imap = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
[mail]
location = "maildir:/srv/mail/%u"
[auth]
passdb = ["passwd-file:users"]
"#;

#[test]
fn good_config_passes_check() {
    let (ok, text) = check(GOOD);
    assert!(ok, "{text}");
    assert!(
        text.contains("OK (imap on 127.0.0.1:0, pop3 on 127.0.0.1:0)"),
        "{text}"
    );
}

#[test]
fn unknown_protocol_names_line_and_key() {
    let (ok, text) = check(&GOOD.replace("\"pop3\"]", "\"pop4\"]"));
    assert!(!ok);
    assert!(
        text.contains("roost.toml:1: protocols[1]: unknown protocol \"pop4\""),
        "{text}"
    );
}

#[test]
fn a_quota_that_is_not_a_size_names_line_and_key() {
    let with = |quota: &str| {
        GOOD.replace(
            "location = \"maildir:/srv/mail/%u\"\n",
            &format!("location = \"maildir:/srv/mail/%u\"\nquota = \"{quota}\"\n"),
        )
    };
    let (ok, text) = check(&with("lots"));
    assert!(!ok);
    assert!(
        text.contains("roost.toml:7: mail.quota: \"lots\" is not a size"),
        "{text}"
    );
    let (ok, text) = check(&with("2G"));
    assert!(ok, "{text}");
}

#[test]
fn unknown_key_names_line_and_key() {
    let (ok, text) = check(&GOOD.replace("[auth]\n", "[auth]\npassword_scheme = \"x\"\n"));
    assert!(!ok);
    assert!(
        text.contains("roost.toml:8: auth.password_scheme: unknown field"),
        "{text}"
    );
}

#[test]
fn duplicate_port_names_both_protocols() {
    let cfg = GOOD
        .replace("imap = \"127.0.0.1:0\"", "imap = \"127.0.0.1:1110\"")
        .replace("pop3 = \"127.0.0.1:0\"", "pop3 = \"0.0.0.0:1110\"");
    let (ok, text) = check(&cfg);
    assert!(!ok);
    assert!(
        text.contains("roost.toml:4: listen.pop3: 0.0.0.0:1110 is also used by imap"),
        "{text}"
    );
}

#[test]
fn missing_certificate_is_an_error_not_a_silent_skip() {
    let cfg = format!(
        "{}[tls]\ncert = \"certs/missing.crt\"\nkey = \"certs/missing.key\"\n",
        GOOD.replace("\"imap\"", "\"imaps\"")
            .replace("imap =", "imaps =")
    );
    let (ok, text) = check(&cfg);
    assert!(!ok);
    assert!(
        text.contains("roost.toml:10: tls.cert: certificate file"),
        "{text}"
    );
    assert!(text.contains("roost.toml:11: tls.key: key file"), "{text}");
}

#[test]
fn missing_passwd_file_and_bad_location_are_reported_together() {
    let cfg = GOOD
        .replace("passwd-file:users", "passwd-file:nope")
        .replace("maildir:/srv", "maildir:srv");
    let (ok, text) = check(&cfg);
    assert!(!ok);
    assert!(text.contains("roost.toml:6: mail.location:"), "{text}");
    assert!(
        text.contains("roost.toml:8: auth.passdb[0]: passwd-file"),
        "{text}"
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let (ok, text) = check("protocols = [\"imap\"\n[mail]\n");
    assert!(!ok);
    assert!(text.contains("roost.toml:"), "{text}");
}

#[test]
fn a_status_page_reachable_from_other_machines_needs_a_password() {
    let open = format!("{GOOD}[status]\nlisten = \"0.0.0.0:8025\"\n");
    let (ok, text) = check(&open);
    assert!(!ok);
    assert!(
        text.contains("roost.toml:10: status.listen: 0.0.0.0:8025 is reachable from other machines, so the page needs a password"),
        "{text}"
    );
    let (ok, text) = check(&format!("{open}admin_password = \"secret\"\n"));
    assert!(!ok);
    assert!(
        text.contains("roost.toml:11: status.admin_password: not a password hash"),
        "{text}"
    );
    assert!(
        !text.contains("reachable from other machines"),
        "one error: {text}"
    );
    let (ok, text) = check(&format!("{open}admin_users = [\"alice\"]\n"));
    assert!(ok, "{text}");
    let (ok, text) = check(&format!("{open}admin_password = \"{{PLAIN}}pw\"\n"));
    assert!(ok, "{text}");
    let (ok, text) = check(&format!("{GOOD}[status]\nlisten = \"127.0.0.1:8025\"\n"));
    assert!(ok, "loopback needs no password: {text}");
}

#[test]
fn autoconfig_settings_are_checked() {
    let cfg = format!(
        "{GOOD}[autoconfig]\nlisten = \"0.0.0.0:80\"\nhostname = \"mail example\"\nusername = \"full\"\n"
    );
    let (ok, text) = check(&cfg);
    assert!(!ok);
    assert!(
        text.contains("roost.toml:11: autoconfig.hostname: \"mail example\" is not a host name"),
        "{text}"
    );
    assert!(
        text.contains("roost.toml:12: autoconfig.username: must be \"address\""),
        "{text}"
    );
    let (ok, text) = check(&format!(
        "{GOOD}[autoconfig]\nlisten = \"0.0.0.0:80\"\nhostname = \"mail.example.com\"\n"
    ));
    assert!(ok, "{text}");
}

const SMTP: &str = r#"protocols = ["smtp", "lmtp", "submission"]
[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
lmtp = "unix:lmtp.sock"
[mail]
location = "maildir:/srv/mail/%u"
[auth]
passdb = ["passwd-file:users"]
[smtp]
local_domains = ["example.com", "example.org"]
relayhost = "[192.0.2.1]:25"
relay_networks = ["192.0.2.0/24"]
queue_dir = "queue"
"#;

#[test]
fn a_good_smtp_config_passes_with_an_lmtp_socket() {
    let (ok, text) = check(SMTP);
    assert!(ok, "{text}");
    assert!(
        text.contains("smtp on 127.0.0.1:0, submission on 127.0.0.1:0, lmtp on unix:"),
        "{text}"
    );
    assert!(text.contains("lmtp.sock)"), "{text}");
}

#[test]
fn smtp_settings_name_line_and_key() {
    let cfg = SMTP
        .replace("lmtp = \"unix:lmtp.sock\"", "lmtp = \"0.0.0.0:24\"")
        .replace("\"example.org\"", "\"exa mple\"")
        .replace("relayhost = \"[192.0.2.1]:25\"", "relayhost = \"mx.example:smtp\"")
        .replace("192.0.2.0/24", "192.0.2.0/33")
        .replace(
            "queue_dir = \"queue\"",
            "queue_dir = \"queue\"\nmax_recipients = 0\naliases = \"no-such-aliases\"\n[smtp.senders]\nalice = [\"not an address\"]",
        );
    let (ok, text) = check(&cfg);
    assert!(!ok);
    for want in [
        "roost.toml:5: listen.lmtp: LMTP has no authentication",
        "roost.toml:11: smtp.local_domains[1]: \"exa mple\" is not a domain name",
        "roost.toml:12: smtp.relayhost: \"mx.example:smtp\" is not host:port",
        "roost.toml:13: smtp.relay_networks[0]: prefix length",
        "roost.toml:15: smtp.max_recipients: must be at least 1",
        "roost.toml:16: smtp.aliases: ",
        "roost.toml:18: smtp.senders.alice[0]: \"not an address\" is neither an address nor @domain",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let (ok, text) = check(&SMTP.replace("smtp = \"127.0.0.1:0\"", "smtp = \"/run/smtp.sock\""));
    assert!(!ok);
    assert!(
        text.contains("roost.toml:3: listen.smtp: only lmtp may listen on a unix socket"),
        "{text}"
    );
}

#[test]
fn an_aliases_file_error_names_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let aliases = dir.path().join("aliases");
    std::fs::write(&aliases, "postmaster: root\nthis line has no colon\n").unwrap();
    let cfg = format!("{SMTP}aliases = \"{}\"\n", aliases.display());
    let (ok, text) = check(&cfg);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "roost.toml:15: smtp.aliases: {}:2: expected `name: target, target`",
            aliases.display()
        )),
        "{text}"
    );
}

/// Runs `roost serve -c` on `config` (in a temp dir with a passwd-file) and returns its stderr
/// once it exits; a server still running after 20 s is killed and the test fails.
fn serve_until_exit(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:{PLAIN}pw\n").unwrap();
    let path = dir.path().join("roost.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(roost_bin())
        .args(["serve", "-c"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "roost kept serving:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const SUBMISSION: &str = r#"protocols = ["submission"]
[listen]
submission = "127.0.0.1:0"
[mail]
location = "maildir:MAIL/%u"
MAILUSER
[auth]
passdb = ["passwd-file:users"]
"#;

/// The issue's second case: an ordinary user serves SMTP without `queue_dir`, and the default
/// (/var/spool/roost) is root's. The error names the path, the user and the key to set.
#[test]
fn an_ordinary_user_without_queue_dir_is_told_which_key_to_set() {
    if common::is_root() {
        eprintln!("skipping: root may write /var/spool; .ci/test runs this as roost-test");
        return;
    }
    let mail = tempfile::tempdir().unwrap();
    let config = SUBMISSION
        .replace("MAILUSER", "")
        .replace("MAIL", &mail.path().display().to_string());
    let log = serve_until_exit(&config);
    let user = whoami();
    assert!(log.contains("/var/spool/roost"), "{log}");
    assert!(
        log.contains(&format!(
            "permission denied for user {user} (the SMTP queue)"
        )),
        "{log}"
    );
    assert!(log.contains("set [smtp] queue_dir to a place"), "{log}");
}

/// A queue directory under a private (0500) directory: as root the master finds that the login
/// process (`nobody`) cannot pass through; as an ordinary user the queue cannot be created.
/// Either way the error names the path, the user and `[smtp] queue_dir`.
#[test]
fn a_queue_dir_behind_a_private_directory_names_path_user_and_key() {
    let private = tempfile::tempdir().unwrap();
    let mail = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let queue = private.path().join("queue");
    let (mail_user, user) = if common::is_root() {
        ("user = \"nobody\"", "nobody".to_string())
    } else {
        ("", whoami())
    };
    let config = SUBMISSION
        .replace("MAILUSER", mail_user)
        .replace("MAIL", &mail.path().display().to_string())
        + &format!("[smtp]\nqueue_dir = \"{}\"\n", queue.display());
    let log = serve_until_exit(&config);
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(log.contains(&queue.display().to_string()), "{log}");
    assert!(
        log.contains(&format!("permission denied for user {user}")),
        "{log}"
    );
    assert!(log.contains("[smtp] queue_dir"), "{log}");
}

/// As root, the master checks before it starts workers that `[mail] user` can pass through to
/// the mail root: a private directory above it stops roost with path, user and key.
#[test]
fn as_root_a_mail_root_its_owner_cannot_reach_names_path_user_and_key() {
    if !common::is_root() {
        eprintln!("skipping: only roost started as root runs workers as another user");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = r#"protocols = ["imap"]
[listen]
imap = "127.0.0.1:0"
[mail]
location = "maildir:MAIL/mail/%u"
user = "nobody"
[auth]
passdb = ["passwd-file:users"]
"#
    .replace("MAIL", &private.path().display().to_string());
    let log = serve_until_exit(&config);
    let root = private.path().join("mail");
    assert!(
        log.contains(&format!(
            "{}: permission denied for user nobody (the mail workers), which cannot pass through {} (mode 0700); set [mail] location",
            root.display(),
            private.path().display()
        )),
        "{log}"
    );
}
