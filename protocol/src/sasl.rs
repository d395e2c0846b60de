//! SASL PLAIN (RFC 4616) and LOGIN message decoding, shared by IMAP AUTHENTICATE, POP3 AUTH
//! and SMTP AUTH. The exchange itself (who asks what, when) lives in the sessions.

use base64::{engine::general_purpose::STANDARD, Engine};

/// The mechanisms roost offers, in the order it advertises them.
pub const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// A SASL mechanism roost implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616: one message, `authzid NUL authcid NUL password`.
    Plain,
    /// The de-facto LOGIN mechanism: username, then password, each prompted for.
    Login,
}

impl Mechanism {
    /// Looks a mechanism up by its (case-insensitive) registered name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Self::Plain),
            "LOGIN" => Some(Self::Login),
            _ => None,
        }
    }

    /// The registered name, as advertised.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
        }
    }
}

/// The base64 prompt LOGIN sends before the user name ("Username:").
pub const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
/// The base64 prompt LOGIN sends before the password ("Password:").
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// Why a SASL message could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    /// The client's data was not valid base64.
    #[error("invalid base64 data")]
    Base64,
    /// A PLAIN message without the two NUL separators.
    #[error("malformed PLAIN message")]
    MalformedPlain,
    /// Names and passwords must be UTF-8 text.
    #[error("credentials are not valid UTF-8")]
    NotUtf8,
    /// PLAIN asked to act as another user, which roost does not allow.
    #[error("authorization identity differs from authentication identity")]
    ForeignAuthzid,
    /// The client sent `*` to abort the exchange.
    #[error("authentication cancelled")]
    Cancelled,
}

/// A user name and password obtained through any mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (login name).
    pub username: String,
    /// The password, never logged.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Decodes one base64 line of a SASL exchange; `*` means the client cancelled.
pub fn decode_base64_line(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_ascii();
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    if line == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Encodes a server challenge for the wire.
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Splits an already base64-decoded PLAIN message into credentials.
pub fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::NotUtf8);
    let (authzid, username, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if username.is_empty() {
        return Err(SaslError::MalformedPlain);
    }
    if !authzid.is_empty() && authzid != username {
        return Err(SaslError::ForeignAuthzid);
    }
    Ok(Credentials { username, password })
}

/// Turns a decoded LOGIN answer (user name or password) into text.
pub fn parse_login_answer(answer: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(answer).map_err(|_| SaslError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rfc4616_examples() {
        let msg = decode_base64_line(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
        assert_eq!(
            parse_plain(&msg).unwrap(),
            Credentials {
                username: "tim".into(),
                password: "tanstaaftanstaaf".into()
            }
        );
        let msg = b"Ursel\0Kurt\0xipj3plmq";
        assert_eq!(parse_plain(msg), Err(SaslError::ForeignAuthzid));
        assert_eq!(parse_plain(b"alice\0alice\0pw").unwrap().username, "alice");
    }

    #[test]
    fn hostile_plain_messages_are_errors() {
        assert_eq!(
            parse_plain(b"no separators"),
            Err(SaslError::MalformedPlain)
        );
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::MalformedPlain));
        assert_eq!(parse_plain(b"\0\xff\0pw"), Err(SaslError::NotUtf8));
        assert_eq!(decode_base64_line(b"!!!"), Err(SaslError::Base64));
        assert_eq!(decode_base64_line(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode_base64_line(b"="), Ok(Vec::new()));
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let c = Credentials {
            username: "a".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
