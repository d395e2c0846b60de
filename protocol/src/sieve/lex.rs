//! The lexer (RFC 5228 §8.1): comments, quoted and `text:` strings, numbers with K/M/G,
//! `:tags`, identifiers and punctuation, each token with the line it starts on.

use super::CompileError;

/// One lexical item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A command or test name (lower-cased: Sieve identifiers are case-insensitive).
    Ident(String),
    /// A `:tag`, without the colon, lower-cased.
    Tag(String),
    /// A quoted or multi-line string, escapes and dot-stuffing undone.
    Str(String),
    /// A number with its K/M/G quantifier applied.
    Num(u64),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `;`
    Semi,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: u32,
}

/// A cursor over the script's characters that counts lines.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line = self.line.saturating_add(1);
        }
        c
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn error(&self, message: impl Into<String>) -> CompileError {
        CompileError {
            line: self.line,
            message: message.into(),
        }
    }
}

/// Splits a script into tokens.
pub(crate) fn lex(source: &str) -> Result<Vec<Token>, CompileError> {
    let mut cur = Cursor {
        chars: source.chars().peekable(),
        line: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        let line = cur.line;
        let tok = match c {
            ' ' | '\t' | '\r' | '\n' => {
                cur.next();
                continue;
            }
            '#' => {
                skip_line(&mut cur);
                continue;
            }
            '/' => {
                skip_block_comment(&mut cur)?;
                continue;
            }
            '"' => {
                cur.next();
                Tok::Str(quoted(&mut cur)?)
            }
            '0'..='9' => Tok::Num(number(&mut cur)?),
            ':' => {
                cur.next();
                let name = identifier(&mut cur);
                if name.is_empty() {
                    return Err(cur.error("expected a tag name after ':'"));
                }
                Tok::Tag(name)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let name = identifier(&mut cur);
                if name == "text" && cur.peek() == Some(':') {
                    cur.next();
                    Tok::Str(multiline(&mut cur)?)
                } else {
                    Tok::Ident(name)
                }
            }
            _ => Tok::from_punct(c)
                .ok_or_else(|| cur.error(format!("unexpected character {c:?}")))?,
        };
        if matches!(
            tok,
            Tok::LBracket
                | Tok::RBracket
                | Tok::Comma
                | Tok::LParen
                | Tok::RParen
                | Tok::LBrace
                | Tok::RBrace
                | Tok::Semi
        ) {
            cur.next();
        }
        out.push(Token { tok, line });
    }
    Ok(out)
}

impl Tok {
    fn from_punct(c: char) -> Option<Tok> {
        Some(match c {
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ';' => Tok::Semi,
            _ => return None,
        })
    }
}

fn skip_line(cur: &mut Cursor<'_>) {
    while let Some(c) = cur.next() {
        if c == '\n' {
            break;
        }
    }
}

fn skip_block_comment(cur: &mut Cursor<'_>) -> Result<(), CompileError> {
    let line = cur.line;
    cur.next();
    if cur.next() != Some('*') {
        return Err(cur.error("unexpected character '/'"));
    }
    let mut star = false;
    while let Some(c) = cur.next() {
        if star && c == '/' {
            return Ok(());
        }
        star = c == '*';
    }
    Err(CompileError {
        line,
        message: "a /* comment is never closed".into(),
    })
}

fn identifier(cur: &mut Cursor<'_>) -> String {
    let mut s = String::new();
    while let Some(c) = cur.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            s.push(c.to_ascii_lowercase());
            cur.next();
        } else {
            break;
        }
    }
    s
}

fn number(cur: &mut Cursor<'_>) -> Result<u64, CompileError> {
    let mut n: u64 = 0;
    while let Some(c) = cur.peek() {
        let Some(d) = c.to_digit(10) else { break };
        cur.next();
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or_else(|| cur.error("number too large"))?;
    }
    let shift = match cur.peek().map(|c| c.to_ascii_uppercase()) {
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        _ => 0,
    };
    if shift > 0 {
        cur.next();
        n = n
            .checked_mul(1 << shift)
            .ok_or_else(|| cur.error("number too large"))?;
    }
    Ok(n)
}

fn quoted(cur: &mut Cursor<'_>) -> Result<String, CompileError> {
    let line = cur.line;
    let mut s = String::new();
    while let Some(c) = cur.next() {
        match c {
            '"' => return Ok(s),
            '\\' => match cur.next() {
                Some(e) => s.push(e),
                None => break,
            },
            _ => s.push(c),
        }
    }
    Err(CompileError {
        line,
        message: "a quoted string is never closed".into(),
    })
}

/// A `text:` string: the rest of the first line (blanks or a `#` comment) is skipped, then
/// lines up to one holding a single `.`; a leading `..` stands for `.`.
fn multiline(cur: &mut Cursor<'_>) -> Result<String, CompileError> {
    let line = cur.line;
    loop {
        match cur.next() {
            Some(' ' | '\t' | '\r') => {}
            Some('#') => {
                skip_line(cur);
                break;
            }
            Some('\n') => break,
            _ => return Err(cur.error("expected the end of the line after 'text:'")),
        }
    }
    let mut out = String::new();
    let mut current = String::new();
    while let Some(c) = cur.next() {
        if c != '\n' {
            current.push(c);
            continue;
        }
        let text = current.strip_suffix('\r').unwrap_or(&current);
        if text == "." {
            return Ok(out);
        }
        out.push_str(
            text.strip_prefix('.')
                .filter(|t| t.starts_with('.'))
                .unwrap_or(text),
        );
        out.push_str("\r\n");
        current.clear();
    }
    if current.strip_suffix('\r').unwrap_or(&current) == "." {
        return Ok(out);
    }
    Err(CompileError {
        line,
        message: "a text: string has no closing '.' line".into(),
    })
}
