//! SMTP (RFC 5321), ESMTP submission (RFC 6409) and LMTP (RFC 2033) commands and replies,
//! addresses and parameters, the header fields an MSA completes, and the client side used to
//! relay to a smarthost. DATA framing lives in [`crate::dot`].

pub mod address;
pub mod client;
pub mod header;
pub mod params;

/// Longest command line (RFC 5321 4.5.3.1.4 says 512 octets; AUTH lines need more).
pub const MAX_COMMAND_LINE: usize = 4096;

/// One SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`
    Ehlo(String),
    /// `HELO domain`
    Helo(String),
    /// `LHLO domain` (LMTP)
    Lhlo(String),
    /// `MAIL FROM:<path> [params]`
    MailFrom {
        /// The reverse path, without angle brackets (empty for the null sender).
        address: String,
        /// ESMTP parameters such as `SIZE=1234` or `BODY=8BITMIME`.
        params: Vec<String>,
    },
    /// `RCPT TO:<path> [params]`
    RcptTo {
        /// The forward path, without angle brackets.
        address: String,
        /// ESMTP parameters.
        params: Vec<String>,
    },
    /// `DATA`
    Data,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `STARTTLS`
    StartTls,
    /// `AUTH mechanism [initial-response]`
    Auth {
        /// The SASL mechanism name.
        mechanism: String,
        /// Base64 initial response; `=` stands for an empty one.
        initial_response: Option<String>,
    },
    /// `VRFY string`
    Vrfy(String),
    /// `HELP`
    Help,
}

/// Why a command line was refused; becomes a 500/501 reply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown keyword: 500 5.5.2.
    #[error("Command unrecognized: {0}")]
    UnknownCommand(String),
    /// Bad arguments: 501 5.5.4.
    #[error("{0}")]
    Syntax(&'static str),
}

impl ParseError {
    /// The reply this error deserves.
    pub fn reply(&self) -> Reply {
        match self {
            Self::UnknownCommand(_) => Reply::new(500, "5.5.2", &self.to_string()),
            Self::Syntax(_) => Reply::new(501, "5.5.4", &self.to_string()),
        }
    }
}

impl Command {
    /// The keyword, for logs and the session registry.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::Lhlo(_) => "LHLO",
            Self::MailFrom { .. } => "MAIL",
            Self::RcptTo { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } => "AUTH",
            Self::Vrfy(_) => "VRFY",
            Self::Help => "HELP",
        }
    }

    /// Parses one command line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Self, ParseError> {
        if line.contains(&0) {
            return Err(ParseError::Syntax("NUL character in command line"));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| ParseError::Syntax("Command line is not valid UTF-8"))?;
        let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let domain = |rest: &str| {
            if rest.is_empty() {
                Err(ParseError::Syntax(
                    "A domain name or address literal is required",
                ))
            } else {
                Ok(rest
                    .split_ascii_whitespace()
                    .next()
                    .unwrap_or(rest)
                    .to_string())
            }
        };
        match keyword.to_ascii_uppercase().as_str() {
            "EHLO" => domain(rest).map(Self::Ehlo),
            "HELO" => domain(rest).map(Self::Helo),
            "LHLO" => domain(rest).map(Self::Lhlo),
            "MAIL" => {
                let (address, params) = path_argument(rest, "FROM:")?;
                Ok(Self::MailFrom { address, params })
            }
            "RCPT" => {
                let (address, params) = path_argument(rest, "TO:")?;
                if address.is_empty() {
                    return Err(ParseError::Syntax("An empty recipient is not allowed"));
                }
                Ok(Self::RcptTo { address, params })
            }
            "DATA" => no_args(rest, Self::Data),
            "RSET" => no_args(rest, Self::Rset),
            "QUIT" => no_args(rest, Self::Quit),
            "STARTTLS" => no_args(rest, Self::StartTls),
            "NOOP" => Ok(Self::Noop),
            "HELP" => Ok(Self::Help),
            "VRFY" => Ok(Self::Vrfy(rest.to_string())),
            "AUTH" => {
                let mut words = rest.split_ascii_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some(mech), initial, None) => Ok(Self::Auth {
                        mechanism: mech.to_string(),
                        initial_response: initial.map(str::to_string),
                    }),
                    _ => Err(ParseError::Syntax(
                        "Usage: AUTH mechanism [initial-response]",
                    )),
                }
            }
            other => Err(ParseError::UnknownCommand(other.chars().take(32).collect())),
        }
    }
}

