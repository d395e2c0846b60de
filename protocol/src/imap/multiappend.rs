//! MULTIAPPEND (RFC 3502): one APPEND carrying several messages, `tag APPEND box (\Seen)
//! {10}\r\n... (\Flagged) "date" {20}\r\n...`. `imap-codec` parses an APPEND of one message,
//! so the command is cut into one APPEND per message, each of which it then checks as usual.
//!
//! Only the framing is looked at here: the mailbox (atom, quoted string or literal), then per
//! message an optional flag list, an optional quoted date and a literal (`{n}`, `{n+}` or
//! the literal8 forms `~{n}`); everything else is left to the grammar. The scan is a single
//! pass without recursion, and every length is checked against the bytes actually there.

/// The single-message APPEND commands a MULTIAPPEND stands for; `None` for any command that
/// is not an APPEND of two or more messages (it goes to the grammar unchanged).
pub fn split(command: &[u8]) -> Option<Vec<Vec<u8>>> {
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
    let mut messages = Vec::new();
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
        scan.literal()?;
        messages.push(start..scan.at);
        if scan.rest() == b"\r\n" || scan.rest() == b"\n" {
            break;
        }
    }
    if messages.len() < 2 {
        return None;
    }
    Some(
        messages
            .into_iter()
            .map(|range| {
                let mut one = Vec::with_capacity(prefix.len() + range.len() + 2);
                one.extend_from_slice(prefix);
                one.extend_from_slice(&command[range]);
                one.extend_from_slice(b"\r\n");
                one
            })
            .collect(),
    )
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

    /// A literal (`{n}`, `{n+}`, `~{n}`, `~{n+}`), its line end and its `n` bytes.
    fn literal(&mut self) -> Option<()> {
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
        Some(())
    }

    /// A mailbox name: quoted, literal or atom.
    fn astring(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
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
        let parts = split(command).unwrap();
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
        let parts = split(command).unwrap();
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
        assert_eq!(
            split(b"a APPEND INBOX CATENATE (TEXT {3}\r\nabc)\r\n"),
            None
        );
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
