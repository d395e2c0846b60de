//! The server side of a SASL exchange (PLAIN, LOGIN), independent of how each protocol frames
//! challenges and answers.

use roost_protocol::sasl::{self, Credentials, Mechanism, SaslError};

/// What the session should do next.
#[derive(Debug)]
pub enum SaslStep {
    /// Send this base64 challenge and feed the answer to [`SaslExchange::answer`].
    Challenge(&'static str),
    /// The client supplied credentials; verify them.
    Done(Credentials),
    /// The exchange failed; reply with the protocol's error.
    Failed(SaslError),
}

/// One SASL exchange in progress.
#[derive(Debug)]
pub struct SaslExchange {
    mechanism: Mechanism,
    username: Option<String>,
}

impl SaslExchange {
    /// Starts an exchange, consuming an already-decoded initial response if the client sent one.
    pub fn start(mechanism: Mechanism, initial: Option<Vec<u8>>) -> (Self, SaslStep) {
        let mut exchange = Self {
            mechanism,
            username: None,
        };
        let step = match (mechanism, initial) {
            (Mechanism::Plain, None) => SaslStep::Challenge(""),
            (Mechanism::Plain, Some(data)) => exchange.answer(data),
            (Mechanism::Login, None) => SaslStep::Challenge(sasl::LOGIN_USERNAME_PROMPT),
            (Mechanism::Login, Some(data)) => exchange.answer(data),
        };
        (exchange, step)
    }

    /// Takes the client's decoded answer to the last challenge.
    pub fn answer(&mut self, data: Vec<u8>) -> SaslStep {
        match self.mechanism {
            Mechanism::Plain => match sasl::parse_plain(&data) {
                Ok(creds) => SaslStep::Done(creds),
                Err(e) => SaslStep::Failed(e),
            },
            Mechanism::Login => match (self.username.take(), sasl::parse_login_answer(data)) {
                (_, Err(e)) => SaslStep::Failed(e),
                (None, Ok(user)) => {
                    self.username = Some(user);
                    SaslStep::Challenge(sasl::LOGIN_PASSWORD_PROMPT)
                }
                (Some(username), Ok(password)) => {
                    SaslStep::Done(Credentials { username, password })
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_asks_for_user_then_password() {
        let (mut ex, step) = SaslExchange::start(Mechanism::Login, None);
        assert!(matches!(
            step,
            SaslStep::Challenge(sasl::LOGIN_USERNAME_PROMPT)
        ));
        assert!(matches!(
            ex.answer(b"alice".to_vec()),
            SaslStep::Challenge(sasl::LOGIN_PASSWORD_PROMPT)
        ));
        match ex.answer(b"pw".to_vec()) {
            SaslStep::Done(c) => {
                assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "pw"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_with_initial_response_finishes_at_once() {
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"\0bob\0pw".to_vec()));
        assert!(matches!(step, SaslStep::Done(c) if c.username == "bob"));
        let (_, step) = SaslExchange::start(Mechanism::Plain, Some(b"junk".to_vec()));
        assert!(matches!(step, SaslStep::Failed(SaslError::MalformedPlain)));
    }
}
