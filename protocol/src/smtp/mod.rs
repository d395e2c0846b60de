//! SMTP (RFC 5321), ESMTP submission (RFC 6409) and LMTP (RFC 2033) commands and replies,
//! addresses and parameters, and the header fields an MSA completes. DATA framing lives in
//! [`crate::dot`]; the client side (relaying to a smarthost) is lettre's, in the server.

pub mod address;
pub mod header;
pub mod params;

use address::{AddressError, HeloName, ReversePath};

/// Longest command line (RFC 5321 4.5.3.1.4 says 512 octets; AUTH lines need more).
pub const MAX_COMMAND_LINE: usize = 4096;

/// One SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`
    Ehlo(HeloName),
    /// `HELO domain`
    Helo(HeloName),
    /// `LHLO domain` (LMTP)
    Lhlo(HeloName),
    /// `MAIL FROM:<path> [params]`
    MailFrom {
        /// The reverse path, checked, its source route dropped.
        from: ReversePath,
        /// ESMTP parameters such as `SIZE=1234` or `BODY=8BITMIME`.
        params: Vec<String>,
    },
    /// `RCPT TO:<path> [params]`
    RcptTo {
        /// The forward path, checked, its source route dropped.
        to: address::Address,
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
    /// A MAIL FROM path RFC 5321 4.1.2 does not allow: 501 5.1.7.
    #[error("Bad sender address: {0}")]
    BadSender(AddressError),
    /// A RCPT TO path RFC 5321 4.1.2 does not allow: 501 5.1.3.
    #[error("Bad recipient address: {0}")]
    BadRecipient(AddressError),
}

