//! Delivery status notifications (RFC 3464) for messages that finally failed: a
//! `multipart/report` to the envelope sender with a human explanation, one machine-readable
//! block per failed recipient, and the original header (not the body: bounces stay small).

use std::fs::File;
use std::io::Read;

use super::deliver::FileReader;
use super::queue::Envelope;

/// The most of the original header a bounce quotes.
const MAX_QUOTED_HEADER: u64 = 64 * 1024;

/// One recipient that failed, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The recipient address.
    pub address: String,
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
        text.push_str(&format!("<{}>: {}\r\n", f.address, f.reason));
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
        let reason: String = f.reason.chars().filter(|c| !c.is_control()).collect();
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
    fn statuses_come_from_the_reason() {
        assert_eq!(
            status_of("relayhost x said: 550 5.1.1 no such user"),
            "5.1.1"
        );
        assert_eq!(status_of("relayhost x said: 451 4.3.0 later"), "5.3.0");
        assert_eq!(status_of("connection refused"), "5.0.0");
    }
}
