//! The ManageSieve byte stream split into command lines of [`Token`]s: atoms, quoted
//! strings and literals, with the line and literal caps enforced while scanning.

use bytes::{Buf, BytesMut};

use super::ParseError;

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
    pub(super) need: usize,
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
            Step::Need(more)
                if !is_literal && pos.saturating_add(more) - line_start > MAX_LINE + 2 =>
            {
                return Scan::Refused(ParseError::LineTooLong, pos, Skip::Line);
            }
            Step::Need(more) => return Scan::Need(pos.saturating_add(more)),
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
    let inner = rest.get(1..close).unwrap_or_default();
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    let size = match std::str::from_utf8(digits).ok().map(str::parse::<u64>) {
        Some(Ok(size)) if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => size,
        _ => return Step::Refused(ParseError::Syntax("Malformed literal"), Skip::Line),
    };
    let after = rest.get(close + 1..).unwrap_or_default();
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
    // Within `max_literal`, which the caller keeps far below the address space.
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let end = header.saturating_add(size);
    match rest.get(header..end) {
        Some(bytes) => Step::Token(Token::String(bytes.to_vec()), end),
        None => Step::Need(end),
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
    let word = rest.get(..len).unwrap_or_default();
    if word.is_empty() || !word.iter().all(|b| b.is_ascii_graphic()) {
        return Step::Refused(
            ParseError::Syntax("Invalid characters in a command"),
            Skip::Line,
        );
    }
    let word = String::from_utf8_lossy(word).into_owned();
    Step::Token(Token::Atom(word), len)
}
