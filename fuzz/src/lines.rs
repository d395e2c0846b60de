//! The line protocols: POP3 and SMTP command lines (with the shared `LineDecoder`), SMTP
//! addresses, parameters and server replies, the DATA dot-decoder and -encoder, and SASL.

use bytes::BytesMut;
use roost_protocol::{
    dot::{DataFlaws, DotDecoder, DotEncoder, MAX_DATA_LINE},
    imap::{Event, Expect, ImapDecoder},
    line::{Line, LineDecoder},
    pop3,
    sasl::{self, Mechanism},
    smtp::{self, address::Address, header::HeaderWatch, params::MailParams},
};

/// Splits `data` into lines, fed `chunk` bytes at a time.
fn lines(data: &[u8], chunk: usize, max: usize) -> Vec<Line> {
    let mut dec = LineDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(line) = dec.decode(&mut buf) {
            out.push(line);
        }
        assert!(buf.len() <= max + 1, "LineDecoder holds more than a line");
    }
    out
}

/// The lines of `data`, checked to be the same whatever the read sizes were.
fn checked_lines(data: &[u8], max: usize) -> Vec<Line> {
    let whole = lines(data, data.len(), max);
    for chunk in [1, 5] {
        assert_eq!(
            lines(data, chunk, max),
            whole,
            "lines depend on read size {chunk}"
        );
    }
    whole
}

/// How a parsed POP3 command is written by a client that means the same thing.
fn pop3_line(cmd: &pop3::Command) -> String {
    use pop3::Command as C;
    let opt = |n: &Option<u32>| n.map(|n| format!(" {n}")).unwrap_or_default();
    match cmd {
        C::User(n) => format!("USER {n}"),
        C::Pass(p) => format!("PASS {p}"),
        C::Apop(n, d) => format!("APOP {n} {d}"),
        C::Auth {
            mechanism,
            initial_response,
        } => {
            let mut s = "AUTH".to_string();
            for w in [mechanism, initial_response].into_iter().flatten() {
                s.push(' ');
                s.push_str(w);
            }
            s
        }
        C::List(n) => format!("LIST{}", opt(n)),
        C::Uidl(n) => format!("UIDL{}", opt(n)),
        C::Retr(n) => format!("RETR {n}"),
        C::Dele(n) => format!("DELE {n}"),
        C::Top(n, l) => format!("TOP {n} {l}"),
        other => other.keyword().to_string(),
    }
}

