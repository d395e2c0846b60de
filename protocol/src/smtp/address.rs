//! Paths, mailboxes and client names from the SMTP envelope (RFC 5321 4.1.2, with RFC 6531's
//! UTF-8 for SMTPUTF8), checked by a scanner that follows the grammar.
//!
//! The types here can only be built by that check ([`Address::parse`], [`parse_path`],
//! [`HeloName::parse`]); their fields are private. So no CR, LF or other control character a
//! client sends can reach a header roost writes (`Return-Path:`, `Received:`, bounces) or a
//! command it sends on (the relay's `MAIL FROM`). Source routes (`<@a,@b:user@c>`) are checked,
//! then dropped, as RFC 5321 4.1.1.3 and appendix C ask.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The longest local part (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// The longest domain (RFC 5321 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// The longest path, angle brackets and source route included (RFC 5321 4.5.3.1.3).
pub const MAX_PATH: usize = 256;
/// The longest label of a domain name (RFC 1035 2.3.4).
const MAX_LABEL: usize = 63;

/// A mailbox as roost routes it: `local@domain`, or a bare local part (`postmaster`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: Option<String>,
}

/// MAIL FROM's path: the null sender `<>` (bounces) or a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: nothing may be sent back.
    Null,
    /// A sender mailbox.
    Mailbox(Address),
}

/// The name a client greeted with (EHLO, HELO, LHLO): one word of visible characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeloName(String);

/// Why a path, address or name was refused; becomes 501 with this text.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// The path does not start with `<`.
    #[error("The address must be enclosed in <>")]
    NotBracketed,
    /// The path has no closing `>`.
    #[error("Missing closing > in address")]
    Unclosed,
    /// `<>` where a mailbox is required (RCPT TO).
    #[error("An empty address is not allowed here")]
    Null,
    /// Nothing before the `@`.
    #[error("Empty local part")]
    EmptyLocalPart,
    /// A part over the RFC 5321 limits.
    #[error("Address too long")]
    TooLong,
    /// A malformed source route (`@a,@b:`).
    #[error("Invalid source route")]
    Route,
    /// Anything else the grammar does not allow: spaces, control characters, bad domains.
    #[error("Invalid address syntax")]
    Syntax,
}

/// A cursor over the text being checked.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        let hit = self.peek() == Some(want);
        if hit {
            self.pos += want.len_utf8();
        }
        hit
    }

    fn take_while(&mut self, ok: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.bump();
        }
        &self.text[start..self.pos]
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
}

/// RFC 6531's UTF8-non-ascii, less what could hide or break a line: controls (NEL), spaces
/// (U+2028), and invisible or direction-changing format characters.
fn utf8_ok(c: char) -> bool {
    !c.is_ascii()
        && !c.is_control()
        && !c.is_whitespace()
        && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// RFC 5322 atext (RFC 5321 Atom), with UTF-8.
fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || utf8_ok(c)
}

/// RFC 5321 qtextSMTP: printable ASCII but `"` and `\`, and UTF-8.
fn qtext(c: char) -> bool {
    ((' '..='~').contains(&c) && c != '"' && c != '\\') || utf8_ok(c)
}

/// Whether `text` is a Dot-string: atoms joined by single dots.
fn is_dot_string(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(atext))
}

/// Local-part = Dot-string / Quoted-string. A quoted form that needs no quotes is unquoted
/// (`"bob"` is `bob`, RFC 5321 4.1.2), so lookups see one spelling.
fn local_part(sc: &mut Scanner) -> Result<String, AddressError> {
    if !sc.eat('"') {
        let start = sc.pos;
        loop {
            if sc.take_while(atext).is_empty() {
                return Err(if sc.pos == start && sc.peek() != Some('.') {
                    AddressError::EmptyLocalPart
                } else {
                    AddressError::Syntax
                });
            }
            if !sc.eat('.') {
                return Ok(sc.text[start..sc.pos].to_string());
            }
        }
    }
    let mut quoted = String::from("\"");
    let mut plain = String::new();
    loop {
        match sc.bump().ok_or(AddressError::Syntax)? {
            '"' => break,
            '\\' => match sc.bump() {
                Some(c) if (' '..='~').contains(&c) => {
                    quoted.extend(['\\', c]);
                    plain.push(c);
                }
                _ => return Err(AddressError::Syntax),
            },
            c if qtext(c) => {
                quoted.push(c);
                plain.push(c);
            }
            _ => return Err(AddressError::Syntax),
        }
    }
    quoted.push('"');
    match plain.as_str() {
        "" => Err(AddressError::EmptyLocalPart),
        p if is_dot_string(p) => Ok(plain),
        _ => Ok(quoted),
    }
}

/// Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str] (or a U-label);
/// or an address literal. Returned lowercased.
fn domain(sc: &mut Scanner) -> Result<String, AddressError> {
    if sc.peek() == Some('[') {
        return address_literal(sc);
    }
    let start = sc.pos;
    loop {
        let label = sc.take_while(|c| c.is_ascii_alphanumeric() || c == '-' || utf8_ok(c));
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::Syntax);
        }
        if label.len() > MAX_LABEL {
            return Err(AddressError::TooLong);
        }
        if !sc.eat('.') {
            break;
        }
    }
    let name = &sc.text[start..sc.pos];
    if name.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    Ok(name.to_lowercase())
}

