//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469): an APPEND carrying several messages,
//! `tag APPEND box (\Seen) {10}\r\n... (\Flagged) "date" {20}\r\n...`, or a message built
//! from parts, `tag APPEND box CATENATE (URL "/INBOX;UIDVALIDITY=7/;UID=3" TEXT {5}\r\n...)`.
//! `imap-codec` parses an APPEND of one literal, so the command is cut into one APPEND per
//! message, each of which it then checks as usual; a CATENATE message goes to it with an empty
//! literal in its place, and its parts ride along for the session to assemble.
//!
//! Only the framing is looked at here: the mailbox (atom, quoted string or literal), then per
//! message an optional flag list, an optional quoted date and a literal (`{n}`, `{n+}` or
//! the literal8 forms `~{n}`) or a CATENATE list; everything else is left to the grammar. The
//! scan is a single pass without recursion, and every length is checked against the bytes
//! actually there.

use std::ops::Range;

/// One part of a CATENATE message (RFC 4469).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`: bytes as sent.
    Text(Vec<u8>),
    /// `URL "..."`: a message or part already on the server.
    Url(String),
}

/// An APPEND cut into single-message APPENDs for the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appends {
    /// One APPEND command per message, in order.
    pub commands: Vec<Vec<u8>>,
    /// Per message, its CATENATE parts (its command then holds an empty literal).
    pub catenate: Vec<Option<Vec<CatPart>>>,
}

/// The single-message APPEND commands an APPEND stands for; `None` for any command that is
/// neither an APPEND of two or more messages nor one with CATENATE (it goes to the grammar
/// unchanged).
pub fn split(command: &[u8]) -> Option<Appends> {
    let mut scan = Scan {
        bytes: command,
        at: 0,
    };
    scan.word()?;
    scan.space()?;
    if !scan.word()?.eq_ignore_ascii_case(b"APPEND") {
        return None;
    }
    scan.space()?;
    scan.astring()?;
    let prefix = &command[..scan.at];
    let mut commands = Vec::new();
    let mut catenate = Vec::new();
    loop {
        let start = scan.at;
        scan.space()?;
        if scan.peek() == Some(b'(') {
            scan.flag_list()?;
            scan.space()?;
        }
        if scan.peek() == Some(b'"') {
            scan.quoted()?;
            scan.space()?;
        }
        let mut one = prefix.to_vec();
        if scan.keyword(b"CATENATE") {
            one.extend_from_slice(&command[start..scan.at]);
            one.extend_from_slice(b"{0}\r\n\r\n");
            scan.advance(b"CATENATE".len());
            scan.space()?;
            catenate.push(Some(scan.cat_parts()?));
        } else {
            scan.literal()?;
            one.extend_from_slice(&command[start..scan.at]);
            one.extend_from_slice(b"\r\n");
            catenate.push(None);
        }
        commands.push(one);
        if scan.rest() == b"\r\n" || scan.rest() == b"\n" {
            break;
        }
    }
    if commands.len() < 2 && catenate.iter().all(Option::is_none) {
        return None;
    }
    Some(Appends { commands, catenate })
}

