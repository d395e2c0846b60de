//! Delivery status notifications (RFC 3461) end to end: RET/ENVID/NOTIFY/ORCPT reach a
//! smarthost that offers DSN, and roost's own reports honour them — no bounce for
//! NOTIFY=NEVER, headers only for RET=HDRS, the whole message for RET=FULL, a success report
//! in the sender's INBOX after local delivery (Action: delivered) or after handing the message
//! to a smarthost without DSN (Action: relayed); bad values get 501.

mod common;
mod smarthost;

use std::time::Duration;

use common::{base_config, LineClient, TestServer, PASSWORD};
use smarthost::{Options, Smarthost, TestCa};

fn server(relayhost: Option<&Smarthost>) -> TestServer {
    let relay = relayhost
        .map(|sm| format!("relayhost = \"127.0.0.1:{}\"\n", sm.addr.port()))
        .unwrap_or_default();
    let smtp =
        format!("[smtp]\nlocal_domains = [\"example.com\"]\nqueue_retry_secs = 3600\n{relay}");
    TestServer::start(&base_config(&["submission", "smtp"], &smtp))
}

fn smarthost(dsn: bool, rcpt_reply: &str) -> Smarthost {
    let opts = Options {
        dsn,
        rcpt_reply: rcpt_reply.into(),
        ..Options::default()
    };
    Smarthost::start(opts, &TestCa::new())
}

/// A submission session logged in as user plain.
fn submission(server: &TestServer) -> LineClient {
    use base64::Engine;
    let mut c = LineClient::connect(server.addr("submission"));
    assert!(c.line().starts_with("220 "));
    let ehlo = c.cmd("EHLO client.test", "250 ").concat();
    assert!(ehlo.contains("250-DSN\r\n"), "{ehlo}");
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0plain\0{PASSWORD}"));
    assert!(c.cmd(&format!("AUTH PLAIN {blob}"), "")[0].starts_with("235 "));
    c
}

fn ok(c: &mut LineClient, line: &str) {
    let reply = c.cmd(line, "").remove(0);
    assert!(reply.starts_with("250 "), "{line}: {reply}");
}

/// One message from plain@example.com with the given MAIL and RCPT parameters.
fn send(c: &mut LineClient, mail_params: &str, rcpt: &str, rcpt_params: &str, body: &str) {
    ok(c, &format!("MAIL FROM:<plain@example.com>{mail_params}"));
    ok(c, &format!("RCPT TO:<{rcpt}>{rcpt_params}"));
    assert!(c.cmd("DATA", "")[0].starts_with("354 "));
    let msg = format!("From: <plain@example.com>\r\nTo: <{rcpt}>\r\nSubject: dsn test for {rcpt}\r\n\r\n{body}\r\n.");
    ok(c, &msg);
}

