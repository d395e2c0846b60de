//! Undoing a part's Content-Transfer-Encoding for BINARY (RFC 3516), leniently, as mail needs.

/// Base64 with line breaks, padding and stray characters skipped, as mail needs.
pub(super) fn decode_base64(body: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A dangling single character carries no whole byte: drop it rather than fail.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .unwrap_or_default()
}

/// Quoted-printable (RFC 2045 6.7), line by line: trailing blanks on a line are transport
/// padding and dropped, a line ending in `=` (blanks after it allowed) is a soft break that
/// joins the next line, and `=XX` (hex digits of either case) is one byte. An `=` not followed
/// by two hex digits is kept as it is, as RFC 2045 suggests to robust decoders (Dovecot 2.3
/// refuses the part instead). Line breaks come out as CRLF.
pub(super) fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (line, has_break, tail) = match memchr::memchr(b'\n', rest) {
            Some(at) => (&rest[..at], true, &rest[at + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = tail;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = trim_blanks_end(line);
        match line.strip_suffix(b"=") {
            Some(joined) => unescape_line(joined, &mut out),
            None => {
                unescape_line(line, &mut out);
                if has_break {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    out
}

fn trim_blanks_end(mut line: &[u8]) -> &[u8] {
    while let [head @ .., b' ' | b'\t'] = line {
        line = head;
    }
    line
}

/// One line's text with its `=XX` escapes undone.
fn unescape_line(line: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'=' {
            let high = line.get(i + 1).and_then(|&b| hex(b));
            let low = line.get(i + 2).and_then(|&b| hex(b));
            if let (Some(h), Some(l)) = (high, low) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_edge_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"soft=\r\nbreak", b"softbreak"),
            (
                b"lower=c3=a9 UPPER=C3=A9",
                "lower\u{e9} UPPER\u{e9}".as_bytes(),
            ),
            (b"bad=ZZ x=4 y=", b"bad=ZZ x=4 y"),
            (
                b"trail   \r\nline=3D\r\nlast=\r\n",
                b"trail\r\nline=\r\nlast",
            ),
            (b"tab\t\r\nend=", b"tab\r\nend"),
            (b"padded= \t\r\nsoft", b"paddedsoft"),
            (b"=0D=0A=00", b"\r\n\0"),
            (b"a==\r\nb", b"a=b"),
            (b"blank last line   ", b"blank last line"),
            (b"", b""),
            (b"=", b""),
        ];
        for (encoded, decoded) in cases {
            assert_eq!(
                decode_quoted_printable(encoded),
                decoded.to_vec(),
                "{}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    #[test]
    fn base64_skips_line_breaks_and_junk() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8A\r\n"), b"hello\0");
        assert_eq!(decode_base64(b"aGVsbG8=\r\n"), b"hello");
        assert_eq!(decode_base64(b"aGV sbG8\r\n=="), b"hello");
    }
}