impl ParseError {
    /// The reply this error deserves.
    pub fn reply(&self) -> Reply {
        match self {
            Self::UnknownCommand(_) => Reply::new(500, "5.5.2", &self.to_string()),
            Self::Syntax(_) => Reply::new(501, "5.5.4", &self.to_string()),
            Self::BadSender(_) => Reply::new(501, "5.1.7", &self.to_string()),
            Self::BadRecipient(_) => Reply::new(501, "5.1.3", &self.to_string()),
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
        match keyword.to_ascii_uppercase().as_str() {
            "EHLO" => helo_argument(rest).map(Self::Ehlo),
            "HELO" => helo_argument(rest).map(Self::Helo),
            "LHLO" => helo_argument(rest).map(Self::Lhlo),
            "MAIL" => {
                let (from, params) = path_argument(rest, "FROM:")
                    .map_err(|e| e.into_parse(ParseError::BadSender))?;
                Ok(Self::MailFrom { from, params })
            }
            "RCPT" => {
                let (path, params) = path_argument(rest, "TO:")
                    .map_err(|e| e.into_parse(ParseError::BadRecipient))?;
                match path {
                    ReversePath::Mailbox(to) => Ok(Self::RcptTo { to, params }),
                    ReversePath::Null => Err(ParseError::BadRecipient(AddressError::Null)),
                }
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

/// The first word of EHLO/HELO/LHLO's argument, checked.
fn helo_argument(rest: &str) -> Result<HeloName, ParseError> {
    let word = rest
        .split_ascii_whitespace()
        .next()
        .ok_or(ParseError::Syntax(
            "A domain name or address literal is required",
        ))?;
    HeloName::parse(word).map_err(|_| ParseError::Syntax("Invalid domain name"))
}

/// How `FROM:<path>` / `TO:<path>` failed: the keyword, or the path itself.
enum PathArgError {
    Keyword(ParseError),
    Path(AddressError),
}

impl PathArgError {
    fn into_parse(self, path: fn(AddressError) -> ParseError) -> ParseError {
        match self {
            Self::Keyword(e) => e,
            Self::Path(e) => path(e),
        }
    }
}

/// Parses `FROM:<path> params` / `TO:<path> params` (a space after the colon is tolerated,
/// as Postfix does, because Outlook-era clients send it). Parameters follow after a space.
fn path_argument(rest: &str, prefix: &str) -> Result<(ReversePath, Vec<String>), PathArgError> {
    let head = rest.get(..prefix.len()).unwrap_or("");
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(PathArgError::Keyword(ParseError::Syntax(
            if prefix == "FROM:" {
                "Syntax: MAIL FROM:<address>"
            } else {
                "Syntax: RCPT TO:<address>"
            },
        )));
    }
    let text = rest[prefix.len()..].trim_start();
    let (path, params) = address::parse_path(text).map_err(PathArgError::Path)?;
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(PathArgError::Path(AddressError::Syntax));
    }
    let params = params
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    Ok((path, params))
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

    use crate::line::{Line, LineDecoder};
    use address::Address;

    fn mailbox(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse(b"EHLO client.example").unwrap(),
            Command::Ehlo(HeloName::parse("client.example").unwrap())
        );
        assert_eq!(
            Command::parse(b"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME").unwrap(),
            Command::MailFrom {
                from: ReversePath::Mailbox(mailbox("a@b.example")),
                params: vec!["SIZE=100".into(), "BODY=8BITMIME".into()]
            }
        );
        assert_eq!(
            Command::parse(b"mail from: <>").unwrap(),
            Command::MailFrom {
                from: ReversePath::Null,
                params: vec![]
            }
        );
        assert_eq!(
            Command::parse(b"RCPT TO:<bob@example.com>").unwrap(),
            Command::RcptTo {
                to: mailbox("bob@example.com"),
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

    /// Feeds `wire` through the line decoder in `chunk`-byte pieces, then parses each line.
    fn parse_in_chunks(wire: &[u8], chunk: usize) -> Vec<Result<Command, ParseError>> {
        let mut lines = LineDecoder::new(MAX_COMMAND_LINE);
        let mut buf = bytes::BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(Line::Complete(line)) = lines.decode(&mut buf) {
                out.push(Command::parse(&line));
            }
        }
        out
    }

    /// (command line, Ok(the path as it will be written) or Err(the reply's first line))
    const PATHS: &[(&str, Result<&str, &str>)] = &[
        ("MAIL FROM:<a@b.example>", Ok("a@b.example")),
        ("MAIL FROM:<>", Ok("")),
        (
            "MAIL FROM:<@relay.example,@[192.0.2.1]:Bob@B.Example>",
            Ok("Bob@b.example"),
        ),
        (
            "RCPT TO:<@relay.example:bob@b.example>",
            Ok("bob@b.example"),
        ),
        ("RCPT TO:<\"bob\"@b.example>", Ok("bob@b.example")),
        ("RCPT TO:<\"a b>c\"@b.example>", Ok("\"a b>c\"@b.example")),
        ("RCPT TO:<\"a\\\"b\"@b.example>", Ok("\"a\\\"b\"@b.example")),
        ("RCPT TO:<postmaster>", Ok("postmaster")),
        ("RCPT TO:<x@[IPv6:2001:db8::1]>", Ok("x@[ipv6:2001:db8::1]")),
        ("RCPT TO:<jörg@bücher.example>", Ok("jörg@bücher.example")),
        (
            "RCPT TO:<o'hara+tag@x-y.example>",
            Ok("o'hara+tag@x-y.example"),
        ),
        (
            "MAIL FROM:<a\r@b.example>",
            Err("501 5.1.7 Bad sender address: Invalid address syntax"),
        ),
        (
            "MAIL FROM:<a@b.example\r>",
            Err("501 5.1.7 Bad sender address: Invalid address syntax"),
        ),
        (
            "MAIL FROM:<@evil\r\x0bX:a@b.example>",
            Err("501 5.1.7 Bad sender address: Invalid source route"),
        ),
        (
            "MAIL FROM:<@a.example;@b.example:c@d.example>",
            Err("501 5.1.7 Bad sender address: Invalid source route"),
        ),
        (
            "MAIL FROM:<@a.example,b.example:c@d.example>",
            Err("501 5.1.7 Bad sender address: Invalid source route"),
        ),
        (
            "MAIL FROM:<@a.example>",
            Err("501 5.1.7 Bad sender address: Invalid source route"),
        ),
        (
            "MAIL FROM:<@:c@d.example>",
            Err("501 5.1.7 Bad sender address: Invalid source route"),
        ),
        (
            "MAIL FROM:a@b.example",
            Err("501 5.1.7 Bad sender address: The address must be enclosed in <>"),
        ),
        (
            "MAIL FROM:<a@b.example",
            Err("501 5.1.7 Bad sender address: Missing closing > in address"),
        ),
        (
            "MAIL FROM:<a@b.example>SIZE=1",
            Err("501 5.1.7 Bad sender address: Invalid address syntax"),
        ),
        (
            "MAIL TO:<a@b.example>",
            Err("501 5.5.4 Syntax: MAIL FROM:<address>"),
        ),
        (
            "RCPT TO:<>",
            Err("501 5.1.3 Bad recipient address: An empty address is not allowed here"),
        ),
        (
            "RCPT TO:<a b@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid source route"),
        ),
        (
            "RCPT TO:<a@>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a@b..c>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a@-b.c>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a@b_c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a..b@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<.a@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a.@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a(b)@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<\"\"@c.example>",
            Err("501 5.1.3 Bad recipient address: Empty local part"),
        ),
        (
            "RCPT TO:<\"a\rb\"@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<\"a\\\rb\"@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a\u{2028}b@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a\u{85}b@c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<a@b\u{202e}c.example>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<x@[192.0.2.300]>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<x@[IPv6:zz]>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<x@[1.2.3.4\r]>",
            Err("501 5.1.3 Bad recipient address: Invalid address syntax"),
        ),
        (
            "RCPT TO:<@@:a@b.c>",
            Err("501 5.1.3 Bad recipient address: Invalid source route"),
        ),
    ];

    #[test]
    fn paths_are_checked_and_routes_dropped_at_every_chunking() {
        let wire: String = PATHS
            .iter()
            .map(|(line, _)| format!("{line}\r\n"))
            .collect();
        for chunk in 1..=wire.len() {
            let parsed = parse_in_chunks(wire.as_bytes(), chunk);
            assert_eq!(parsed.len(), PATHS.len(), "chunk {chunk}");
            for ((line, want), got) in PATHS.iter().zip(parsed) {
                let got = match got {
                    Ok(Command::MailFrom { from, .. }) => Ok(from.to_string()),
                    Ok(Command::RcptTo { to, .. }) => Ok(to.to_string()),
                    Ok(other) => panic!("{line:?} parsed as {other:?}"),
                    Err(e) => Err(String::from_utf8_lossy(&e.reply().encode()).into_owned()),
                };
                let want = want.map(str::to_string).map_err(|r| format!("{r}\r\n"));
                assert_eq!(got, want, "{line:?} at chunk {chunk}");
            }
        }
    }

    #[test]
    fn long_paths_are_refused() {
        let local = format!("RCPT TO:<{}@x.example>", "a".repeat(65));
        let label = format!("RCPT TO:<a@{}.example>", "b".repeat(64));
        let domain = format!("RCPT TO:<a@{}example>", "b.".repeat(130));
        for line in [local, label, domain] {
            let e = Command::parse(line.as_bytes()).unwrap_err();
            assert_eq!(e, ParseError::BadRecipient(AddressError::TooLong), "{line}");
        }
        let ok = format!("RCPT TO:<{}@x.example>", "a".repeat(64));
        assert!(Command::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn greetings_are_one_word_of_visible_characters() {
        for (line, ok) in [
            (&b"EHLO mx.example trailing words"[..], Some("mx.example")),
            (b"HELO [192.0.2.1]", Some("[192.0.2.1]")),
            (b"HELO my_pc", Some("my_pc")),
            (b"EHLO a\x1bb", None),
            (b"EHLO a\x7fb", None),
            (b"EHLO", None),
        ] {
            let got = Command::parse(line).ok().map(|c| match c {
                Command::Ehlo(n) | Command::Helo(n) => n.to_string(),
                other => panic!("{other:?}"),
            });
            assert_eq!(got.as_deref(), ok, "{line:?}");
        }
        // A CR cannot hide inside the name: the line is split at it.
        assert!(matches!(Command::parse(b"EHLO a\rb"), Ok(Command::Ehlo(n)) if n.as_str() == "a"));
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
