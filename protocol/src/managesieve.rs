//! ManageSieve (RFC 5804): client commands decoded from bytes, server responses encoded.
//!
//! ```text
//!   bytes ──► Decoder (atoms, "quoted", {N+} literals; line and literal caps) ──► Vec<Token>
//!         ──► Command::from_tokens ──► Command
//!   OK/NO/BYE (response code) "text", capability lines, strings ──► bytes
//! ```
//! A literal's bytes are waited for, never guessed: while one is incomplete the decoder
//! remembers how many bytes the buffer must hold and returns `Ok(None)` until it does. A
//! literal over the cap is skipped unstored and the command is refused once it is over.

use bytes::{Buf, BytesMut};

/// The longest command line outside literals.
pub const MAX_LINE: usize = 8192;

/// The longest quoted string RFC 5804 allows (section 4: 1024 octets).
pub const MAX_QUOTED: usize = 1024;

/// The most tokens one command may have (the longest command has three).
const MAX_TOKENS: usize = 8;

/// One element of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word: a command name or a number.
    Atom(String),
    /// A quoted string or a literal, as bytes.
    String(Vec<u8>),
}

/// One ManageSieve command, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `AUTHENTICATE mechanism [initial-response]` (the response still base64).
    Authenticate {
        /// `PLAIN`, `LOGIN`...
        mechanism: String,
        /// The SASL initial response, base64 as sent.
        initial: Option<Vec<u8>>,
    },
    /// `STARTTLS`
    StartTls,
    /// `LOGOUT`
    Logout,
    /// `CAPABILITY`
    Capability,
    /// `HAVESPACE name size`
    HaveSpace {
        /// The script name.
        name: String,
        /// The size the client means to upload.
        size: u64,
    },
    /// `PUTSCRIPT name script`
    PutScript {
        /// The script name.
        name: String,
        /// The script text.
        script: Vec<u8>,
    },
    /// `LISTSCRIPTS`
    ListScripts,
    /// `SETACTIVE name` (`""` deactivates).
    SetActive(String),
    /// `GETSCRIPT name`
    GetScript(String),
    /// `DELETESCRIPT name`
    DeleteScript(String),
    /// `RENAMESCRIPT old new`
    RenameScript(String, String),
    /// `CHECKSCRIPT script`
    CheckScript(Vec<u8>),
    /// `NOOP [tag]`; the tag comes back as `OK (TAG ...)`.
    Noop(Option<Vec<u8>>),
    /// `UNAUTHENTICATE` (RFC 5804 2.14.1).
    Unauthenticate,
}

/// Why a command was refused; the text is sent as `NO "text"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The command line (outside literals) is longer than [`MAX_LINE`].
    #[error("Command line too long (limit {MAX_LINE} bytes)")]
    LineTooLong,
    /// A literal over the decoder's cap; its bytes were skipped.
    #[error("String of {size} bytes exceeds the limit of {limit} bytes")]
    LiteralTooLarge {
        /// The command it belonged to (upper case), when the line started with one.
        command: Option<String>,
        /// The announced size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Malformed syntax.
    #[error("{0}")]
    Syntax(&'static str),
    /// Not a ManageSieve command.
    #[error("Unknown command {0}")]
    UnknownCommand(String),
}

/// What one scan of the buffer found.
enum Scan {
    /// More bytes are needed; the buffer must reach this length before a rescan can finish.
    Need(usize),
    /// A whole command line: its tokens and how many bytes it took.
    Line(Vec<Token>, usize),
    /// A refused line: the error, where in the buffer it was found, and how to get past it.
    Refused(ParseError, usize, Skip),
}

/// How to get past a refused command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// Drop this many bytes, then the rest of the line.
    Bytes(u64),
    /// Drop up to and including the next line feed.
    Line,
}

/// Splits the byte stream into command lines, holding at most one command in memory.
#[derive(Debug)]
pub struct Decoder {
    max_literal: u64,
    /// The buffer length the current incomplete command needs before it is worth rescanning.
    need: usize,
    /// Bytes of a refused literal still to drop.
    skip_bytes: u64,
    /// Drop everything up to the next line feed (after `skip_bytes`).
    skip_line: bool,
}

impl Decoder {
    /// A decoder taking literals of up to `max_literal` bytes.
    pub fn new(max_literal: u64) -> Self {
        Self {
            max_literal,
            need: 0,
            skip_bytes: 0,
            skip_line: false,
        }
    }

    /// Changes the literal cap (after login, scripts may be larger than a password).
    pub fn set_max_literal(&mut self, max_literal: u64) {
        self.max_literal = max_literal;
    }