/// POP3 command lines: the same lines at any read size, and every command that parses parses
/// the same again when written back in canonical form. `multiline` output dot-decodes back.
pub fn pop3(data: &[u8]) {
    let mut texts = Vec::new();
    for max in [pop3::MAX_LINE, 16] {
        for line in checked_lines(data, max) {
            let Line::Complete(line) = line else { continue };
            assert!(line.len() <= max);
            if let Ok(cmd) = pop3::Command::parse(&line) {
                let again = pop3_line(&cmd);
                assert_eq!(
                    pop3::Command::parse(again.as_bytes()),
                    Ok(cmd.clone()),
                    "{again:?}"
                );
            }
            if let Ok(text) = String::from_utf8(line) {
                if !text.contains(['\r', '\n']) {
                    texts.push(text);
                }
            }
        }
    }
    // A multi-line response carries any lines intact to a dot-decoding client.
    let wire = pop3::multiline("x", texts.iter().map(String::as_str));
    let first_line = wire.iter().position(|&b| b == b'\n').unwrap() + 1;
    let (content, flaws, rest) = dot_decode(&wire[first_line..], wire.len());
    assert!(rest.is_some_and(|r| r.is_empty()), "multiline ended early");
    let mut want = Vec::new();
    for t in &texts {
        want.extend_from_slice(t.as_bytes());
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(content, want);
    assert_eq!(flaws.bare_lf, 0);
}

/// SMTP command lines, with MAIL/RCPT paths and parameters: canonical forms re-parse to the
/// same values.
pub fn smtp_command(data: &[u8]) {
    for line in checked_lines(data, smtp::MAX_COMMAND_LINE) {
        let Line::Complete(line) = line else { continue };
        let Ok(cmd) = smtp::Command::parse(&line) else {
            continue;
        };
        let path = match &cmd {
            smtp::Command::MailFrom { from, params } => {
                Some(("MAIL FROM:", from.to_string(), params))
            }
            smtp::Command::RcptTo { to, params } => Some(("RCPT TO:", to.to_string(), params)),
            _ => None,
        };
        let Some((verb, shown, params)) = path else {
            continue;
        };
        // What roost writes of a checked path (source route gone) parses back to the same.
        let again = format!("{verb}<{shown}> {}", params.join(" "));
        assert_eq!(
            smtp::Command::parse(again.as_bytes()),
            Ok(cmd.clone()),
            "{again:?}"
        );
        assert!(
            !shown.contains(['\r', '\n']),
            "a checked path carries a line break: {shown:?}"
        );
        if !shown.is_empty() {
            let parsed = Address::parse(&shown).expect("a checked path re-parses");
            assert_eq!(parsed.to_string(), shown, "the address is shown two ways");
            let _ = parsed.local_key();
        }
        if let Ok(parsed) = MailParams::parse(params) {
            let encoded: Vec<String> = parsed
                .encode()
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect();
            assert_eq!(MailParams::parse(&encoded), Ok(parsed));
        }
    }
}

/// What the DATA decoder should produce, computed on the whole input at once: the content,
/// the flaws, and where the data ended (after the terminator), if it did. Only CRLF ends a
/// line (so only `CRLF . CRLF` ends the data); a bare LF is written as CRLF but the line goes
/// on, and every CR that is not part of a CRLF is counted.
fn reference_decode(wire: &[u8]) -> (Vec<u8>, DataFlaws, Option<usize>) {
    let mut out = Vec::new();
    let mut flaws = DataFlaws::default();
    let mut at = 0;
    let mut line_start = true;
    loop {
        let mut rest = &wire[at..];
        let mut line_len = 0;
        if line_start {
            if rest.starts_with(b".\r\n") {
                return (out, flaws, Some(at + 3));
            }
            if rest.starts_with(b".") {
                if rest.len() < 2 || (rest[1] == b'\r' && rest.len() < 3) {
                    return (out, flaws, None);
                }
                rest = &rest[1..];
                at += 1;
                line_len = 1;
            }
        }
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            return (out, flaws, None);
        };
        let crlf = lf > 0 && rest[lf - 1] == b'\r';
        let content = &rest[..if crlf { lf - 1 } else { lf }];
        if line_len + content.len() > MAX_DATA_LINE {
            flaws.line_too_long = true;
        }
        if content.contains(&0) {
            flaws.nul = true;
        }
        flaws.bare_cr += content.iter().filter(|&&b| b == b'\r').count() as u64;
        if !crlf {
            flaws.bare_lf += 1;
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
        line_start = crlf;
        at += lf + 1;
    }
}

/// Runs `DotDecoder` over `wire` fed `chunk` bytes at a time: content, flaws, and the bytes
/// left after the terminator (`None` when the data has not ended).
fn dot_decode(wire: &[u8], chunk: usize) -> (Vec<u8>, DataFlaws, Option<Vec<u8>>) {
    let mut dec = DotDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pieces = wire.chunks(chunk.max(1));
    loop {
        if dec.decode(&mut buf, &mut out) {
            assert!(dec.is_done());
            buf.extend(pieces.flatten());
            return (out, dec.flaws(), Some(buf.to_vec()));
        }
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None => return (out, dec.flaws(), None),
        }
    }
}

/// What the encoder sends for `message`: every line CRLF-terminated (a last line without
/// a line end completed), dots not yet stuffed.
fn crlf_lines(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        out.extend_from_slice(body);
        if !body.ends_with(b"\r") {
            out.push(b'\r');
        }
        out.push(b'\n');
    }
    out
}