/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or `[tag:content]` (RFC 5321 4.1.3).
fn address_literal(sc: &mut Scanner) -> Result<String, AddressError> {
    sc.eat('[');
    let inner = sc.take_while(|c| c.is_ascii_graphic() && !matches!(c, '[' | '\\' | ']'));
    if !sc.eat(']') {
        return Err(AddressError::Syntax);
    }
    let valid = match inner.split_once(':') {
        None => inner.parse::<Ipv4Addr>().is_ok(),
        Some((tag, addr)) if tag.eq_ignore_ascii_case("IPv6") => addr.parse::<Ipv6Addr>().is_ok(),
        Some((tag, content)) => {
            !content.is_empty()
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && tag.ends_with(|c: char| c.is_ascii_alphanumeric())
        }
    };
    if !valid {
        return Err(AddressError::Syntax);
    }
    Ok(format!("[{}]", inner.to_lowercase()))
}

/// Mailbox = Local-part "@" ( Domain / address-literal ); the domain may be missing
/// (`postmaster`, RFC 5321 4.5.1).
fn mailbox(sc: &mut Scanner) -> Result<Address, AddressError> {
    let local = local_part(sc)?;
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    let domain = if sc.eat('@') { Some(domain(sc)?) } else { None };
    Ok(Address { local, domain })
}

/// A-d-l = At-domain *( "," At-domain ), then ":": checked and thrown away.
fn source_route(sc: &mut Scanner) -> Result<(), AddressError> {
    loop {
        if !sc.eat('@') || domain(sc).is_err() {
            return Err(AddressError::Route);
        }
        if !sc.eat(',') {
            break;
        }
    }
    if sc.eat(':') {
        Ok(())
    } else {
        Err(AddressError::Route)
    }
}

/// Parses `<path>` at the start of `text` (RFC 5321 Reverse-path / Forward-path); returns the
/// path (source route dropped) and what follows the `>`.
pub fn parse_path(text: &str) -> Result<(ReversePath, &str), AddressError> {
    let mut sc = Scanner { text, pos: 0 };
    if !sc.eat('<') {
        return Err(AddressError::NotBracketed);
    }
    if sc.eat('>') {
        return Ok((ReversePath::Null, sc.rest()));
    }
    if sc.peek() == Some('@') {
        source_route(&mut sc)?;
    }
    let address = mailbox(&mut sc)?;
    if !sc.eat('>') {
        return Err(if sc.rest().contains('>') {
            AddressError::Syntax
        } else {
            AddressError::Unclosed
        });
    }
    if sc.pos > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    Ok((ReversePath::Mailbox(address), sc.rest()))
}

impl Address {
    /// Parses a mailbox without angle brackets (`user@example.com`, `"a b"@example.com`,
    /// `postmaster`), as found in alias files, the configuration and the queue.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let mut sc = Scanner { text, pos: 0 };
        let address = mailbox(&mut sc)?;
        if !sc.rest().is_empty() {
            return Err(AddressError::Syntax);
        }
        Ok(address)
    }

    /// The local part as the client spelled it (quoted only where it must be).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lowercased (`[…]` for an address literal); `None` for a bare local part.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The local part lowercased, the key for alias and user lookups.
    pub fn local_key(&self) -> String {
        self.local.to_lowercase()
    }

    /// Whether the address is all ASCII (otherwise it needs SMTPUTF8, RFC 6531 3.4).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.as_deref().is_none_or(str::is_ascii)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{}@{d}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl ReversePath {
    /// The sender mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Address> {
        match self {
            Self::Null => None,
            Self::Mailbox(a) => Some(a),
        }
    }
}

/// The text between the angle brackets: empty for the null path.
impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => Ok(()),
            Self::Mailbox(a) => a.fmt(f),
        }
    }
}

/// Parses what [`ReversePath`]'s `Display` wrote: empty for the null path, else a mailbox.
impl FromStr for ReversePath {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            Ok(Self::Null)
        } else {
            Address::parse(text).map(Self::Mailbox)
        }
    }
}

impl HeloName {
    /// Checks a greeting's argument: RFC 5321 wants a domain or address literal, but real
    /// clients send bare host names, so any word of visible characters up to 255 octets passes.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if text.is_empty() {
            return Err(AddressError::Syntax);
        }
        if text.len() > MAX_DOMAIN {
            return Err(AddressError::TooLong);
        }
        if !text.chars().all(|c| c.is_ascii_graphic() || utf8_ok(c)) {
            return Err(AddressError::Syntax);
        }
        Ok(Self(text.to_string()))
    }

    /// The name as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_display_writes_parses_back_to_the_same_value() {
        for text in [
            "a@b.example",
            "\"a b\"@c.example",
            "postmaster",
            "x@[192.0.2.1]",
            "jörg@bücher.example",
        ] {
            let a = Address::parse(text).unwrap();
            assert_eq!(a.to_string().parse::<Address>(), Ok(a.clone()), "{text}");
            let p = ReversePath::Mailbox(a);
            assert_eq!(p.to_string().parse::<ReversePath>(), Ok(p));
        }
        assert_eq!("".parse::<ReversePath>(), Ok(ReversePath::Null));
        for bad in [
            "a\r\nX-Injected: 1@b.example",
            "a@b\r",
            "<a@b>",
            "a@b c",
            "@a:b@c",
        ] {
            assert!(bad.parse::<ReversePath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parts_and_keys() {
        let a = Address::parse("Alice@Example.COM").unwrap();
        assert_eq!((a.local(), a.domain()), ("Alice", Some("example.com")));
        assert_eq!(a.local_key(), "alice");
        assert!(a.is_ascii() && !Address::parse("jörg@x.example").unwrap().is_ascii());
        assert_eq!(Address::parse("postmaster").unwrap().domain(), None);
    }
}