fn inbox(server: &TestServer, user: &str) -> Vec<String> {
    common::inbox_files(server, user)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

/// Waits (bounded) until a user's INBOX holds `n` messages.
fn wait_inbox(server: &TestServer, user: &str, n: usize) -> Vec<String> {
    common::wait_inbox_files(server, user, n)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

#[test]
fn dsn_parameters_reach_a_smarthost_that_offers_dsn() {
    let sm = smarthost(true, "250 2.1.5 Ok");
    let s = server(Some(&sm));
    let mut c = submission(&s);
    send(
        &mut c,
        " RET=HDRS ENVID=QQ+2B1",
        "friend@elsewhere.example",
        " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;friend+40elsewhere.example",
        "hello",
    );
    let got = sm.wait(1).remove(0);
    assert_eq!(
        got.mail,
        "MAIL FROM:<plain@example.com> RET=HDRS ENVID=QQ+2B1"
    );
    assert_eq!(
        got.rcpts,
        ["RCPT TO:<friend@elsewhere.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;friend+40elsewhere.example"]
    );
    // The smarthost reports from here on: no "relayed" report comes from roost.
    send(&mut c, "", "plain@example.com", "", "marker");
    wait_inbox(&s, "plain", 1);
    std::thread::sleep(Duration::from_millis(500));
    let inbox = inbox(&s, "plain");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("marker"), "{inbox:?}");
}

#[test]
fn a_smarthost_without_dsn_gets_no_parameters_and_notify_success_reports_relayed() {
    let sm = smarthost(false, "250 2.1.5 Ok");
    let s = server(Some(&sm));
    let mut c = submission(&s);
    send(
        &mut c,
        " ENVID=env-1",
        "friend@elsewhere.example",
        " NOTIFY=SUCCESS",
        "hello",
    );
    let got = sm.wait(1).remove(0);
    assert_eq!(got.mail, "MAIL FROM:<plain@example.com>");
    assert_eq!(got.rcpts, ["RCPT TO:<friend@elsewhere.example>"]);
    let report = wait_inbox(&s, "plain", 1).remove(0);
    assert!(report.contains("Return-Path: <>\r\n"), "{report}");
    assert!(
        report.contains("Subject: Successful Mail Delivery Report\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Original-Envelope-Id: env-1\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Final-Recipient: rfc822; friend@elsewhere.example\r\nAction: relayed\r\nStatus: 2.0.0\r\n"),
        "{report}"
    );
}

#[test]
fn notify_success_after_local_delivery_puts_a_report_in_the_senders_inbox() {
    let s = server(None);
    let mut c = submission(&s);
    send(
        &mut c,
        " ENVID=local+2B1",
        "sha256@example.com",
        " NOTIFY=SUCCESS ORCPT=rfc822;Sha256+40Example.com",
        "the body",
    );
    let delivered = wait_inbox(&s, "sha256", 1).remove(0);
    assert!(delivered.contains("the body"), "{delivered}");
    let report = wait_inbox(&s, "plain", 1).remove(0);
    assert!(
        report.contains("Subject: Successful Mail Delivery Report\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Content-Type: multipart/report; report-type=delivery-status;"),
        "{report}"
    );
    assert!(
        report.contains("Original-Envelope-Id: local+1\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Original-Recipient: rfc822; Sha256@Example.com\r\nFinal-Recipient: rfc822; sha256@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Subject: dsn test for sha256@example.com"),
        "the header is quoted"
    );
    assert!(
        !report.contains("the body"),
        "a success report has no body: {report}"
    );
    // Without NOTIFY=SUCCESS nobody is told of a delivery.
    send(&mut c, "", "sha256@example.com", "", "second");
    wait_inbox(&s, "sha256", 2);
    send(&mut c, "", "plain@example.com", "", "marker");
    wait_inbox(&s, "plain", 2);
    std::thread::sleep(Duration::from_millis(500));
    let inbox = inbox(&s, "plain");
    assert_eq!(inbox.len(), 2, "no second report: {inbox:?}");
    assert!(inbox[1].contains("marker"), "{inbox:?}");
}

#[test]
fn failure_reports_honour_notify_never_and_ret() {
    let sm = smarthost(false, "550 5.1.1 No such user there");
    let s = server(Some(&sm));
    let mut c = submission(&s);
    send(
        &mut c,
        " RET=FULL",
        "never@elsewhere.example",
        " NOTIFY=NEVER",
        "body one",
    );
    send(
        &mut c,
        " RET=HDRS",
        "hdrs@elsewhere.example",
        "",
        "body two",
    );
    send(
        &mut c,
        " RET=FULL",
        "full@elsewhere.example",
        " NOTIFY=FAILURE",
        "body three",
    );
    let bounces = wait_inbox(&s, "plain", 2);
    let about = |rcpt: &str| {
        bounces
            .iter()
            .find(|b| b.contains(&format!("Final-Recipient: rfc822; {rcpt}\r\n")))
            .unwrap_or_else(|| panic!("no bounce for {rcpt}: {bounces:?}"))
    };
    let hdrs = about("hdrs@elsewhere.example");
    assert!(
        hdrs.contains("Action: failed\r\nStatus: 5.1.1\r\n"),
        "{hdrs}"
    );
    assert!(
        hdrs.contains("Content-Type: text/rfc822-headers\r\n"),
        "{hdrs}"
    );
    assert!(
        hdrs.contains("Subject: dsn test for hdrs@elsewhere.example"),
        "{hdrs}"
    );
    assert!(
        !hdrs.contains("body two"),
        "RET=HDRS returns no body: {hdrs}"
    );
    let full = about("full@elsewhere.example");
    assert!(
        full.contains("Final-Recipient: rfc822; full@elsewhere.example\r\n"),
        "{full}"
    );
    assert!(full.contains("Content-Type: message/rfc822\r\n"), "{full}");
    assert!(
        full.contains("\r\n\r\nbody three\r\n"),
        "RET=FULL returns the message: {full}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let all = inbox(&s, "plain");
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|m| !m.contains("never@elsewhere.example")),
        "NOTIFY=NEVER: no bounce"
    );
    assert_eq!(sm.attempts(), 3, "all three were tried");
}

#[test]
fn bad_dsn_parameters_get_501_on_submission_and_port_25() {
    let s = server(None);
    let mut c = submission(&s);
    for (line, want) in [
        (
            "MAIL FROM:<plain@example.com> RET=BODY",
            "501 5.5.4 Invalid RET parameter: expected FULL or HDRS\r\n",
        ),
        (
            "MAIL FROM:<plain@example.com> ENVID=a+zz",
            "501 5.5.4 Invalid ENVID parameter: expected xtext of 1 to 100 characters\r\n",
        ),
    ] {
        assert_eq!(c.cmd(line, "").remove(0), want);
    }
    ok(&mut c, "MAIL FROM:<plain@example.com>");
    assert_eq!(
        c.cmd("RCPT TO:<sha256@example.com> NOTIFY=NEVER,SUCCESS", "")
            .remove(0),
        "501 5.5.4 Invalid NOTIFY parameter: NEVER cannot be combined with other values\r\n"
    );
    let mut mx = LineClient::connect(s.addr("smtp"));
    assert!(mx.line().starts_with("220 "));
    let ehlo = mx.cmd("EHLO far.example", "250 ").concat();
    assert!(ehlo.contains("250-DSN\r\n"), "{ehlo}");
    ok(&mut mx, "MAIL FROM:<x@far.example> RET=HDRS ENVID=x");
    assert_eq!(
        mx.cmd("RCPT TO:<sha256@example.com> ORCPT=rfc822", "").remove(0),
        "501 5.5.4 Invalid ORCPT parameter: expected addr-type;address in xtext, at most 500 characters\r\n"
    );
    ok(
        &mut mx,
        "RCPT TO:<sha256@example.com> NOTIFY=NEVER ORCPT=rfc822;sha256+40example.com",
    );
}
