//! Moving over from Dovecot without clients downloading anything again: Debian's Dovecot
//! serves a maildir and an mbox, an IMAP client (Python's imaplib) appends, flags, keywords and
//! expunges there, Dovecot stops, `roost import-dovecot` turns its config into a roost.toml,
//! roost starts on it, and every UIDVALIDITY, UID, flag and keyword the client saw on Dovecot
//! is the same on roost. Needs root and Dovecot (`.ci/setup` installs dovecot-imapd).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_loopback_port, is_root, port_opens, roost_bin};

const DOVECOT: &str = "/usr/sbin/dovecot";

/// What the client sees, written by the script below: per folder its UIDVALIDITY, then one
/// `UID FLAGS` line per message (\Recent left out: it is per session).
const CLIENT: &str = r#"
import imaplib, re, sys
port, mode = int(sys.argv[1]), sys.argv[2]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "secret")
def state():
    out = []
    for box in ("INBOX", "Work"):
        typ, data = m.status(box, "(UIDVALIDITY)")
        out.append("%s %s" % (box, re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1).decode()))
        m.select(box, readonly=True)
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        for item in data:
            if not item:
                continue
            uid = re.search(rb"UID (\d+)", item).group(1).decode()
            flags = sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", item).group(1).decode().split() if f != "\\Recent")
            out.append("  %s %s" % (uid, " ".join(flags)))
        m.close() if False else None
    return "\n".join(out)
if mode == "fill":
    m.create("Work")
    for box, n in (("INBOX", 5), ("Work", 3)):
        for i in range(n):
            m.append(box, None, None, ("From: a@example.org\r\nSubject: %s %d\r\n\r\nbody %d\r\n" % (box, i, i)).encode())
    m.select("INBOX")
    m.store("1", "+FLAGS", "(\\Seen)")
    m.store("2", "+FLAGS", "(\\Flagged \\Answered)")
    m.store("3", "+FLAGS", "($Label1 ProjectX)")
    m.store("4", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.select("Work")
    m.store("2", "+FLAGS", "(\\Seen $Label2)")
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.close()
print(state())
m.logout()
"#;

/// What the client saw; `Err` with its complaint.
fn client(port: u16, mode: &str) -> Result<String, String> {
    let out = Command::new("python3")
        .args(["-c", CLIENT, &port.to_string(), mode])
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Stops a server when dropped, even when an assertion failed first.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            stop(child);
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// Dovecot serving `location` for alice, the roost it becomes, and what a client saw on each.
fn migrate(location: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    for sub in ["mail", "run", "state"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let chown = Command::new("chown")
        .args(["nobody:nogroup"])
        .arg(d.join("mail"))
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::write(d.join("users"), "alice:{PLAIN}secret::::::\n").unwrap();
    let port = free_loopback_port();
    let conf = d.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
             mail_location = {location}\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            d = d.display(),
            location = location.replace("MAILROOT", &d.join("mail").display().to_string()),
        ),
    )
    .unwrap();
    let mut dovecot = Running(Some(
        Command::new(DOVECOT)
            .args(["-F", "-c"])
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    assert!(
        port_opens(port, Duration::from_secs(20)),
        "nothing listens on {port}"
    );
    let on_dovecot = client(port, "fill").unwrap_or_else(|e| {
        let log = std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default();
        panic!("on Dovecot: {e}\n{log}")
    });
    if let Some(child) = dovecot.0.take() {
        stop(child);
    }
    // Dovecot is gone; its port is free for roost.
    let imported = Command::new(roost_bin())
        .args(["import-dovecot"])
        .arg(&conf)
        .arg("-o")
        .arg(d.join("roost.toml"))
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let log = std::fs::File::create(d.join("roost.log")).unwrap();
    let roost = Running(Some(
        Command::new(roost_bin())
            .args(["serve", "-c"])
            .arg(d.join("roost.toml"))
            .current_dir(d)
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    assert!(
        port_opens(port, Duration::from_secs(20)),
        "nothing listens on {port}"
    );
    let on_roost = client(port, "look").unwrap_or_else(|e| {
        let log = std::fs::read_to_string(d.join("roost.log")).unwrap_or_default();
        let config = std::fs::read_to_string(d.join("roost.toml")).unwrap_or_default();
        panic!("on roost: {e}\n{config}\n{log}")
    });
    drop(roost);
    (on_dovecot, on_roost)
}

fn dovecot_here() -> bool {
    if !is_root() {
        eprintln!("skipped: Dovecot's daemon needs root");
        return false;
    }
    assert!(
        Path::new(DOVECOT).exists(),
        "Dovecot is missing: .ci/setup installs dovecot-imapd"
    );
    true
}

#[test]
fn a_maildir_moved_over_from_dovecot_keeps_uids_flags_and_keywords() {
    if !dovecot_here() {
        return;
    }
    let (dovecot, roost) = migrate("maildir:MAILROOT/%u");
    assert!(
        dovecot.contains("INBOX ") && dovecot.contains("$Label1 ProjectX"),
        "{dovecot}"
    );
    assert_eq!(roost, dovecot);
}

#[test]
fn an_mbox_moved_over_from_dovecot_keeps_uids_flags_and_keywords() {
    if !dovecot_here() {
        return;
    }
    let (dovecot, roost) = migrate("mbox:~/mail:INBOX=~/mail/inbox");
    assert!(
        dovecot.contains("Work ") && dovecot.contains("$Label2"),
        "{dovecot}"
    );
    assert_eq!(roost, dovecot);
}
