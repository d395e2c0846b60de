//! Mail a delivery asks to send once the message is stored: a Sieve `redirect` or a vacation
//! reply. The delivery worker (the mail owner) cannot write the queue, so it hands these back
//! to the process that can, which queues them like any other outbound mail.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};

/// One message to send because of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Followup {
    /// Send the delivered message on (Sieve `redirect`), unchanged but for an
    /// `X-Sieve-Redirected-From:` line on top naming the user it passed through, which is also
    /// the loop guard.
    Redirect {
        /// The new recipient.
        to: String,
        /// The address of the user whose script redirected it.
        delivered_to: String,
    },
    /// A new message (a vacation reply), complete with its header.
    Message {
        /// The envelope sender; empty for the null sender `<>`.
        from: String,
        /// The one recipient.
        to: String,
        /// The message, CRLF line ends.
        message: Vec<u8>,
    },
}

/// The most a follow-up may weigh once encoded (a vacation reply with a long reason).
pub const MAX_ENCODED: usize = 96 * 1024;

impl Followup {
    /// One whitespace-free token for the worker's answer and the control channel.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("fu:{}", STANDARD.encode(json))
    }

    /// Parses a token made by [`Followup::encode`]; `None` if it is not one.
    pub fn decode(token: &str) -> Option<Followup> {
        let b64 = token.strip_prefix("fu:")?;
        if b64.len() > MAX_ENCODED {
            return None;
        }
        serde_json::from_slice(&STANDARD.decode(b64).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followups_round_trip_as_one_token() {
        for f in [
            Followup::Redirect {
                to: "bob@example.net".into(),
                delivered_to: "alice@example.com".into(),
            },
            Followup::Message {
                from: String::new(),
                to: "carol@example.org".into(),
                message: b"Subject: Auto: hi\r\n\r\nAway.\r\n".to_vec(),
            },
        ] {
            let token = f.encode();
            assert!(!token.contains(char::is_whitespace));
            assert_eq!(Followup::decode(&token), Some(f));
        }
        assert_eq!(Followup::decode("ok"), None);
        assert_eq!(Followup::decode("fu:!!"), None);
    }
}
