//! Delivery status notifications (RFC 3464, with the RFC 3461 parameters the sender gave):
//! a `multipart/report` to the envelope sender with a human explanation, one machine-readable
//! block per recipient, and the original header (or, for a failure with `RET=FULL`, the whole
//! message). Failures are reported unless the recipient said NOTIFY without FAILURE; success
//! (delivered here, or relayed to a smarthost without DSN) only with NOTIFY=SUCCESS.

use std::fs::File;
use std::io::{self, Read, Write};

use roost_protocol::smtp::address::{Address, ReversePath};
use roost_protocol::smtp::params::{xtext_decode, Ret};

use super::deliver::FileReader;
use super::queue::{Envelope, QueueError, Recipient};
use super::Services;

/// The most of the original header a report quotes.
const MAX_QUOTED_HEADER: u64 = 64 * 1024;

/// What happened to one recipient (RFC 3464 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It finally failed.
    Failed,
    /// It is in the recipient's mailbox.
    Delivered,
    /// It went to a relayhost that does not do DSN: no more reports will come.
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Relayed => "relayed",
        }
    }
}

/// One recipient to report on, and why.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The recipient address.
    pub address: Address,
    /// The ORCPT the client gave for it (`addr-type;xtext`).
    pub orcpt: Option<String>,
    /// Failed, delivered or relayed.
    pub action: Action,
    /// For a failure, the last error, as the relayhost or the storage said it.
    pub reason: String,
}

impl Notice {
    /// A notice about `rcpt`.
    pub fn new(rcpt: &Recipient, action: Action, reason: impl Into<String>) -> Self {
        Self {
            address: rcpt.address.clone(),
            orcpt: rcpt.orcpt.clone(),
            action,
            reason: reason.into(),
        }
    }
}

/// The header of the original message (up to the blank line, bounded).
fn original_header(message: &File) -> String {
    let mut bytes = Vec::new();
    let _ = FileReader::new(message)
        .take(MAX_QUOTED_HEADER)
        .read_to_end(&mut bytes);
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A failure reason (a relayhost's reply, a storage error) or a decoded xtext without control
/// characters, so it cannot end its line and start a header or a MIME boundary of its own.
fn one_line(reason: &str) -> String {
    reason.chars().filter(|c| !c.is_control()).collect()
}

/// An xtext value decoded for a report field (RFC 3464 2.2.1, 2.3.1), on one line.
fn decoded(xtext: &str) -> String {
    one_line(&xtext_decode(xtext).unwrap_or_else(|| xtext.to_string()))
}

/// The enhanced status a reason carries (`… said: 550 5.1.1 …`), else a generic one.
fn status_of(reason: &str) -> String {
    reason
        .split_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && (parts[0] == "5" || parts[0] == "4")
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|s| s.replacen('4', "5", 1))
        .unwrap_or_else(|| "5.0.0".into())
}

/// The header and the human-readable part.
fn head(host: &str, envelope: &Envelope, notices: &[Notice], date: &str, boundary: &str) -> String {
    let failed = notices.iter().any(|n| n.action == Action::Failed);
    let (subject, intro) = if failed {
        (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients:",
        )
    } else {
        (
            "Successful Mail Delivery Report",
            "Your message was delivered (or passed on to a system that sends no reports) for:",
        )
    };
    let mut text = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.{kind}@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This is the mail system at {host}.\r\n\
         \r\n\
         {intro}\r\n\
         \r\n",
        to = envelope.from,
        id = envelope.id,
        kind = if failed { "bounce" } else { "dsn" },
    );
    for n in notices {
        let what = match n.action {
            Action::Failed => one_line(&n.reason),
            Action::Delivered => "delivered to the mailbox".into(),
            Action::Relayed => "relayed; no further notices will come".into(),
        };
        text.push_str(&format!("<{}>: {what}\r\n", n.address));
    }
    text
}

/// The `message/delivery-status` part.
fn status_part(host: &str, envelope: &Envelope, notices: &[Notice], boundary: &str) -> String {
    let arrival = chrono::DateTime::from_timestamp(envelope.created as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000");
    let mut text = format!("\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n");
    if let Some(envid) = &envelope.envid {
        text.push_str(&format!("Original-Envelope-Id: {}\r\n", decoded(envid)));
    }
    text.push_str(&format!(
        "Reporting-MTA: dns; {host}\r\nX-Roost-Queue-ID: {}\r\nArrival-Date: {arrival}\r\n",
        envelope.id
    ));
    for n in notices {
        text.push_str("\r\n");
        if let Some((kind, address)) = n.orcpt.as_deref().and_then(|o| o.split_once(';')) {
            text.push_str(&format!(
                "Original-Recipient: {}; {}\r\n",
                one_line(kind),
                decoded(address)
            ));
        }
        text.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\n",
            n.address,
            n.action.as_str()
        ));
        match n.action {
            Action::Failed => text.push_str(&format!(
                "Status: {}\r\nDiagnostic-Code: smtp; {}\r\n",
                status_of(&n.reason),
                one_line(&n.reason)
            )),
            Action::Delivered | Action::Relayed => text.push_str("Status: 2.0.0\r\n"),
        }
    }
    text
}