    /// The next command line's tokens; `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Token>>, ParseError> {
        if !self.skip(buf) || buf.len() < self.need {
            return Ok(None);
        }
        match scan(buf, self.max_literal) {
            Scan::Need(n) => {
                self.need = n;
                Ok(None)
            }
            Scan::Line(tokens, used) => {
                self.need = 0;
                buf.advance(used);
                Ok(Some(tokens))
            }
            Scan::Refused(err, at, skip) => {
                self.need = 0;
                buf.advance(at.min(buf.len()));
                self.skip_bytes = match skip {
                    Skip::Bytes(n) => n,
                    Skip::Line => 0,
                };
                self.skip_line = true;
                self.skip(buf);
                Err(err)
            }
        }
    }

    /// Drops what a refused command left; `true` once nothing is left to drop.
    fn skip(&mut self, buf: &mut BytesMut) -> bool {
        if self.skip_bytes > 0 {
            let n = usize::try_from(self.skip_bytes)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            buf.advance(n);
            self.skip_bytes -= n as u64;
            if self.skip_bytes > 0 {
                return false;
            }
        }
        if self.skip_line {
            match buf.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    buf.advance(lf + 1);
                    self.skip_line = false;
                }
                None => {
                    buf.clear();
                    return false;
                }
            }
        }
        true
    }
}

/// Scans one command line from the start of `buf` without consuming it.
fn scan(buf: &[u8], max_literal: u64) -> Scan {
    let mut tokens = Vec::new();
    let mut pos = 0;
    // Where the current stretch of line text began (after the last literal).
    let mut line_start = 0;
    loop {
        while buf.get(pos) == Some(&b' ') {
            pos += 1;
        }
        if pos - line_start > MAX_LINE {
            return Scan::Refused(ParseError::LineTooLong, pos, Skip::Line);
        }
        let rest = buf.get(pos..).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            return Scan::Line(tokens, pos + 2);
        }
        if rest.starts_with(b"\n") {
            return Scan::Line(tokens, pos + 1);
        }
        let Some(&first) = rest.first() else {
            return Scan::Need(buf.len() + 1);
        };
        if rest == b"\r" {
            return Scan::Need(buf.len() + 1);
        }
        if tokens.len() >= MAX_TOKENS {
            let err = ParseError::Syntax("Too many arguments");
            return Scan::Refused(err, pos, Skip::Line);
        }
        let is_literal = first == b'{';
        let step = match first {
            b'"' => quoted(rest),
            b'{' => literal(rest, max_literal, command_of(&tokens)),
            _ => atom(rest),
        };
        match step {
            Step::Token(token, used) => {
                tokens.push(token);
                pos += used;
                if is_literal {
                    line_start = pos;
                }
            }
            Step::Need(more) if !is_literal && pos + more - line_start > MAX_LINE + 2 => {
                return Scan::Refused(ParseError::LineTooLong, pos, Skip::Line);
            }
            Step::Need(more) => return Scan::Need(pos + more),
            Step::Refused(err, skip) => return Scan::Refused(err, pos, skip),
        }
    }
}

/// One token's scan.
enum Step {
    /// The token and the bytes it took.
    Token(Token, usize),
    /// The token is incomplete: at least this many bytes (from its start) are needed.
    Need(usize),
    /// The token is refused.
    Refused(ParseError, Skip),
}

fn command_of(tokens: &[Token]) -> Option<String> {
    match tokens.first() {
        Some(Token::Atom(word)) => Some(word.to_ascii_uppercase()),
        _ => None,
    }
}

fn quoted(rest: &[u8]) -> Step {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        let Some(&b) = rest.get(i) else {
            return Step::Need(rest.len() + 1);
        };
        match b {
            b'"' => return Step::Token(Token::String(out), i + 1),
            b'\\' => match rest.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                Some(_) => {
                    return Step::Refused(
                        ParseError::Syntax("Invalid escape in a quoted string"),
                        Skip::Line,
                    )
                }
                None => return Step::Need(rest.len() + 1),
            },
            b'\r' | b'\n' | 0 => {
                return Step::Refused(ParseError::Syntax("Unterminated quoted string"), Skip::Line)
            }
            _ => out.push(b),
        }
        if out.len() > MAX_QUOTED {
            return Step::Refused(
                ParseError::Syntax("Quoted string too long; send a literal"),
                Skip::Line,
            );
        }
        i += 1;
    }
}