/// SMTP DATA from the wire (`DotDecoder`) against a whole-buffer model at several read sizes,
/// and any message through `DotEncoder` (RETR and TOP) and back: the encoded form never ends
/// early, decodes to the message, and does not depend on the chunking. `HeaderWatch` finds the
/// same header end at any chunking.
pub fn smtp_data(data: &[u8]) {
    // Receiving side.
    let (want, want_flaws, end) = reference_decode(data);
    let smallest = if data.len() <= 1024 { 1 } else { 11 };
    for chunk in [smallest, 2, 7, data.len()] {
        let (out, flaws, rest) = dot_decode(data, chunk);
        match end {
            Some(end) => {
                assert_eq!(out, want, "content at read size {chunk}");
                assert_eq!(flaws, want_flaws, "flaws at read size {chunk}");
                assert_eq!(
                    rest.as_deref(),
                    Some(&data[end..]),
                    "rest, read size {chunk}"
                );
            }
            None => {
                assert!(
                    rest.is_none(),
                    "ended without a terminator, read size {chunk}"
                );
                let mut terminated = data.to_vec();
                terminated.extend_from_slice(b"\r\n.\r\n");
                let (complete, _, _) = reference_decode(&terminated);
                assert!(complete.starts_with(&out), "content at read size {chunk}");
            }
        }
    }

    // Sending side: RETR and TOP, then decoded as a client would.
    let lines = crlf_lines(data);
    let top = (data.len() % 4) as u64;
    for (encoder, whole) in [(DotEncoder::whole(), true), (DotEncoder::top(top), false)] {
        let mut wires = Vec::new();
        for chunk in [1, 3, data.len().max(1)] {
            let mut enc = encoder.clone();
            let mut wire = Vec::new();
            for piece in data.chunks(chunk) {
                enc.encode(piece, &mut wire);
            }
            enc.finish(&mut wire);
            wires.push(wire);
        }
        assert!(
            wires.windows(2).all(|w| w[0] == w[1]),
            "encoding depends on chunking"
        );
        let wire = &wires[0];
        let (content, flaws, rest) = dot_decode(wire, wire.len());
        assert_eq!(rest.as_deref(), Some(&[][..]), "encoded data ended early");
        assert_eq!(flaws.bare_lf, 0, "the encoder sent a bare LF");
        if whole {
            assert_eq!(content, lines, "RETR did not give the message back");
        } else {
            assert!(
                lines.starts_with(&content),
                "TOP is not a prefix of the message"
            );
        }
    }

    // The header watch sees the same header end at any chunking.
    let watched = |chunk: usize| {
        let mut w = HeaderWatch::new();
        let mut end = None;
        let mut offset = 0;
        for piece in lines.chunks(chunk.max(1)) {
            if let Some(at) = w.feed(piece) {
                assert!(end.is_none(), "the header ended twice");
                end = Some(offset + at);
            }
            offset += piece.len();
        }
        (end, w.has_date(), w.has_message_id(), w.in_header())
    };
    let once = watched(lines.len());
    assert_eq!(watched(1), once);
    assert_eq!(watched(5), once);
}

/// SASL: base64 lines, PLAIN messages (raw and decoded), LOGIN answers, mechanism names, and
/// IMAP AUTHENTICATE continuation lines.
pub fn sasl(data: &[u8]) {
    match sasl::decode_base64_line(data) {
        Ok(decoded) => {
            let _ = sasl::parse_plain(&decoded);
            let _ = sasl::parse_login_answer(decoded);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(c) = sasl::parse_plain(data) {
        assert!(!c.username.is_empty() && !c.username.contains('\0'));
        assert!(
            format!("{c:?}").contains("<hidden>"),
            "the password is not hidden"
        );
    }
    let encoded = sasl::encode_base64(data);
    assert_eq!(
        sasl::decode_base64_line(encoded.as_bytes()),
        Ok(data.to_vec())
    );
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(m) = Mechanism::from_name(name) {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
    }
    let mut dec = ImapDecoder::new(64, 1024);
    dec.expect(Expect::AuthenticateData);
    dec.enqueue(data);
    dec.enqueue(b"\r\n");
    while let Some(event) = dec.next_event() {
        if let Event::AuthenticateData(d) = event {
            let _ = format!("{d:?}");
        }
    }
}