/// A cursor over the command's bytes.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at.min(self.bytes.len())..]
    }

    fn space(&mut self) -> Option<()> {
        (self.peek()? == b' ').then(|| self.at += 1)
    }

    /// An atom-like word, up to a space, a bracket or the line's end.
    fn word(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'\r' | b'\n' | b'(' | b')' | b'{' | b'"'))
            .unwrap_or(rest.len());
        self.at += len;
        (len > 0).then(|| &rest[..len])
    }

    /// A quoted string, backslash escapes respected.
    fn quoted(&mut self) -> Option<()> {
        let rest = self.rest();
        let mut escaped = false;
        for (i, &b) in rest.iter().enumerate().skip(1) {
            match (escaped, b) {
                (_, b'\r' | b'\n') => return None,
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    self.at += i + 1;
                    return Some(());
                }
                _ => {}
            }
        }
        None
    }

    /// Whether the next word is `word` (any case), followed by a space or a bracket.
    fn keyword(&self, word: &[u8]) -> bool {
        let rest = self.rest();
        rest.len() > word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && matches!(rest[word.len()], b' ' | b'(')
    }

    fn advance(&mut self, n: usize) {
        self.at = (self.at + n).min(self.bytes.len());
    }

    /// `( cat-part *(SP cat-part) )`, each `TEXT literal` or `URL astring`.
    fn cat_parts(&mut self) -> Option<Vec<CatPart>> {
        if self.peek()? != b'(' {
            return None;
        }
        self.at += 1;
        let mut parts = Vec::new();
        loop {
            let kind = self.word()?.to_ascii_uppercase();
            self.space()?;
            let part = match kind.as_slice() {
                b"TEXT" => CatPart::Text(self.bytes[self.literal()?].to_vec()),
                b"URL" => CatPart::Url(String::from_utf8(self.astring_value()?).ok()?),
                _ => return None,
            };
            parts.push(part);
            match self.peek()? {
                b')' => {
                    self.at += 1;
                    return Some(parts);
                }
                _ => self.space()?,
            }
        }
    }

    /// An astring's value: a quoted string unescaped, a literal's bytes, or an atom.
    fn astring_value(&mut self) -> Option<Vec<u8>> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.quoted()?;
                let inner = &self.bytes[start + 1..self.at - 1];
                let mut out = Vec::with_capacity(inner.len());
                let mut escaped = false;
                for &b in inner {
                    match (escaped, b) {
                        (false, b'\\') => escaped = true,
                        _ => {
                            out.push(b);
                            escaped = false;
                        }
                    }
                }
                Some(out)
            }
            b'{' => Some(self.bytes[self.literal()?].to_vec()),
            _ => self.word().map(<[u8]>::to_vec),
        }
    }

    /// A literal (`{n}`, `{n+}`, `~{n}`, `~{n+}`), its line end and its `n` bytes; returns
    /// where the bytes are.
    fn literal(&mut self) -> Option<Range<usize>> {
        if self.peek() == Some(b'~') {
            self.at += 1;
        }
        if self.peek()? != b'{' {
            return None;
        }
        let rest = self.rest();
        let close = rest.iter().position(|&b| b == b'}')?;
        let digits = rest[1..close].strip_suffix(b"+").unwrap_or(&rest[1..close]);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let after = &rest[close + 1..];
        let line_end = if after.starts_with(b"\r\n") {
            2
        } else if after.starts_with(b"\n") {
            1
        } else {
            return None;
        };
        let end = self
            .at
            .checked_add(close + 1 + line_end)?
            .checked_add(length)?;
        if end > self.bytes.len() {
            return None;
        }
        self.at = end;
        Some(end - length..end)
    }

    /// A mailbox name: quoted, literal or atom.
    fn astring(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal().map(|_| ()),
            _ => self.word().map(|_| ()),
        }
    }

    /// `( flag *(SP flag) )`: flags hold no brackets, quotes or literals.
    fn flag_list(&mut self) -> Option<()> {
        let rest = self.rest();
        let close = rest.iter().position(|&b| b == b')')?;
        if rest[1..close]
            .iter()
            .any(|&b| matches!(b, b'(' | b'"' | b'{' | b'\r' | b'\n'))
        {
            return None;
        }
        self.at += close + 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_messages_become_one_append_each() {
        let command = b"a1 APPEND \"Saved Mail\" (\\Seen) {5}\r\nfirst (\\Flagged $X) \"05-Feb-2019 14:30:00 +0000\" {6+}\r\nsecond ~{5}\r\nthird\r\n";
        let parts = split(command).unwrap().commands;
        assert_eq!(
            parts,
            [
                b"a1 APPEND \"Saved Mail\" (\\Seen) {5}\r\nfirst\r\n".to_vec(),
                b"a1 APPEND \"Saved Mail\" (\\Flagged $X) \"05-Feb-2019 14:30:00 +0000\" {6+}\r\nsecond\r\n".to_vec(),
                b"a1 APPEND \"Saved Mail\" ~{5}\r\nthird\r\n".to_vec(),
            ]
        );
    }

    #[test]
    fn a_literal_mailbox_name_and_a_literal_holding_look_alikes() {
        let command = b"t append {5}\r\nInbox {12}\r\n {3}\r\nabc)xy {1}\r\nx\r\n";
        let parts = split(command).unwrap().commands;
        assert_eq!(
            parts[0],
            b"t append {5}\r\nInbox {12}\r\n {3}\r\nabc)xy\r\n"
        );
        assert_eq!(parts[1], b"t append {5}\r\nInbox {1}\r\nx\r\n");
    }

    #[test]
    fn single_appends_and_other_commands_are_left_alone() {
        assert_eq!(split(b"a APPEND INBOX {3}\r\nabc\r\n"), None);
        assert_eq!(split(b"a NOOP\r\n"), None);
    }

    #[test]
    fn catenate_parts_ride_along_with_an_empty_literal() {
        let command = b"a APPEND Drafts (\\Draft) CATENATE (URL \"/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=1\" TEXT {5}\r\nhello URL /Sent;UID=2) {1}\r\nx\r\n";
        let appends = split(command).unwrap();
        assert_eq!(
            appends.commands,
            [
                b"a APPEND Drafts (\\Draft) {0}\r\n\r\n".to_vec(),
                b"a APPEND Drafts {1}\r\nx\r\n".to_vec(),
            ]
        );
        assert_eq!(
            appends.catenate,
            [
                Some(vec![
                    CatPart::Url("/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=1".into()),
                    CatPart::Text(b"hello".to_vec()),
                    CatPart::Url("/Sent;UID=2".into()),
                ]),
                None
            ]
        );
        // One CATENATE message alone is split too; broken lists are left to the grammar.
        let one = split(b"a APPEND INBOX CATENATE (TEXT {3}\r\nabc)\r\n").unwrap();
        assert_eq!(one.commands, [b"a APPEND INBOX {0}\r\n\r\n".to_vec()]);
        assert_eq!(split(b"a APPEND INBOX CATENATE (TEXT {3}\r\nabc\r\n"), None);
        assert_eq!(split(b"a APPEND INBOX CATENATE (FILE x)\r\n"), None);
        assert_eq!(split(b"a APPEND INBOX CATENATE ()\r\n"), None);
    }

    #[test]
    fn lengths_beyond_the_bytes_and_broken_framing_are_refused() {
        assert_eq!(split(b"a APPEND INBOX {3}\r\nabc {99}\r\nx\r\n"), None);
        assert_eq!(
            split(b"a APPEND INBOX {3}\r\nabc {18446744073709551615}\r\n\r\n"),
            None
        );
        assert_eq!(
            split(b"a APPEND INBOX {3}\r\nabc (\\Seen {1}\r\nx\r\n"),
            None
        );
        assert_eq!(split(b"a APPEND \"INBOX {3}\r\nabc\r\n"), None);
        for cut in 0..40 {
            let command = b"a APPEND INBOX {3}\r\nabc (\\Seen) {2}\r\nxy\r\n";
            let _ = split(&command[..cut.min(command.len())]);
        }
    }
}
