//! POP3 (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH) commands and responses.

/// Longest command line accepted. RFC 2449 allows 255 octets; passwords and SASL initial
/// responses run longer in practice, so roost allows what Dovecot does in spirit.
pub const MAX_LINE: usize = 8192;

/// One POP3 command, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(String),
    /// `PASS password` (the rest of the line, spaces included).
    Pass(String),
    /// `APOP name digest`
    Apop(String, String),
    /// `AUTH [mechanism [initial-response]]`
    Auth {
        /// `None` asks for the list of mechanisms.
        mechanism: Option<String>,
        /// RFC 5034 initial response, still base64.
        initial_response: Option<String>,
    },
    /// `CAPA`
    Capa,
    /// `STLS`
    Stls,
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List(Option<u32>),
    /// `RETR msg`
    Retr(u32),
    /// `DELE msg`
    Dele(u32),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP msg lines`
    Top(u32, u32),
    /// `UIDL [msg]`
    Uidl(Option<u32>),
    /// `QUIT`
    Quit,
}

/// Why a command line was refused; the text is sent after `-ERR`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The keyword is not a POP3 command.
    #[error("Unknown command: {0}")]
    UnknownCommand(String),
    /// An argument is missing, extra, or not a number where one is needed.
    #[error("{0}")]
    BadArguments(&'static str),
    /// The line was not text.
    #[error("Command line is not valid UTF-8")]
    NotUtf8,
    /// The line was empty.
    #[error("Empty command line")]
    Empty,
}

impl Command {
    /// The keyword, for logs and the session registry (never includes arguments).
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop(..) => "APOP",
            Self::Auth { .. } => "AUTH",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Noop => "NOOP",
            Self::Rset => "RSET",
            Self::Top(..) => "TOP",
            Self::Uidl(_) => "UIDL",
            Self::Quit => "QUIT",
        }
    }

    /// Parses one command line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, r),
            None => (line, ""),
        };
        if keyword.is_empty() {
            return Err(ParseError::Empty);
        }
        let args: Vec<&str> = rest.split_ascii_whitespace().collect();
        let keyword = keyword.to_ascii_uppercase();
        let none = |cmd: Command| {
            if args.is_empty() {
                Ok(cmd)
            } else {
                Err(ParseError::BadArguments("This command takes no arguments"))
            }
        };
        match keyword.as_str() {
            "USER" => match args.as_slice() {
                [name] => Ok(Self::User((*name).to_string())),
                _ => Err(ParseError::BadArguments("USER needs exactly one user name")),
            },
            "PASS" if !rest.is_empty() => Ok(Self::Pass(rest.to_string())),
            "PASS" => Err(ParseError::BadArguments("PASS needs a password")),
            "APOP" => match args.as_slice() {
                [name, digest] => Ok(Self::Apop((*name).into(), (*digest).into())),
                _ => Err(ParseError::BadArguments(
                    "APOP needs a user name and a digest",
                )),
            },
            "AUTH" => match args.as_slice() {
                [] => Ok(Self::Auth {
                    mechanism: None,
                    initial_response: None,
                }),
                [mech] => Ok(Self::Auth {
                    mechanism: Some((*mech).into()),
                    initial_response: None,
                }),
                [mech, initial] => Ok(Self::Auth {
                    mechanism: Some((*mech).into()),
                    initial_response: Some((*initial).into()),
                }),
                _ => Err(ParseError::BadArguments(
                    "AUTH takes a mechanism and an initial response",
                )),
            },
            "CAPA" => none(Self::Capa),
            "STLS" => none(Self::Stls),
            "STAT" => none(Self::Stat),
            "NOOP" => none(Self::Noop),
            "RSET" => none(Self::Rset),
            "QUIT" => none(Self::Quit),
            "LIST" => optional_number(&args).map(Self::List),
            "UIDL" => optional_number(&args).map(Self::Uidl),
            "RETR" => one_number(&args).map(Self::Retr),
            "DELE" => one_number(&args).map(Self::Dele),
            "TOP" => match args.as_slice() {
                [msg, lines] => Ok(Self::Top(message_number(msg)?, line_count(lines)?)),
                _ => Err(ParseError::BadArguments(
                    "TOP needs a message number and a line count",
                )),
            },
            _ => Err(ParseError::UnknownCommand(truncate(&keyword, 32))),
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn message_number(arg: &str) -> Result<u32, ParseError> {
    match arg.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ParseError::BadArguments("Invalid message number")),
    }
}

fn line_count(arg: &str) -> Result<u32, ParseError> {
    arg.parse::<u32>()
        .map_err(|_| ParseError::BadArguments("Invalid line count"))
}

fn one_number(args: &[&str]) -> Result<u32, ParseError> {
    match args {
        [n] => message_number(n),
        _ => Err(ParseError::BadArguments("Needs exactly one message number")),
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => message_number(n).map(Some),
        _ => Err(ParseError::BadArguments("Takes at most one message number")),
    }
}

/// RFC 2449 / RFC 3206 extended response codes roost sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCode {
    /// The maildrop is locked by another POP3 session.
    InUse,
    /// Logins are coming too fast.
    LoginDelay,
    /// Credentials were wrong (or refused on an unprotected connection).
    Auth,
    /// A temporary server-side problem.
    SysTemp,
    /// A permanent server-side problem.
    SysPerm,
}

impl ResponseCode {
    fn text(self) -> &'static str {
        match self {
            Self::InUse => "IN-USE",
            Self::LoginDelay => "LOGIN-DELAY",
            Self::Auth => "AUTH",
            Self::SysTemp => "SYS/TEMP",
            Self::SysPerm => "SYS/PERM",
        }
    }
}

/// `+OK text\r\n` (`+OK\r\n` when there is nothing to say).
pub fn ok(text: &str) -> Vec<u8> {
    if text.is_empty() {
        return b"+OK\r\n".to_vec();
    }
    format!("+OK {text}\r\n").into_bytes()
}

/// `-ERR [CODE] text\r\n`
pub fn err(code: Option<ResponseCode>, text: &str) -> Vec<u8> {
    match code {
        Some(code) => format!("-ERR [{}] {text}\r\n", code.text()).into_bytes(),
        None => format!("-ERR {text}\r\n").into_bytes(),
    }
}

/// A SASL continuation: `+ base64\r\n`.
pub fn continuation(challenge: &str) -> Vec<u8> {
    format!("+ {challenge}\r\n").into_bytes()
}

/// A multi-line response: `+OK text`, the lines (dot-stuffed), and the terminating `.`.
pub fn multiline<'a>(text: &str, lines: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = ok(text);
    for line in lines {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively() {
        let table: &[(&[u8], Command)] = &[
            (b"user alice", Command::User("alice".into())),
            (b"PASS my secret pw", Command::Pass("my secret pw".into())),
            (b"STAT", Command::Stat),
            (b"list", Command::List(None)),
            (b"LIST 3", Command::List(Some(3))),
            (b"TOP 1 0", Command::Top(1, 0)),
            (b"UIDL 7", Command::Uidl(Some(7))),
            (
                b"AUTH PLAIN AGFsaWNlAHB3",
                Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial_response: Some("AGFsaWNlAHB3".into()),
                },
            ),
            (b"capa", Command::Capa),
            (b"STLS", Command::Stls),
            (b"QUIT", Command::Quit),
        ];
        for (line, expected) in table {
            assert_eq!(&Command::parse(line).unwrap(), expected);
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(Command::parse(b"FOO"), Err(ParseError::UnknownCommand(k)) if k == "FOO"));
        assert!(Command::parse(b"RETR x").is_err());
        assert!(Command::parse(b"RETR 0").is_err());
        assert!(Command::parse(b"RETR 99999999999").is_err());
        assert!(Command::parse(b"RETR").is_err());
        assert!(Command::parse(b"STAT 1").is_err());
        assert!(Command::parse(b"PASS").is_err());
        assert_eq!(Command::parse(b""), Err(ParseError::Empty));
        assert_eq!(Command::parse(b"\xff\xfe"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn responses_are_exact_bytes() {
        assert_eq!(ok("ready"), b"+OK ready\r\n");
        assert_eq!(
            err(Some(ResponseCode::InUse), "locked"),
            b"-ERR [IN-USE] locked\r\n"
        );
        assert_eq!(
            multiline("Capability list follows", ["TOP", ".dot"]),
            b"+OK Capability list follows\r\nTOP\r\n..dot\r\n.\r\n"
        );
    }
}
