//! Quota over real sockets (RFC 9208 for IMAP, 552 5.2.2 / 452 4.2.2 for LMTP): the limits
//! from `[mail] quota` / `quota_messages` and from a passwd-file `userdb_quota_rule`, the usage
//! GETQUOTA reports as mail comes and goes, and every door refusing mail that does not fit.

mod common;

use std::process::Command;

use common::{
    base_config, imap_login as logged_in, imap_run as run, roost_bin, LineClient, TestServer,
    PASSWORD,
};

fn append(c: &mut LineClient, tag: &str, size: usize) -> String {
    let head = "Subject: filler\r\n\r\n";
    let body = "x".repeat(size.saturating_sub(head.len()));
    let message = format!("{head}{body}");
    c.send(&format!(
        "{tag} APPEND INBOX {{{}+}}\r\n{message}\r\n",
        message.len()
    ));
    let reply = c.until(&format!("{tag} "));
    reply.last().unwrap().trim_end().to_string()
}

fn lmtp_deliver(server: &TestServer, rcpt: &str) -> String {
    let mut l = LineClient::connect(server.addr("lmtp"));
    assert!(l.line().starts_with("220 "));
    l.send("LHLO mta.test\r\n");
    while l.line().starts_with("250-") {}
    for line in ["MAIL FROM:<mta@far.example>", &format!("RCPT TO:<{rcpt}>")] {
        let reply = l.cmd(line, "")[0].clone();
        assert!(reply.starts_with("250"), "{line}: {reply}");
    }
    assert!(l.cmd("DATA", "")[0].starts_with("354"));
    l.send("Subject: by LMTP\r\n\r\nhello\r\n.\r\n");
    l.line().trim_end().to_string()
}

fn smtp_section() -> &'static str {
    "[smtp]\nlocal_domains = [\"example.com\"]\n"
}

#[test]
fn limits_from_the_config_are_reported_and_enforced_at_every_door() {
    let config = base_config(
        &["imap", "lmtp"],
        &format!("quota = \"4k\"\nquota_messages = 3\n{}", smtp_section()),
    );
    let server = TestServer::start(&config);
    let mut c = logged_in(&server, "plain");
    let (caps, _) = run(&mut c, "c", "CAPABILITY");
    assert!(
        caps[0].contains(" QUOTA ") && caps[0].contains("QUOTA=RES-STORAGE"),
        "{caps:?}"
    );
    let (u, t) = run(&mut c, "q1", "GETQUOTAROOT INBOX");
    assert!(t.starts_with("q1 OK"), "{t}");
    assert_eq!(
        u,
        [
            "* QUOTAROOT INBOX \"\"",
            "* QUOTA \"\" (STORAGE 0 4 MESSAGE 0 3)"
        ]
    );

    assert!(append(&mut c, "p1", 1000).starts_with("p1 OK"));
    let (u, _) = run(&mut c, "q2", "GETQUOTA \"\"");
    assert_eq!(u, ["* QUOTA \"\" (STORAGE 1 4 MESSAGE 1 3)"]);
    // Too big for what is left.
    let refused = append(&mut c, "p2", 3500);
    assert!(refused.starts_with("p2 NO [OVERQUOTA]"), "{refused}");
    // Small ones fit until the message limit.
    assert!(append(&mut c, "p3", 100).starts_with("p3 OK"));
    assert!(lmtp_deliver(&server, "plain@example.com").starts_with("250 2.0.0"));
    let refused = append(&mut c, "p4", 100);
    assert!(refused.starts_with("p4 NO [OVERQUOTA]"), "{refused}");
    let refused = lmtp_deliver(&server, "plain@example.com");
    assert!(
        refused.starts_with("552 5.2.2 <plain@example.com>"),
        "{refused}"
    );
    run(&mut c, "s", "SELECT INBOX");
    let (_, t) = run(&mut c, "k", "COPY 1 Trash");
    assert!(t.starts_with("k NO [OVERQUOTA]"), "{t}");
    let (_, t) = run(&mut c, "sq", "SETQUOTA \"\" (STORAGE 100000)");
    assert!(t.starts_with("sq NO"), "{t}");

    // Expunging makes room again, and the usage follows.
    run(&mut c, "d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    run(&mut c, "x", "EXPUNGE");
    let (u, _) = run(&mut c, "q3", "GETQUOTA \"\"");
    assert_eq!(u, ["* QUOTA \"\" (STORAGE 1 4 MESSAGE 2 3)"]);
    assert!(append(&mut c, "p5", 100).starts_with("p5 OK"));
    // The usage is what STATUS SIZE says the folders hold.
    let (u, _) = run(&mut c, "z", "STATUS INBOX (SIZE)");
    let size: u64 = u[0]
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{u:?}"));
    let (u, _) = run(&mut c, "q6", "GETQUOTA \"\"");
    assert_eq!(
        u,
        [format!(
            "* QUOTA \"\" (STORAGE {} 4 MESSAGE 3 3)",
            size.div_ceil(1024)
        )]
    );
    // STATUS and GETQUOTAROOT of another folder name the same root.
    let (u, _) = run(&mut c, "q4", "GETQUOTAROOT Trash");
    assert_eq!(u[0], "* QUOTAROOT Trash \"\"");
    let (_, t) = run(&mut c, "q5", "GETQUOTAROOT Nowhere");
    assert!(t.starts_with("q5 NO"), "{t}");
}

#[test]
fn a_passdb_rule_overrides_the_default_and_full_can_mean_try_later() {
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new(roost_bin())
        .args(["pw", "-s", "SHA512-CRYPT", "-p", PASSWORD])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!(
            "plain:{h}::::::userdb_quota_rule=*:messages=1\nfree:{h}::::::\n",
            h = hash.trim()
        ),
    )
    .unwrap();
    let config = base_config(
        &["imap", "lmtp"],
        &format!(
            "quota_full_tempfail = true\n{}\n[auth]\npassdb = [\"passwd-file:{}\"]\nfailure_delay_ms = 300\n",
            smtp_section(),
            users.display()
        ),
    );
    let server = TestServer::start(&config);
    let mut c = logged_in(&server, "plain");
    let (u, _) = run(&mut c, "q", "GETQUOTAROOT INBOX");
    assert_eq!(u, ["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (MESSAGE 0 1)"]);
    assert!(lmtp_deliver(&server, "plain@example.com").starts_with("250 2.0.0"));
    let later = lmtp_deliver(&server, "plain@example.com");
    assert!(
        later.starts_with("452 4.2.2 <plain@example.com>"),
        "{later}"
    );

    // A user without limits has no quota root.
    let mut f = logged_in(&server, "free");
    let (u, t) = run(&mut f, "q", "GETQUOTAROOT INBOX");
    assert!(t.starts_with("q OK"), "{t}");
    assert_eq!(u, ["* QUOTAROOT INBOX"]);
    let (_, t) = run(&mut f, "g", "GETQUOTA \"\"");
    assert!(t.starts_with("g NO"), "{t}");
    assert!(lmtp_deliver(&server, "free@example.com").starts_with("250 2.0.0"));
    assert!(lmtp_deliver(&server, "free@example.com").starts_with("250 2.0.0"));
}

