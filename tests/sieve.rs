//! Sieve at delivery, end to end: a script is put where ManageSieve keeps it (the user's
//! `sieve/` directory beside their mail, `active` naming the script), mail arrives over real
//! SMTP (port 25) or LMTP, and what the user would see is read back over IMAP: the folder a
//! message landed in and its flags, a vacation reply that reaches the sender once per period,
//! a redirect loop stopped, `reject` refusing at LMTP time, a broken script keeping the mail
//! in INBOX.

mod common;

use std::path::PathBuf;

use base64::{engine::general_purpose::STANDARD, Engine};
use std::time::{Duration, Instant};

use common::{
    base_config, give_to_mail_owner, imap_login, imap_ok, imap_run, LineClient, TestServer,
};

fn server() -> TestServer {
    TestServer::start(&base_config(
        &["imap", "smtp", "lmtp", "sieve"],
        "[smtp]\nlocal_domains = [\"example.com\"]\n",
    ))
}

/// Makes `text` the user's active script, as ManageSieve's PUTSCRIPT + SETACTIVE leave it.
fn activate(server: &TestServer, user: &str, text: &str) -> PathBuf {
    let home = server.mail_root().join(user);
    let dir = home.join("sieve");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.sieve"), text).unwrap();
    let _ = std::fs::remove_file(dir.join("active"));
    std::os::unix::fs::symlink("main.sieve", dir.join("active")).unwrap();
    give_to_mail_owner(&home);
    dir
}

/// One message over SMTP or LMTP; the replies to each RCPT and to the final dot.
fn send(
    server: &TestServer,
    protocol: &str,
    from: &str,
    to: &str,
    head: &str,
    body: &str,
) -> String {
    let mut c = LineClient::connect(server.addr(protocol));
    assert!(c.line().starts_with("220 "));
    let hello = if protocol == "lmtp" { "LHLO" } else { "EHLO" };
    c.send(&format!("{hello} sender.test\r\n"));
    while c.line().starts_with("250-") {}
    for line in [format!("MAIL FROM:<{from}>"), format!("RCPT TO:<{to}>")] {
        let reply = c.cmd(&line, "")[0].clone();
        assert!(reply.starts_with("250"), "{line}: {reply}");
    }
    assert!(c.cmd("DATA", "")[0].starts_with("354"));
    c.send(&format!(
        "From: <{from}>\r\nTo: <{to}>\r\n{head}Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n.\r\n"
    ));
    c.line().trim_end().to_string()
}