fn literal(rest: &[u8], max_literal: u64, command: Option<String>) -> Step {
    let Some(close) = rest.iter().take(24).position(|&b| b == b'}') else {
        if rest.len() >= 24 || rest.contains(&b'\n') {
            return Step::Refused(ParseError::Syntax("Malformed literal"), Skip::Line);
        }
        return Step::Need(rest.len() + 1);
    };
    let inner = &rest[1..close];
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    let size = match std::str::from_utf8(digits).ok().map(str::parse::<u64>) {
        Some(Ok(size)) if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => size,
        _ => return Step::Refused(ParseError::Syntax("Malformed literal"), Skip::Line),
    };
    let after = &rest[close + 1..];
    let header = close
        + 1
        + match after {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            [] | [b'\r'] => return Step::Need(close + 3),
            _ => {
                return Step::Refused(
                    ParseError::Syntax("A literal must end its line"),
                    Skip::Line,
                )
            }
        };
    if size > max_literal {
        let err = ParseError::LiteralTooLarge {
            command,
            size,
            limit: max_literal,
        };
        // Counted from the literal's `{`: its header, then its bytes.
        return Step::Refused(err, Skip::Bytes(size.saturating_add(header as u64)));
    }
    let size = size as usize;
    match rest.get(header..header + size) {
        Some(bytes) => Step::Token(Token::String(bytes.to_vec()), header + size),
        None => Step::Need(header + size),
    }
}

fn atom(rest: &[u8]) -> Step {
    let len = rest
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n' | b'"' | b'{'))
        .unwrap_or(rest.len());
    if len == rest.len() {
        return Step::Need(rest.len() + 1);
    }
    let word = &rest[..len];
    if word.is_empty() || !word.iter().all(|b| b.is_ascii_graphic()) {
        return Step::Refused(
            ParseError::Syntax("Invalid characters in a command"),
            Skip::Line,
        );
    }
    let word = String::from_utf8_lossy(word).into_owned();
    Step::Token(Token::Atom(word), len)
}

impl Command {
    /// The keyword, for logs and the session registry.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::StartTls => "STARTTLS",
            Self::Logout => "LOGOUT",
            Self::Capability => "CAPABILITY",
            Self::HaveSpace { .. } => "HAVESPACE",
            Self::PutScript { .. } => "PUTSCRIPT",
            Self::ListScripts => "LISTSCRIPTS",
            Self::SetActive(_) => "SETACTIVE",
            Self::GetScript(_) => "GETSCRIPT",
            Self::DeleteScript(_) => "DELETESCRIPT",
            Self::RenameScript(..) => "RENAMESCRIPT",
            Self::CheckScript(_) => "CHECKSCRIPT",
            Self::Noop(_) => "NOOP",
            Self::Unauthenticate => "UNAUTHENTICATE",
        }
    }

    /// Makes a command of a decoded line.
    pub fn from_tokens(tokens: Vec<Token>) -> Result<Self, ParseError> {
        let mut args = tokens.into_iter();
        let name = match args.next() {
            Some(Token::Atom(name)) => name.to_ascii_uppercase(),
            Some(Token::String(_)) => return Err(ParseError::Syntax("Expected a command name")),
            None => return Err(ParseError::Syntax("Empty command line")),
        };
        let args: Vec<Token> = args.collect();
        let command = match (name.as_str(), args.as_slice()) {
            ("AUTHENTICATE", [mech]) => Self::authenticate(mech, None)?,
            ("AUTHENTICATE", [mech, Token::String(initial)]) => {
                Self::authenticate(mech, Some(initial.clone()))?
            }
            ("STARTTLS", []) => Self::StartTls,
            ("LOGOUT", []) => Self::Logout,
            ("CAPABILITY", []) => Self::Capability,
            ("LISTSCRIPTS", []) => Self::ListScripts,
            ("UNAUTHENTICATE", []) => Self::Unauthenticate,
            ("NOOP", []) => Self::Noop(None),
            ("NOOP", [Token::String(tag)]) => Self::Noop(Some(tag.clone())),
            ("HAVESPACE", [name, Token::Atom(size)]) => Self::HaveSpace {
                name: text(name)?,
                size: size
                    .parse()
                    .map_err(|_| ParseError::Syntax("Invalid script size"))?,
            },
            ("PUTSCRIPT", [name, Token::String(script)]) => Self::PutScript {
                name: text(name)?,
                script: script.clone(),
            },
            ("SETACTIVE", [name]) => Self::SetActive(text(name)?),
            ("GETSCRIPT", [name]) => Self::GetScript(text(name)?),
            ("DELETESCRIPT", [name]) => Self::DeleteScript(text(name)?),
            ("RENAMESCRIPT", [old, new]) => Self::RenameScript(text(old)?, text(new)?),
            ("CHECKSCRIPT", [Token::String(script)]) => Self::CheckScript(script.clone()),
            (known, _) if COMMANDS.contains(&known) => {
                return Err(ParseError::Syntax("Wrong arguments for this command"))
            }
            _ => {
                let shown: String = name.chars().take(32).collect();
                return Err(ParseError::UnknownCommand(shown));
            }
        };
        Ok(command)
    }

    fn authenticate(mech: &Token, initial: Option<Vec<u8>>) -> Result<Self, ParseError> {
        let mechanism = match mech {
            Token::Atom(word) => word.clone(),
            Token::String(_) => text(mech)?,
        };
        Ok(Self::Authenticate { mechanism, initial })
    }
}