#[test]
fn mbox_stores_are_limited_and_counted_too() {
    let config = base_config(
        &["imap", "lmtp"],
        &format!("quota_messages = 2\nquota = \"1M\"\n{}", smtp_section()),
    )
    .replace(
        "maildir:MAILROOT/%u",
        "mbox:MAILROOT/%u:INBOX=MAILROOT/%u.inbox",
    );
    let server = TestServer::start(&config);
    let mut c = logged_in(&server, "plain");
    assert!(append(&mut c, "p1", 500).starts_with("p1 OK"));
    assert!(lmtp_deliver(&server, "plain@example.com").starts_with("250 2.0.0"));
    let refused = append(&mut c, "p2", 100);
    assert!(refused.starts_with("p2 NO [OVERQUOTA]"), "{refused}");
    assert!(lmtp_deliver(&server, "plain@example.com").starts_with("552 5.2.2"));
    let (u, _) = run(&mut c, "q", "GETQUOTA \"\"");
    assert_eq!(u, ["* QUOTA \"\" (STORAGE 1 1024 MESSAGE 2 2)"]);
    // A lost usage file is counted afresh from the mail at the next login.
    std::fs::remove_file(server.mail_root().join("plain/.roost/maildirsize")).unwrap();
    let mut d = logged_in(&server, "plain");
    let (u, _) = run(&mut d, "q", "GETQUOTA \"\"");
    assert_eq!(u, ["* QUOTA \"\" (STORAGE 1 1024 MESSAGE 2 2)"]);
    run(&mut d, "s", "SELECT INBOX");
    run(&mut d, "d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    run(&mut d, "x", "EXPUNGE");
    let (u, _) = run(&mut d, "r", "GETQUOTA \"\"");
    assert_eq!(u, ["* QUOTA \"\" (STORAGE 1 1024 MESSAGE 1 2)"]);
}