/// Subject and flags of every message in a folder (`None` if the folder does not exist).
fn folder(server: &TestServer, user: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut c = imap_login(server, user);
    let (_, tagged) = imap_run(&mut c, "s", &format!("SELECT \"{name}\""));
    if !tagged.starts_with("s OK") {
        return None;
    }
    let (lines, _) = imap_ok(
        &mut c,
        "f",
        "UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    let mut out = Vec::new();
    let mut flags = String::new();
    for line in lines {
        if let Some(at) = line.find("FLAGS (") {
            let rest = &line[at + 7..];
            flags = rest[..rest.find(')').unwrap_or(0)].to_string();
        }
        if let Some(subject) = line.strip_prefix("Subject: ") {
            out.push((subject.to_string(), flags.clone()));
        }
    }
    Some(out)
}

fn subjects(server: &TestServer, user: &str, name: &str) -> Vec<String> {
    folder(server, user, name)
        .unwrap_or_default()
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// Waits (bounded) until `user`'s folder holds `n` messages; the queue delivers follow-ups.
fn wait_for(server: &TestServer, user: &str, name: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = subjects(server, user, name);
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fileinto_with_flags_and_create_and_the_rest_kept() {
    let server = server();
    activate(
        &server,
        "plain",
        "require [\"fileinto\", \"imap4flags\", \"mailbox\"];\r\n\
         if header :contains \"List-Id\" \"rust\" {\r\n\
           fileinto :create :flags [\"\\\\Flagged\", \"$rust\"] \"Lists/rust\";\r\n\
         } elsif header :is \"Subject\" \"seen\" { addflag \"\\\\Seen\"; }\r\n",
    );
    let list = "Subject: weekly\r\nList-Id: <rust.lists.example>\r\n";
    assert!(send(
        &server,
        "smtp",
        "a@far.example",
        "plain@example.com",
        list,
        "news"
    )
    .starts_with("250 "));
    assert!(send(
        &server,
        "smtp",
        "a@far.example",
        "plain@example.com",
        "Subject: seen\r\n",
        "x"
    )
    .starts_with("250 "));
    let filed = folder(&server, "plain", "Lists/rust").expect("the folder was created");
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!(filed[0].0, "weekly");
    assert!(
        filed[0].1.contains("\\Flagged") && filed[0].1.contains("$rust"),
        "{filed:?}"
    );
    let inbox = folder(&server, "plain", "INBOX").unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(
        inbox[0].0 == "seen" && inbox[0].1.contains("\\Seen"),
        "{inbox:?}"
    );
}

#[test]
fn subaddress_and_envelope_steer_delivery() {
    let server = server();
    activate(
        &server,
        "plain",
        "require [\"fileinto\", \"envelope\", \"subaddress\"];\r\n\
         if envelope :detail \"to\" \"shop\" { fileinto \"Shopping\"; stop; }\r\n\
         if envelope :domain \"from\" \"spam.example\" { discard; }\r\n",
    );
    let rcpt = "plain+shop@example.com";
    assert!(send(
        &server,
        "lmtp",
        "a@far.example",
        rcpt,
        "Subject: order\r\n",
        "x"
    )
    .starts_with("250 "));
    assert!(send(
        &server,
        "lmtp",
        "b@spam.example",
        "plain@example.com",
        "Subject: junk\r\n",
        "x"
    )
    .starts_with("250 "));
    assert!(send(
        &server,
        "lmtp",
        "c@far.example",
        "plain@example.com",
        "Subject: hi\r\n",
        "x"
    )
    .starts_with("250 "));
    // Shopping did not exist: without :create the copy is kept in INBOX rather than lost.
    let inbox = subjects(&server, "plain", "INBOX");
    assert!(
        inbox.contains(&"order".to_string()) && inbox.contains(&"hi".to_string()),
        "{inbox:?}"
    );
    assert!(!inbox.contains(&"junk".to_string()), "discarded: {inbox:?}");
}

#[test]
fn reject_refuses_in_the_dialogue_and_a_broken_script_keeps_mail() {
    let server = server();
    activate(
        &server,
        "plain",
        "require \"reject\";\r\nif header :contains \"Subject\" \"offer\" { reject \"No offers, thanks.\"; }\r\n",
    );
    assert_eq!(
        send(
            &server,
            "lmtp",
            "a@far.example",
            "plain@example.com",
            "Subject: offer\r\n",
            "x"
        ),
        "550 5.7.1 <plain@example.com>: No offers, thanks."
    );
    assert_eq!(
        send(
            &server,
            "smtp",
            "a@far.example",
            "plain@example.com",
            "Subject: offer 2\r\n",
            "x"
        ),
        "550 5.7.1 No offers, thanks.",
        "port 25 refuses in the dialogue when every recipient rejected it"
    );
    assert!(subjects(&server, "plain", "INBOX").is_empty());
    let dir = activate(&server, "plain", "if header :bogus \"x\" { discard; ");
    assert!(send(
        &server,
        "lmtp",
        "a@far.example",
        "plain@example.com",
        "Subject: kept\r\n",
        "x"
    )
    .starts_with("250 "));
    assert_eq!(subjects(&server, "plain", "INBOX"), ["kept"]);
    let problems = std::fs::read_to_string(dir.join("roost-sieve.log")).unwrap();
    assert!(problems.contains("does not compile"), "{problems}");
    // The user learns of it through ManageSieve, once, when they next activate a script.
    let mut m = LineClient::connect(server.addr("sieve"));
    while !m.line().starts_with("OK") {}
    let token = STANDARD.encode(format!("\0plain\0{}", common::PASSWORD));
    assert!(m.cmd(&format!("AUTHENTICATE \"PLAIN\" \"{token}\""), "")[0].starts_with("OK"));
    let told = m.cmd("SETACTIVE \"main\"", "")[0].clone();
    assert!(told.starts_with("OK (WARNINGS) \"Setactive completed. Your scripts failed at delivery 1 time(s); the latest: "), "{told}");
    assert!(told.contains("does not compile"), "{told}");
    assert_eq!(
        m.cmd("SETACTIVE \"main\"", "")[0],
        "OK \"Setactive completed.\"\r\n"
    );
}

#[test]
fn vacation_answers_each_sender_once_per_period() {
    let server = server();
    activate(
        &server,
        "plain",
        "require \"vacation\";\r\nvacation :days 7 :subject \"Away\" \"Back on Monday.\";\r\n",
    );
    for n in 1..=3 {
        let head = format!("Subject: question {n}\r\nMessage-ID: <q{n}@example.com>\r\n");
        let reply = send(
            &server,
            "smtp",
            "sha512@example.com",
            "plain@example.com",
            &head,
            "?",
        );
        assert!(reply.starts_with("250 "), "{reply}");
    }
    // A list message gets no reply (RFC 3834).
    let list = "Subject: digest\r\nList-Id: <l.example.com>\r\nPrecedence: list\r\n";
    assert!(send(
        &server,
        "smtp",
        "sha256@example.com",
        "plain@example.com",
        list,
        "x"
    )
    .starts_with("250 "));
    assert_eq!(wait_for(&server, "sha512", "INBOX", 1), ["Away"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        subjects(&server, "sha512", "INBOX"),
        ["Away"],
        "exactly one reply"
    );
    assert!(
        subjects(&server, "sha256", "INBOX").is_empty(),
        "no reply to a list"
    );
    assert_eq!(
        subjects(&server, "plain", "INBOX").len(),
        4,
        "vacation keeps the mail"
    );
}

#[test]
fn a_redirect_loop_is_stopped_and_the_message_kept() {
    let server = server();
    activate(&server, "plain", "redirect \"sha256@example.com\";\r\n");
    activate(&server, "sha256", "redirect \"plain@example.com\";\r\n");
    let reply = send(
        &server,
        "smtp",
        "a@far.example",
        "plain@example.com",
        "Subject: ping\r\n",
        "x",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let kept = wait_for(&server, "plain", "INBOX", 1);
    assert_eq!(kept, ["ping"], "kept where the loop was noticed");
    assert!(subjects(&server, "sha256", "INBOX").is_empty());
    server.wait_for_log("redirect loop stopped");
}

/// Every extension a user relies on, each steering one message into its own folder, through
/// real LMTP delivery; read back over IMAP.
#[test]
fn each_extension_steers_a_real_delivery() {
    let server = server();
    let dir = activate(
        &server,
        "plain",
        "require [\"fileinto\", \"mailbox\", \"body\", \"variables\", \"copy\", \"relational\",\r\n\
         \"comparator-i;ascii-numeric\", \"regex\", \"include\", \"date\", \"index\", \"ereject\"];\r\n\
         if body :text :contains \"invoice\" { fileinto :create \"Body\"; stop; }\r\n\
         if header :regex \"Subject\" \"^ticket #([0-9]+)$\" { set \"n\" \"${1}\";\r\n\
           fileinto :create \"Ticket-${n}\"; stop; }\r\n\
         if header :value \"gt\" :comparator \"i;ascii-numeric\" \"X-Priority\" \"3\" {\r\n\
           fileinto :create \"Low\"; stop; }\r\n\
         if header :index 2 :contains \"Received\" \"relay.old\" { fileinto :create \"Indexed\"; stop; }\r\n\
         if date :is \"date\" \"year\" \"1999\" { fileinto :create \"Old\"; stop; }\r\n\
         if header :contains \"Subject\" \"copy\" { fileinto :copy :create \"Copies\"; }\r\n\
         if header :contains \"Subject\" \"shared\" { include :personal \"shared\"; }\r\n\
         if header :contains \"Subject\" \"refuse\" { ereject \"Refused politely.\"; }\r\n",
    );
    std::fs::write(
        dir.join("shared.sieve"),
        "require [\"fileinto\", \"mailbox\"];\r\nfileinto :create \"Included\";\r\n",
    )
    .unwrap();
    give_to_mail_owner(&dir);
    let lmtp = |head: &str, body: &str| {
        send(
            &server,
            "lmtp",
            "a@far.example",
            "plain@example.com",
            head,
            body,
        )
    };
    for (head, body) in [
        ("Subject: bill\r\n", "please pay this invoice"),
        ("Subject: ticket #42\r\n", "x"),
        ("Subject: later\r\nX-Priority: 5\r\n", "x"),
        ("Received: from relay.old by mx\r\nSubject: hops\r\n", "x"),
        ("Subject: copy this\r\n", "x"),
        ("Subject: shared rule\r\n", "x"),
    ] {
        let reply = lmtp(head, body);
        assert!(reply.starts_with("250 "), "{head}: {reply}");
    }
    // `send` writes today's Date; an old one needs its own header block.
    let mut c = LineClient::connect(server.addr("lmtp"));
    c.line();
    c.send("LHLO t\r\n");
    while c.line().starts_with("250-") {}
    c.cmd("MAIL FROM:<a@far.example>", "");
    c.cmd("RCPT TO:<plain@example.com>", "");
    c.cmd("DATA", "");
    c.send("Subject: y2k\r\nDate: Fri, 31 Dec 1999 10:00:00 +0000\r\n\r\nold\r\n.\r\n");
    assert!(c.line().starts_with("250 "));
    assert_eq!(
        lmtp("Subject: refuse me\r\n", "x"),
        "550 5.7.1 <plain@example.com>: Refused politely."
    );
    for (folder, subject) in [
        ("Body", "bill"),
        ("Ticket-42", "ticket #42"),
        ("Low", "later"),
        ("Indexed", "hops"),
        ("Old", "y2k"),
        ("Copies", "copy this"),
        ("Included", "shared rule"),
    ] {
        assert_eq!(subjects(&server, "plain", folder), [subject], "{folder}");
    }
    assert_eq!(
        subjects(&server, "plain", "INBOX"),
        ["copy this"],
        ":copy kept the original"
    );
}

#[test]
fn redirect_hands_the_message_on_marked_with_who_redirected_it() {
    let server = server();
    activate(&server, "plain", "redirect \"sha256@example.com\";\r\n");
    let reply = send(
        &server,
        "smtp",
        "a@far.example",
        "plain@example.com",
        "Subject: fwd\r\n",
        "x",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(wait_for(&server, "sha256", "INBOX", 1), ["fwd"]);
    assert!(
        subjects(&server, "plain", "INBOX").is_empty(),
        "redirect cancels the keep"
    );
    let mut c = imap_login(&server, "sha256");
    imap_ok(&mut c, "s", "SELECT INBOX");
    let (lines, _) = imap_ok(
        &mut c,
        "f",
        "FETCH 1 BODY.PEEK[HEADER.FIELDS (X-SIEVE-REDIRECTED-FROM RETURN-PATH)]",
    );
    let header = lines.join("\n");
    assert!(
        header.contains("X-Sieve-Redirected-From: <plain@example.com>"),
        "{header}"
    );
    assert!(
        header.contains("Return-Path: <a@far.example>"),
        "the sender is kept: {header}"
    );
}

/// `roost deliver` (Postfix's `mailbox_command`) is a door like the others: the user's script
/// sees the address the MTA passed with -a, and the vacation reply it asks for is sent.
#[test]
fn roost_deliver_runs_the_users_script_and_sends_what_it_asks() {
    let server = server();
    activate(
        &server,
        "plain",
        "require [\"fileinto\", \"envelope\", \"subaddress\", \"vacation\"];\r\n\
         if envelope :detail \"to\" \"shop\" { fileinto \"Shopping\"; }\r\n\
         vacation :subject \"Away\" \"Back soon.\";\r\n",
    );
    let config = server.dir.path().join("roost.toml");
    let mut child = std::process::Command::new(common::roost_bin())
        .args(["deliver", "-c"])
        .arg(&config)
        .args([
            "-u",
            "plain",
            "-f",
            "sha512@example.com",
            "-a",
            "plain+shop@example.com",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let message = "From: <sha512@example.com>\r\nTo: <plain+shop@example.com>\r\n\
                   Subject: order\r\nMessage-ID: <o1@example.com>\r\n\r\nthanks\r\n";
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), message.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    // Shopping does not exist (no :create): kept in INBOX, not lost.
    assert_eq!(subjects(&server, "plain", "INBOX"), ["order"]);
    assert_eq!(wait_for(&server, "sha512", "INBOX", 1), ["Away"]);
}
