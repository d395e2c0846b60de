//! Delivery status notifications (RFC 3464) for messages that finally failed: a
//! `multipart/report` to the envelope sender with a human explanation, one machine-readable
//! block per failed recipient, and the original header (not the body: bounces stay small).

use std::fs::File;
use std::io::Read;

use super::deliver::FileReader;
use roost_protocol::smtp::address::Address;

use super::queue::Envelope;

/// The most of the original header a bounce quotes.
const MAX_QUOTED_HEADER: u64 = 64 * 1024;

/// One recipient that failed, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The recipient address.
    pub address: Address,
    /// The last error, as the relayhost or the storage said it.
    pub reason: String,
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

/// A failure reason (a relayhost's reply, a storage error) without control characters, so it
/// cannot end its line and start a header or a MIME boundary of its own.
fn one_line(reason: &str) -> String {
    reason.chars().filter(|c| !c.is_control()).collect()
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

/// Builds the bounce message for `failures` of `envelope`.
pub fn compose(
    host: &str,
    envelope: &Envelope,
    failures: &[Failure],
    message: &File,
    date: &str,
) -> Vec<u8> {
    let boundary = format!("{}/{host}", envelope.id);
    let arrival = chrono::DateTime::from_timestamp(envelope.created as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000");
    let mut text = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}.bounce@{host}>\r\n\
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
         Your message could not be delivered to one or more recipients:\r\n\
         \r\n",
        to = envelope.from,
        id = envelope.id,
    );
    for f in failures {
        text.push_str(&format!("<{}>: {}\r\n", f.address, one_line(&f.reason)));
    }
    text.push_str(&format!(
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {host}\r\n\
         X-Roost-Queue-ID: {id}\r\n\
         Arrival-Date: {arrival}\r\n",
        id = envelope.id
    ));
    for f in failures {
        let reason = one_line(&f.reason);
        text.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {reason}\r\n",
            f.address,
            status_of(&f.reason)
        ));
    }
    text.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{}\r\n--{boundary}--\r\n",
        original_header(message)
    ));
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_cannot_start_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        std::fs::write(&path, "Subject: x\r\n\r\nbody\r\n").unwrap();
        let message = File::open(&path).unwrap();
        let envelope = super::super::queue::Envelope {
            id: "1.ab".into(),
            from: "a@b.example".parse().unwrap(),
            eight_bit: false,
            smtputf8: false,
            created: 0,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            recipients: Vec::new(),
        };
        let failure = Failure {
            address: Address::parse("c@d.example").unwrap(),
            reason: "550 no\r\n--1.ab/mx\r\nX-Injected: yes\rZ".into(),
        };
        let text = compose("mx", &envelope, &[failure], &message, "now");
        let text = String::from_utf8(text).unwrap();
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
