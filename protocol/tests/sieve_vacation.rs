//! Vacation (RFC 5230, RFC 3834 checks) and include/return/global (RFC 6609); several
//! scripts in sequence.

mod sieve_common;

use roost_protocol::sieve::{Action, NoIncludes};
use sieve_common::*;

/// The single vacation action of a run, as (to, handle, period, reply text).
fn vacation(actions: &[Action]) -> Option<(String, String, u64, String)> {
    actions.iter().find_map(|a| match a {
        Action::Vacation {
            to,
            handle,
            period_seconds,
            reply,
            envelope_from,
        } => {
            assert_eq!(envelope_from, "");
            Some((
                to.clone(),
                handle.clone(),
                *period_seconds,
                String::from_utf8_lossy(reply).into_owned(),
            ))
        }
        _ => None,
    })
}

const CYRUS: &str = r#"require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}"#;

#[test]
fn rfc5230_reply_is_built_and_keeps_the_message() {
    let msg = simple(
        "Ann <sender@example.net>",
        "Me <me@example.com>",
        "cyrus is broken",
    );
    let actions = run(CYRUS, &msg);
    assert_eq!(actions.last(), Some(&keep()));
    let (to, handle, period, reply) = vacation(&actions).expect("a vacation action");
    assert_eq!(to, "sender@example.net");
    assert_eq!(period, 7 * 86_400);
    assert_eq!(handle.len(), 16);
    assert!(
        reply.starts_with("From: me@example.com\r\nTo: <sender@example.net>\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nSubject: Auto: cyrus is broken\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nIn-Reply-To: <m1@example.net>\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nReferences: <m1@example.net>\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nAuto-Submitted: auto-replied"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nDate: Thu, 01 Jan 2009 12:00:00 +0000\r\n"),
        "{reply}"
    );
    assert!(reply.contains("\r\nMessage-ID: <"), "{reply}");
    assert!(
        reply.contains("@example.com>\r\n"),
        "the Message-ID is in the user's domain: {reply}"
    );
    assert!(
        reply.ends_with("\r\n\r\nI'm out -- send mail to cyrus-bugs\r\n"),
        "{reply}"
    );
    let other = simple("sender@example.net", "me@example.com", "hello");
    let (_, other_handle, _, reply) = vacation(&run(CYRUS, &other)).unwrap();
    assert!(reply.contains("call me at"));
    assert_ne!(
        handle, other_handle,
        "different reasons are different handles"
    );
    // Same input, same reply: a pure function.
    assert_eq!(run(CYRUS, &msg), actions);
}

#[test]
fn rfc5230_subject_from_variables_days_addresses_handle() {
    let s = r#"require ["vacation", "variables"];
        if header :matches "subject" "*" {
            vacation :days 23 :subject "Automatic response to: ${1}"
                     :from "hemingway@example.com"
                     :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
                     :handle "away"
                     "I'm away -- send mail to foo in my absence";
        }"#;
    let msg = simple(
        "sender@example.net",
        "ts4z@landru.example.edu",
        "Café au lait",
    );
    let (_, handle, period, reply) = vacation(&run(s, &msg)).expect("addressed via :addresses");
    assert_eq!(handle, "away");
    assert_eq!(period, 23 * 86_400);
    assert!(
        reply.starts_with("From: hemingway@example.com\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("Subject: =?utf-8?B?"),
        "non-ASCII subject is encoded: {reply}"
    );
    assert!(!reply.contains("Café"), "{reply}");
    let days = |n: &str| {
        let s = format!("require \"vacation\"; vacation :days {n} \"x\";");
        vacation(&run(&s, &simple("a@b.example", "me@example.com", "x")))
            .unwrap()
            .2
    };
    assert_eq!(days("0"), 86_400);
    assert_eq!(days("365"), 30 * 86_400);
    let s = "require [\"vacation\", \"vacation-seconds\"]; vacation :seconds 7200 \"x\";";
    let got = vacation(&run(s, &simple("a@b.example", "me@example.com", "x"))).unwrap();
    assert_eq!(got.2, 86_400, "clamped to the one-day minimum");
}

#[test]
fn rfc5230_mime_reason_is_the_body_entity() {
    let s = "require \"vacation\";\nvacation :mime text:\nContent-Type: multipart/alternative; boundary=foo\n\n--foo\n\nI'm at the beach relaxing.  Mmmm, surf...\n\n--foo\nContent-Type: text/html; charset=us-ascii\n\n<P>I'm at the beach relaxing.\n\n--foo--\n.\n;\n";
    let (_, _, _, reply) =
        vacation(&run(s, &simple("a@b.example", "me@example.com", "x"))).unwrap();
    assert!(reply.contains("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=foo\r\n\r\n--foo\r\n"), "{reply}");
    assert!(!reply.contains("text/plain"), "{reply}");
}

#[test]
fn no_reply_to_robots_lists_or_mail_not_addressed_to_me() {
    let s = "require \"vacation\"; vacation \"away\";";
    let msg = simple("sender@example.net", "me@example.com", "x");
    assert!(vacation(&run(s, &msg)).is_some());
    for sender in [
        "",
        "MAILER-DAEMON@example.net",
        "owner-list@example.net",
        "list-request@example.net",
        "me@example.com",
    ] {
        let ctx = Ctx {
            from: sender,
            ..Ctx::default()
        };
        assert_eq!(run_ctx(s, &msg, &ctx), [keep()], "sender {sender:?}");
    }
    for header in [
        "Auto-Submitted: auto-generated",
        "List-Id: <l.example.net>",
        "Precedence: bulk",
        "Precedence: junk",
        "List-Unsubscribe: <mailto:x@y>",
    ] {
        let m = format!("{header}\n{msg}");
        assert_eq!(run(s, &m), [keep()], "{header}");
    }
    let m = format!("Auto-Submitted: no\n{msg}");
    assert!(vacation(&run(s, &m)).is_some());
    let not_me = simple("sender@example.net", "someone@example.com", "x");
    assert_eq!(run(s, &not_me), [keep()]);
    let cc = "From: sender@example.net\nTo: a@example.org\nCc: ME@example.com\n\nx\n";
    assert!(
        vacation(&run(s, cc)).is_some(),
        "Cc counts, case-insensitively"
    );
}

#[test]
fn rfc6609_include_and_return() {
    let main = r#"require ["include"];
        include :personal "always_allow";
        include :global "spam_tests";
        include :personal "spam_tests";
        include :personal "mailing_lists";"#;
    let mut scripts = Scripts::default()
        .with(false, "always_allow", "if address :is \"from\" \"boss@example.com\" { keep; }")
        .with(true, "spam_tests", "require [\"include\", \"fileinto\"]; if header :contains \"subject\" \"money\" { fileinto \"spam\"; return; } fileinto \"never\";")
        .with(false, "spam_tests", "require \"fileinto\"; if header :contains \"subject\" \"diploma\" { fileinto \"spam2\"; }")
        .with(false, "mailing_lists", "require \"fileinto\"; if exists \"list-id\" { fileinto \"lists\"; stop; } discard;");
    let s = script(main);
    let msg = "From: boss@example.com\nSubject: money\nList-Id: <x.example>\n\nx\n";
    let out = run_full(&[&s], msg, &Ctx::default(), &mut scripts).unwrap();
    assert_eq!(out.actions, [keep(), fileinto("spam"), fileinto("lists")]);
    assert_eq!(scripts.loads, 4);
    let missing = script("require \"include\"; include \"nope\";");
    let err = run_full(&[&missing], msg, &Ctx::default(), &mut NoIncludes).unwrap_err();
    assert!(err.0.contains("nope"), "{err}");
    let optional = script("require \"include\"; include :optional \"nope\"; discard;");
    let out = run_full(&[&optional], msg, &Ctx::default(), &mut NoIncludes).unwrap();
    assert_eq!(out.actions, [Action::Discard]);
}

#[test]
fn rfc6609_globals_and_once() {
    let main = r#"require ["variables", "include"];
        global "test";
        set "test" "$$";
        include "subject_tests";
        set "test" "Make money";
        include "subject_tests";
        include :once "counter";
        include :once "counter";"#;
    let sub = r#"require ["variables", "include", "fileinto"];
        global "test";
        if header :contains "Subject" "${test}" { fileinto "matched ${test}"; }"#;
    let counter = "require \"fileinto\"; fileinto \"counted\";";
    let mut scripts = Scripts::default()
        .with(false, "subject_tests", sub)
        .with(false, "counter", counter);
    let s = script(main);
    let msg = "Subject: Make money fast $$\n\nx\n";
    let out = run_full(&[&s], msg, &Ctx::default(), &mut scripts).unwrap();
    assert_eq!(
        out.actions,
        [
            fileinto("matched $$"),
            fileinto("matched Make money"),
            fileinto("counted")
        ]
    );
}

#[test]
fn include_loops_and_floods_are_runtime_errors() {
    let mut scripts =
        Scripts::default().with(false, "self", "require \"include\"; include \"self\";");
    let s = script("require \"include\"; include \"self\";");
    let err = run_full(&[&s], "\n", &Ctx::default(), &mut scripts).unwrap_err();
    assert!(err.0.contains("nested"), "{err}");
    let mut broken = Scripts::default().with(false, "bad", "if {");
    let s = script("require \"include\"; include \"bad\";");
    let err = run_full(&[&s], "\n", &Ctx::default(), &mut broken).unwrap_err();
    assert!(err.0.contains("bad"), "{err}");
}

#[test]
fn scripts_run_in_sequence_and_stop_ends_them_all() {
    let before = script(
        "require \"fileinto\"; fileinto :copy \"audit\";"
            .replace(":copy", "")
            .as_str(),
    );
    let user = script(
        "require \"fileinto\"; if header :is \"subject\" \"stop\" { stop; } fileinto \"user\";",
    );
    let after = script("require \"fileinto\"; fileinto \"after\";");
    let run_all = |subject: &str| {
        let msg = format!("Subject: {subject}\n\nx\n");
        run_full(
            &[&before, &user, &after],
            &msg,
            &Ctx::default(),
            &mut NoIncludes,
        )
        .unwrap()
        .actions
    };
    assert_eq!(
        run_all("go"),
        [fileinto("audit"), fileinto("user"), fileinto("after")]
    );
    assert_eq!(run_all("stop"), [fileinto("audit")]);
}