/// Writes the report on `notices` of `envelope` to `out`: the whole message goes back only
/// for a failure the sender asked RET=FULL for, streamed from its file.
pub fn compose(
    out: &mut dyn Write,
    host: &str,
    envelope: &Envelope,
    notices: &[Notice],
    message: &File,
    date: &str,
) -> io::Result<()> {
    let boundary = format!("{}/{host}", envelope.id);
    out.write_all(head(host, envelope, notices, date, &boundary).as_bytes())?;
    out.write_all(status_part(host, envelope, notices, &boundary).as_bytes())?;
    let failed = notices.iter().any(|n| n.action == Action::Failed);
    if failed && envelope.ret == Some(Ret::Full) {
        write!(
            out,
            "\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        )?;
        let mut reader = FileReader::new(message);
        io::copy(&mut reader, out)?;
        let ends_in_crlf = message
            .metadata()
            .is_ok_and(|m| m.len() == 0 || ends_with_crlf(message, m.len()));
        if !ends_in_crlf {
            out.write_all(b"\r\n")?;
        }
    } else {
        write!(
            out,
            "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{}",
            original_header(message)
        )?;
    }
    write!(out, "\r\n--{boundary}--\r\n")
}

fn ends_with_crlf(message: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 2];
    len >= 2 && message.read_exact_at(&mut last, len - 2).is_ok() && &last == b"\r\n"
}

/// Queues a DSN on `notices` to the sender of `env` (never for the null sender, so reports
/// cannot loop).
pub async fn queue_report(
    services: &Services,
    env: &Envelope,
    notices: &[Notice],
    message: &File,
) -> Result<(), QueueError> {
    let Some(sender) = env.from.mailbox() else {
        return Ok(());
    };
    if notices.is_empty() {
        return Ok(());
    }
    let Some(recipients) = super::followups::recipients_for(services, sender).await else {
        return Ok(());
    };
    let host = roost_storage::host::name();
    let date = super::rfc5322_now();
    let id = super::followups::queue_new(services, ReversePath::Null, recipients, |out| {
        let mut writer = io::BufWriter::new(out);
        compose(&mut writer, host, env, notices, message, &date)?;
        writer.flush()
    })?;
    tracing::info!(id, to = %env.from, "queue: delivery report queued");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: "1.ab".into(),
            from: "a@b.example".parse().unwrap(),
            eight_bit: false,
            smtputf8: false,
            created: 0,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            recipients: Vec::new(),
            ret: None,
            envid: None,
        }
    }

    fn composed(envelope: &Envelope, notices: &[Notice], message: &File) -> String {
        let mut out = Vec::new();
        compose(&mut out, "mx", envelope, notices, message, "now").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ret_full_returns_the_message_and_success_reports_only_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        std::fs::write(&path, "Subject: x\r\n\r\nthe body").unwrap();
        let message = File::open(&path).unwrap();
        let mut env = envelope();
        env.ret = Some(Ret::Full);
        env.envid = Some("QQ+2B1".into());
        let rcpt = Recipient::new(Address::parse("c@d.example").unwrap(), None);
        let failed = composed(
            &env,
            &[Notice::new(&rcpt, Action::Failed, "550 5.1.1 no")],
            &message,
        );
        assert!(
            failed.contains(
                "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nthe body\r\n\r\n--1.ab/mx--\r\n"
            ),
            "{failed}"
        );
        assert!(
            failed.contains("Original-Envelope-Id: QQ+1\r\nReporting-MTA: dns; mx\r\n"),
            "{failed}"
        );
        let ok = composed(&env, &[Notice::new(&rcpt, Action::Delivered, "")], &message);
        assert!(
            ok.contains("Subject: Successful Mail Delivery Report\r\n"),
            "{ok}"
        );
        assert!(
            ok.contains(
                "Final-Recipient: rfc822; c@d.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
            ),
            "{ok}"
        );
        assert!(!ok.contains("the body"), "{ok}");
        env.ret = Some(Ret::Hdrs);
        let hdrs = composed(
            &env,
            &[Notice::new(&rcpt, Action::Failed, "550 5.1.1 no")],
            &message,
        );
        assert!(
            !hdrs.contains("the body") && hdrs.contains("text/rfc822-headers"),
            "{hdrs}"
        );
    }

    #[test]
    fn a_reason_cannot_start_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        std::fs::write(&path, "Subject: x\r\n\r\nbody\r\n").unwrap();
        let message = File::open(&path).unwrap();
        let envelope = envelope();
        let failure = Notice {
            address: Address::parse("c@d.example").unwrap(),
            orcpt: Some("rfc822;x+0D+0AX-Injected:+20no".into()),
            action: Action::Failed,
            reason: "550 no\r\n--1.ab/mx\r\nX-Injected: yes\rZ".into(),
        };
        let text = composed(&envelope, &[failure], &message);
        assert!(
            text.contains("Original-Recipient: rfc822; xX-Injected: no\r\n"),
            "{text}"
        );
        assert!(text
            .starts_with("From: Mail Delivery System <MAILER-DAEMON@mx>\r\nTo: <a@b.example>\r\n"));
        assert!(
            text.contains("<c@d.example>: 550 no--1.ab/mxX-Injected: yesZ\r\n"),
            "{text}"
        );
        assert!(
            text.split("\r\n").all(|l| !l.contains(['\r', '\n'])),
            "only CRLF line ends"
        );
    }

    #[test]
    fn statuses_come_from_the_reason() {
        assert_eq!(
            status_of("relayhost x said: 550 5.1.1 no such user"),
            "5.1.1"
        );
        assert_eq!(status_of("relayhost x said: 451 4.3.0 later"), "5.3.0");
        assert_eq!(status_of("connection refused"), "5.0.0");
    }
}