/// Every command name, to tell wrong arguments from an unknown command (and, for the status
/// page, which word of a relayed line is a command).
pub const COMMANDS: &[&str] = &[
    "AUTHENTICATE",
    "STARTTLS",
    "LOGOUT",
    "CAPABILITY",
    "HAVESPACE",
    "PUTSCRIPT",
    "LISTSCRIPTS",
    "SETACTIVE",
    "GETSCRIPT",
    "DELETESCRIPT",
    "RENAMESCRIPT",
    "CHECKSCRIPT",
    "NOOP",
    "UNAUTHENTICATE",
];

/// A string argument as UTF-8 text (script names, mechanisms).
fn text(token: &Token) -> Result<String, ParseError> {
    match token {
        Token::String(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| ParseError::Syntax("A name must be UTF-8 text")),
        Token::Atom(_) => Err(ParseError::Syntax("Expected a quoted string or a literal")),
    }
}

/// The client's answer in a SASL exchange: one string on its own line (`"*"` cancels).
pub fn sasl_answer(tokens: Vec<Token>) -> Result<Vec<u8>, ParseError> {
    match <[Token; 1]>::try_from(tokens) {
        Ok([Token::String(bytes)]) => Ok(bytes),
        _ => Err(ParseError::Syntax(
            "Expected a string with the SASL response",
        )),
    }
}

/// RFC 5804 response codes roost sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The named script does not exist.
    NonExistent,
    /// The active script cannot be deleted.
    Active,
    /// The new name of a RENAMESCRIPT is taken.
    AlreadyExists,
    /// The user has as many scripts as allowed.
    QuotaMaxScripts,
    /// The script is larger than allowed.
    QuotaMaxSize,
    /// Plaintext authentication refused without TLS.
    EncryptNeeded,
    /// A temporary failure; try again later.
    TryLater,
    /// `NOOP`'s echo of the client's tag.
    Tag(Vec<u8>),
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>) {
        let word: &[u8] = match self {
            Self::NonExistent => b"NONEXISTENT",
            Self::Active => b"ACTIVE",
            Self::AlreadyExists => b"ALREADYEXISTS",
            Self::QuotaMaxScripts => b"QUOTA/MAXSCRIPTS",
            Self::QuotaMaxSize => b"QUOTA/MAXSIZE",
            Self::EncryptNeeded => b"ENCRYPT-NEEDED",
            Self::TryLater => b"TRYLATER",
            Self::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                string_into(tag, out);
                return;
            }
        };
        out.extend_from_slice(word);
    }
}

/// The three kinds of final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Failure.
    No,
    /// The server closes the connection.
    Bye,
}

/// `OK|NO|BYE [(code)] ["text"]\r\n`
pub fn response(status: Status, code: Option<&Code>, text: &str) -> Vec<u8> {
    let mut out = match status {
        Status::Ok => b"OK".to_vec(),
        Status::No => b"NO".to_vec(),
        Status::Bye => b"BYE".to_vec(),
    };
    if let Some(code) = code {
        out.extend_from_slice(b" (");
        code.encode(&mut out);
        out.push(b')');
    }
    if !text.is_empty() {
        out.push(b' ');
        string_into(text.as_bytes(), &mut out);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `OK "text"\r\n`
pub fn ok(text: &str) -> Vec<u8> {
    response(Status::Ok, None, text)
}

/// `NO [(code)] "text"\r\n`
pub fn no(code: Option<&Code>, text: &str) -> Vec<u8> {
    response(Status::No, code, text)
}

/// `BYE "text"\r\n`
pub fn bye(text: &str) -> Vec<u8> {
    response(Status::Bye, None, text)
}

/// One capability line: `"NAME"` or `"NAME" "value"`.
pub fn capability(name: &str, value: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(name.as_bytes(), &mut out);
    if let Some(value) = value {
        out.push(b' ');
        string_into(value.as_bytes(), &mut out);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One LISTSCRIPTS line: `"name"` or `"name" ACTIVE`.
pub fn script_line(name: &str, active: bool) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(name.as_bytes(), &mut out);
    if active {
        out.extend_from_slice(b" ACTIVE");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A string on its own line, always as a literal (GETSCRIPT's script, SASL challenges).
pub fn literal_line(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// A string on its own line, quoted when it can be (SASL challenges).
pub fn string_line(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(bytes, &mut out);
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `bytes` as a quoted string when it is short UTF-8 text without line breaks, else
/// as a literal.
fn string_into(bytes: &[u8], out: &mut Vec<u8>) {
    let quotable = bytes.len() <= MAX_QUOTED
        && std::str::from_utf8(bytes).is_ok()
        && !bytes.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if !quotable {
        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &b in bytes {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests;