fn no_args(rest: &str, cmd: Command) -> Result<Command, ParseError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::Syntax("This command takes no arguments"))
    }
}

/// Parses `FROM:<addr> params` / `TO:<addr> params` (a space after the colon is tolerated,
/// as Postfix does, because Outlook-era clients send it).
fn path_argument(rest: &str, prefix: &str) -> Result<(String, Vec<String>), ParseError> {
    let head = rest.get(..prefix.len()).unwrap_or("");
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(ParseError::Syntax(if prefix == "FROM:" {
            "Syntax: MAIL FROM:<address>"
        } else {
            "Syntax: RCPT TO:<address>"
        }));
    }
    let rest = rest[prefix.len()..].trim_start();
    let Some(inner) = rest.strip_prefix('<') else {
        return Err(ParseError::Syntax("The address must be enclosed in <>"));
    };
    let Some((address, params)) = inner.split_once('>') else {
        return Err(ParseError::Syntax("Missing closing > in address"));
    };
    let params = params
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    Ok((address.to_string(), params))
}

/// A reply: code, optional enhanced status code (RFC 3463) and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, e.g. `2.0.0`, sent when the session advertised it.
    pub enhanced: Option<&'static str>,
    /// The text lines (at least one).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: &'static str, text: &str) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.to_string()],
        }
    }

    /// A one-line reply without an enhanced status code (greeting, EHLO).
    pub fn plain(code: u16, text: &str) -> Self {
        Self {
            code,
            enhanced: None,
            lines: vec![text.to_string()],
        }
    }

    /// A multi-line reply such as the EHLO keyword list.
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Self {
            code,
            enhanced: None,
            lines,
        }
    }

    /// The reply as wire bytes: `250-first\r\n250 last\r\n`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            match self.enhanced {
                Some(enh) => {
                    out.extend_from_slice(format!("{}{sep}{enh} {line}\r\n", self.code).as_bytes())
                }
                None => out.extend_from_slice(format!("{}{sep}{line}\r\n", self.code).as_bytes()),
            }
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse(b"EHLO client.example").unwrap(),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(
            Command::parse(b"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME").unwrap(),
            Command::MailFrom {
                address: "a@b.example".into(),
                params: vec!["SIZE=100".into(), "BODY=8BITMIME".into()]
            }
        );
        assert_eq!(
            Command::parse(b"mail from: <>").unwrap(),
            Command::MailFrom {
                address: String::new(),
                params: vec![]
            }
        );
        assert_eq!(
            Command::parse(b"RCPT TO:<bob@example.com>").unwrap(),
            Command::RcptTo {
                address: "bob@example.com".into(),
                params: vec![]
            }
        );
        assert_eq!(
            Command::parse(b"AUTH PLAIN AGEAYg==").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AGEAYg==".into())
            }
        );
    }

    #[test]
    fn bad_commands_get_5xx() {
        assert_eq!(Command::parse(b"XYZZY").unwrap_err().reply().code, 500);
        assert_eq!(
            Command::parse(b"MAIL TO:<x>").unwrap_err().reply().code,
            501
        );
        assert_eq!(
            Command::parse(b"RCPT TO:x@y").unwrap_err().reply().code,
            501
        );
        assert_eq!(Command::parse(b"EHLO").unwrap_err().reply().code, 501);
        assert_eq!(Command::parse(b"DATA now").unwrap_err().reply().code, 501);
    }

    #[test]
    fn replies_are_exact_bytes() {
        assert_eq!(Reply::new(250, "2.0.0", "OK").encode(), b"250 2.0.0 OK\r\n");
        assert_eq!(
            Reply::multi(
                250,
                vec!["mx.example".into(), "PIPELINING".into(), "8BITMIME".into()]
            )
            .encode(),
            b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }
}
