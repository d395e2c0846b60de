//! IMAP strings in responses (RFC 3501 4.3, 9): a quoted string where the grammar allows one,
//! a literal where it does not (8-bit bytes, CR, LF, NUL or long text), `NIL` for absent values.

/// Appends `s` as an IMAP string: quoted when it is short 7-bit text, a literal otherwise
/// (NUL bytes, which no IMAP string may hold, become 0x80).
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n');
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        // A literal may not carry NUL (RFC 3501 9, CHAR8): replace it as Dovecot does.
        push_literal_header(out, s.len() as u64);
        out.extend(s.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    }
}

/// Appends `s` as an nstring: `NIL` when absent.
pub fn push_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => push_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends `{len}\r\n`, the start of a literal whose bytes follow.
pub fn push_literal_header(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
}

/// Appends `s` as an astring (an atom when it is one, e.g. mailbox names, else a string).
pub fn push_astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    if atom {
        out.extend_from_slice(s);
    } else {
        push_string(out, s);
    }
}

/// The text as an IMAP string, for `format!`-built responses.
pub fn string(s: &str) -> String {
    let mut out = Vec::new();
    push_string(&mut out, s.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// The text as an astring, for `format!`-built responses (mailbox names in LIST, STATUS).
pub fn astring(s: &str) -> String {
    let mut out = Vec::new();
    push_astring(&mut out, s.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: fn(&mut Vec<u8>, &[u8]), s: &[u8]) -> String {
        let mut out = Vec::new();
        f(&mut out, s);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings_are_quoted_escaped_or_literal() {
        assert_eq!(enc(push_string, b"plain text"), "\"plain text\"");
        assert_eq!(
            enc(push_string, b"say \"hi\" \\o/"),
            "\"say \\\"hi\\\" \\\\o/\""
        );
        assert_eq!(enc(push_string, "caf\u{e9}".as_bytes()), "{5}\r\ncaf\u{e9}");
        assert_eq!(enc(push_string, b"two\r\nlines"), "{10}\r\ntwo\r\nlines");
        assert_eq!(enc(push_string, b""), "\"\"");
        let mut out = Vec::new();
        push_string(&mut out, b"a\0b");
        assert_eq!(
            out, b"{3}\r\na\x80b",
            "no NUL in a literal (found by fuzzing)"
        );
        assert_eq!(enc(push_astring, b"INBOX"), "INBOX");
        assert_eq!(enc(push_astring, b"Sent Items"), "\"Sent Items\"");
        assert_eq!(enc(push_astring, b"a%b"), "\"a%b\"");
    }
}
