//! The configured mail location decides the format: the same IMAP APPEND and POP3 STAT work on
//! maildir and on mbox, and the mail lands where an admin expects it.

mod common;

use common::{base_config, mail_client_ok, TestServer, PASSWORD};

#[test]
fn append_over_imap_then_stat_over_pop3_on_mbox() {
    let config = base_config(&["imap", "pop3"], "").replace(
        "maildir:MAILROOT/%u",
        "mbox:MAILROOT/%u:INBOX=MAILROOT/%u.inbox",
    );
    let server = TestServer::start(&config);
    let creds = ["--user", "plain", "--password", PASSWORD];
    let out = mail_client_ok(
        "imap",
        server.addr("imap"),
        &[
            &creds[..],
            &["--append", "Subject: into mbox\\n\\nFrom the start\\n"],
        ]
        .concat(),
    );
    assert!(out.contains("MESSAGES 1"), "{out}");
    let out = mail_client_ok("pop3", server.addr("pop3"), &creds);
    assert!(out.contains("STAT 1 "), "{out}");
    let mbox = std::fs::read_to_string(server.mail_root().join("plain.inbox")).unwrap();
    assert!(mbox.starts_with("From roost@localhost "), "{mbox}");
    assert!(
        mbox.contains("X-UID: 1\n") && mbox.contains("\n>From the start\r\n"),
        "{mbox:?}"
    );
}

#[test]
fn append_over_imap_lands_in_the_maildir() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let creds = ["--user", "sha256", "--password", PASSWORD];
    mail_client_ok(
        "imap",
        server.addr("imap"),
        &[&creds[..], &["--append", "Subject: x\\n\\ny\\n"]].concat(),
    );
    let cur = server.mail_root().join("sha256/cur");
    let files: Vec<_> = std::fs::read_dir(&cur).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].file_name().to_string_lossy().contains(",U=1:2,"));
    assert!(server.mail_root().join("sha256/dovecot-uidlist").exists());
}
