//! What FETCH and SEARCH say about a message's structure, over a real socket: sections and
//! BODYSTRUCTURE of attached messages (RFC 3501 6.4.5, 7.4.2), ENVELOPE addresses with source
//! routes and groups, SENTON and friends by the date the sender wrote, BINARY's decoding
//! (RFC 3516) and binary content appended as a literal8. Responses that `imap-proto` knows
//! (BODY sections, BODYSTRUCTURE, ENVELOPE) are parsed with it, as a client would read them;
//! BINARY items, which it does not know, are checked byte for byte.

mod common;

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use imap_proto::{AttributeValue, BodyStructure, Response, SectionPath};

use common::{base_config, TestServer, PASSWORD};

/// A client that reads whole responses, literals (and literal8s) included, as raw bytes.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    tag: u32,
}

impl Raw {
    fn login(server: &TestServer) -> Raw {
        let stream = TcpStream::connect(server.addr("imap")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut c = Raw {
            stream,
            buf: Vec::new(),
            tag: 0,
        };
        c.response();
        c.ok(&format!("LOGIN plain \"{PASSWORD}\""));
        c
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.expect("read"),
            }
        };
        assert!(n > 0, "connection closed; have {:?}", shown(&self.buf));
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// One response: a line, and each literal it announces with the line after it.
    fn response(&mut self) -> Vec<u8> {
        let mut at = 0;
        loop {
            let Some(end) = find(&self.buf[at..], b"\r\n").map(|e| at + e + 2) else {
                self.fill();
                continue;
            };
            match literal_len(&self.buf[..end - 2]) {
                Some(len) => {
                    while self.buf.len() < end + len {
                        self.fill();
                    }
                    at = end + len;
                }
                None => return self.buf.drain(..end).collect(),
            }
        }
    }

    /// Sends a command; its untagged responses and its tagged line.
    fn run(&mut self, command: &[u8]) -> (Vec<Vec<u8>>, String) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.stream.write_all(&line).unwrap();
        let mut untagged = Vec::new();
        loop {
            let r = self.response();
            if r.starts_with(format!("{tag} ").as_bytes()) {
                let tagged = String::from_utf8_lossy(&r[tag.len() + 1..]);
                return (untagged, tagged.trim_end().to_string());
            }
            untagged.push(r);
        }
    }

    fn ok(&mut self, command: &str) -> Vec<Vec<u8>> {
        let (untagged, tagged) = self.run(command.as_bytes());
        assert!(tagged.starts_with("OK"), "{command}: {tagged}");
        untagged
    }

    /// APPENDs a message to INBOX with a synchronizing-free literal (`~` for a literal8).
    fn append(&mut self, message: &[u8], date: &str, literal8: bool) -> String {
        let mut command = format!("APPEND INBOX \"{date}\" ").into_bytes();
        if literal8 {
            command.push(b'~');
        }
        command.extend_from_slice(format!("{{{}+}}\r\n", message.len()).as_bytes());
        command.extend_from_slice(message);
        let (_, tagged) = self.run(&command);
        tagged
    }

    /// FETCH of one message: the response's bytes.
    fn fetch(&mut self, seq: u32, items: &str) -> Vec<u8> {
        let untagged = self.ok(&format!("FETCH {seq} ({items})"));
        let prefix = format!("* {seq} FETCH ");
        untagged
            .into_iter()
            .find(|r| r.starts_with(prefix.as_bytes()))
            .unwrap_or_else(|| panic!("no FETCH response for {seq}"))
    }

    /// SEARCH: the numbers found.
    fn search(&mut self, criteria: &str) -> Vec<u32> {
        let untagged = self.ok(&format!("SEARCH {criteria}"));
        let line = String::from_utf8_lossy(&untagged[0]).into_owned();
        let rest = line.trim_end().strip_prefix("* SEARCH").unwrap();
        rest.split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the literal (`{n}` or `~{n}`) a line ends with.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = std::str::from_utf8(&line[open + 1..]).ok()?;
    digits.trim_end_matches('+').parse().ok()
}

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The FETCH attributes, parsed by `imap-proto` (the whole response must parse).
fn attributes(response: &[u8]) -> Vec<AttributeValue<'_>> {
    match Response::parse(response) {
        Ok((b"", Response::Fetch(_, attrs))) => attrs,
        other => panic!("not one FETCH response: {other:?}\n{}", shown(response)),
    }
}

/// The bytes of each BODY section, in order.
fn sections(response: &[u8]) -> Vec<(Option<SectionPath>, Vec<u8>)> {
    attributes(response)
        .into_iter()
        .filter_map(|a| match a {
            AttributeValue::BodySection { section, data, .. } => {
                Some((section, data.map(Cow::into_owned).unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}

/// An attached message holding a text part and a second attached message.
const TWO_LEVELS: &[u8] = b"From: a@b.c\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y.z\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner2\r\n\r\ninner2 body\r\n--YY--\r\n\r\n--XX--\r\n";

/// A forwarded message: the whole body is message/rfc822.
const FORWARDED: &[u8] = b"From: a@b.c\r\nSubject: top822\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y.z\r\n\r\ninner body\r\nline2\r\n";

const DATE: &str = "01-Jan-2024 12:00:00 +0000";

#[test]
fn sections_of_attached_messages_are_their_header_and_body() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    assert!(c.append(TWO_LEVELS, DATE, false).starts_with("OK"));
    assert!(c.append(FORWARDED, DATE, false).starts_with("OK"));
    c.ok("SELECT INBOX");
    let inner_header =
        "Subject: inner\r\nFrom: x@y.z\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n";
    let inner_text = "--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner2\r\n\r\ninner2 body\r\n--YY--\r\n";
    let r = c.fetch(
        1,
        "BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.MIME] BODY.PEEK[2.1] \
         BODY.PEEK[2.2] BODY.PEEK[2.2.HEADER] BODY.PEEK[2.2.TEXT] BODY.PEEK[2.2.1] \
         BODY.PEEK[2.2.MIME] BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]",
    );
    let got: Vec<String> = sections(&r).iter().map(|(_, d)| shown(d)).collect();
    // Byte for byte what Dovecot 2.3 answers for the same message.
    assert_eq!(
        got,
        [
            format!("{inner_header}{inner_text}"),
            inner_header.to_string(),
            inner_text.to_string(),
            "Content-Type: message/rfc822\r\n\r\n".into(),
            "inner text".into(),
            "Subject: inner2\r\n\r\ninner2 body".into(),
            "Subject: inner2\r\n\r\n".into(),
            "inner2 body".into(),
            "inner2 body".into(),
            "Content-Type: message/rfc822\r\n\r\n".into(),
            "Subject: inner\r\n\r\n".into(),
        ]
    );
    // A forwarded message: part 1 is the whole attached message, 1.1 its body.
    let r = c.fetch(
        2,
        "BODY.PEEK[1] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[1.1] BODY.PEEK[1.MIME]",
    );
    let got: Vec<String> = sections(&r).iter().map(|(_, d)| shown(d)).collect();
    assert_eq!(
        got,
        [
            "Subject: inner\r\nFrom: x@y.z\r\n\r\ninner body\r\nline2\r\n",
            "Subject: inner\r\nFrom: x@y.z\r\n\r\n",
            "inner body\r\nline2\r\n",
            "inner body\r\nline2\r\n",
            "From: a@b.c\r\nSubject: top822\r\nContent-Type: message/rfc822\r\n\r\n",
        ]
    );
    // A part that does not exist is an empty string, not an error.
    let r = c.fetch(1, "BODY.PEEK[2.2.2] BODY.PEEK[3]");
    assert!(
        sections(&r).iter().all(|(_, d)| d.is_empty()),
        "{}",
        shown(&r)
    );
}

#[test]
fn bodystructure_of_attached_messages_has_envelope_structure_and_lines() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    assert!(c.append(TWO_LEVELS, DATE, false).starts_with("OK"));
    assert!(c.append(FORWARDED, DATE, false).starts_with("OK"));
    c.ok("SELECT INBOX");
    let r = c.fetch(1, "BODYSTRUCTURE");
    let attrs = attributes(&r);
    let Some(AttributeValue::BodyStructure(BodyStructure::Multipart { bodies, .. })) =
        attrs.first()
    else {
        panic!("{}", shown(&r));
    };
    let BodyStructure::Message {
        common,
        other,
        envelope,
        body,
        lines,
        ..
    } = &bodies[1]
    else {
        panic!("part 2 is not message/rfc822: {}", shown(&r));
    };
    assert_eq!(common.ty.ty.to_ascii_lowercase(), "message");
    assert_eq!(other.octets, 179, "the attached message's size");
    assert_eq!(*lines, 14, "its lines");
    assert_eq!(envelope.subject.as_deref(), Some(&b"inner"[..]));
    let BodyStructure::Multipart { bodies: inner, .. } = body.as_ref() else {
        panic!(
            "the attached message is multipart/alternative: {}",
            shown(&r)
        );
    };
    let BodyStructure::Message {
        envelope: innermost,
        body: innermost_body,
        ..
    } = &inner[1]
    else {
        panic!("2.2 is message/rfc822: {}", shown(&r));
    };
    assert_eq!(innermost.subject.as_deref(), Some(&b"inner2"[..]));
    assert!(matches!(
        innermost_body.as_ref(),
        BodyStructure::Text { other, .. } if other.octets == 11
    ));
    // A forwarded message is one message/rfc822 part; BODY (no extension data) parses too.
    let r = c.fetch(2, "BODYSTRUCTURE");
    assert!(
        shown(&r).contains("(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 50 (NIL \"inner\" "),
        "{}",
        shown(&r)
    );
    assert!(matches!(
        attributes(&r).first(),
        Some(AttributeValue::BodyStructure(BodyStructure::Message {
            lines: 5,
            ..
        }))
    ));
    let r = c.fetch(1, "BODY");
    let body = shown(&r).replacen("FETCH (BODY ", "FETCH (BODYSTRUCTURE ", 1);
    assert_eq!(attributes(body.as_bytes()).len(), 1, "{body}");
    // An empty attached message and a base64-encoded one still have the envelope and body
    // their type's grammar requires (empty ones, as Dovecot sends), and sizes of their own.
    let empty = b"Subject: e\r\nContent-Type: multipart/mixed; boundary=E\r\n\r\n--E\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaGkNCg0KYm9keQ0K\r\n--E\r\nContent-Type: message/rfc822\r\n\r\n--E--\r\n";
    assert!(c.append(empty, DATE, false).starts_with("OK"));
    c.ok("NOOP");
    let r = c.fetch(3, "BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2]");
    let attrs = attributes(&r);
    let Some(AttributeValue::BodyStructure(BodyStructure::Multipart { bodies, .. })) =
        attrs.first()
    else {
        panic!("{}", shown(&r));
    };
    let sizes: Vec<(u32, u32)> = bodies
        .iter()
        .map(|b| match b {
            BodyStructure::Message { other, lines, .. } => (other.octets, *lines),
            _ => panic!("not message/rfc822: {}", shown(&r)),
        })
        .collect();
    assert_eq!(sizes, [(28, 1), (0, 0)]);
    let got: Vec<String> = sections(&r).iter().map(|(_, d)| shown(d)).collect();
    assert_eq!(got, ["U3ViamVjdDogaGkNCg0KYm9keQ0K", ""]);
}

#[test]
fn envelope_addresses_carry_source_routes_and_groups() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    let message = b"From: Joe <@route1,@route2:user@domain>\r\nTo: Friends: a@b.c, \"B\" <b@c.d>;, solo@x.y\r\nCc: undisclosed-recipients:;\r\nSubject: routes\r\n\r\nbody\r\n";
    assert!(c.append(message, DATE, false).starts_with("OK"));
    c.ok("SELECT INBOX");
    let r = c.fetch(1, "ENVELOPE");
    let attrs = attributes(&r);
    let Some(AttributeValue::Envelope(env)) = attrs.first() else {
        panic!("{}", shown(&r));
    };
    let text = |v: &Option<Cow<'_, [u8]>>| v.as_deref().map(shown);
    let from = &env.from.as_ref().unwrap()[0];
    assert_eq!(text(&from.name).as_deref(), Some("Joe"));
    assert_eq!(text(&from.adl).as_deref(), Some("@route1,@route2"));
    assert_eq!(text(&from.mailbox).as_deref(), Some("user"));
    assert_eq!(text(&from.host).as_deref(), Some("domain"));
    // Group syntax (RFC 3501 7.4.2): a start marker with the group's name and no host, the
    // members, an end marker of four NILs.
    let to: Vec<(Option<String>, Option<String>)> = env
        .to
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| (text(&a.mailbox), text(&a.host)))
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        to,
        [
            (some("Friends"), None),
            (some("a"), some("b.c")),
            (some("b"), some("c.d")),
            (None, None),
            (some("solo"), some("x.y")),
        ]
    );
    let cc = env.cc.as_ref().unwrap();
    assert_eq!(cc.len(), 2, "an empty group is its two markers");
    assert_eq!(
        text(&cc[0].mailbox).as_deref(),
        Some("undisclosed-recipients")
    );
    assert!(cc[1].mailbox.is_none() && cc[1].host.is_none());
}

#[test]
fn sent_date_keys_use_the_calendar_date_the_sender_wrote() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    let dated = |date: &str| format!("Date: {date}\r\nSubject: d\r\n\r\nx\r\n").into_bytes();
    // 1: 07:30 on 2 January in UTC, written as 1 January.
    c.append(&dated("Mon, 1 Jan 2024 23:30:00 -0800"), DATE, false);
    // 2: 22:30 on 31 December in UTC, written as 1 January.
    c.append(&dated("Mon, 1 Jan 2024 00:30:00 +0200"), DATE, false);
    // 3: no Date header, 4: an unreadable one: both fall back to the internal date.
    c.append(
        b"Subject: none\r\n\r\nx\r\n",
        "05-Mar-2024 10:00:00 +0000",
        false,
    );
    c.append(&dated("sometime soon"), "05-Mar-2024 10:00:00 +0000", false);
    // 5: written as 2 January.
    c.append(&dated("Tue, 2 Jan 2024 00:00:01 +0000"), DATE, false);
    c.ok("SELECT INBOX");
    assert_eq!(c.search("SENTON 1-Jan-2024"), [1, 2]);
    assert_eq!(c.search("SENTON 2-Jan-2024"), [5]);
    assert_eq!(c.search("SENTON 31-Dec-2023"), Vec::<u32>::new());
    assert_eq!(c.search("SENTBEFORE 2-Jan-2024"), [1, 2]);
    assert_eq!(c.search("SENTSINCE 2-Jan-2024"), [3, 4, 5]);
    assert_eq!(c.search("SENTON 5-Mar-2024"), [3, 4]);
    assert_eq!(c.search("NOT SENTSINCE 1-Jan-2024"), Vec::<u32>::new());
}

/// The BINARY item's literal in a response: whether it was a literal8, and its bytes.
fn binary_literal(response: &[u8], item: &str) -> (bool, Vec<u8>) {
    let at = find(response, item.as_bytes()).unwrap_or_else(|| panic!("{}", shown(response)))
        + item.len();
    let rest = &response[at..];
    let literal8 = rest.starts_with(b" ~{");
    let open = find(rest, b"{").unwrap();
    let close = find(rest, b"}\r\n").unwrap();
    let len: usize = shown(&rest[open + 1..close]).parse().unwrap();
    (literal8, rest[close + 3..close + 3 + len].to_vec())
}

fn binary_size(response: &[u8], item: &str) -> u64 {
    let text = shown(response);
    let at = text.find(item).unwrap() + item.len() + 1;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn binary_decodes_quoted_printable_and_base64_to_exact_bytes() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    let qp = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak lower=c3=a9 bad=ZZ pad= \t\r\nded trail   \r\nline=3D\r\nlast=\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\nAw==\r\n--B\r\nContent-Transfer-Encoding: QUOTED-PRINTABLE\r\n\r\nend=\r\n--B--\r\n";
    assert!(c.append(qp, DATE, false).starts_with("OK"));
    let uu = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\none\r\n--B\r\n\r\ntwo\r\n--B\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--B--\r\n";
    assert!(c.append(uu, DATE, false).starts_with("OK"));
    c.ok("SELECT INBOX");
    let r = c.fetch(
        1,
        "BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[3]",
    );
    let expected = "softbreak lower\u{e9} bad=ZZ padded trail\r\nline=\r\nlast";
    assert_eq!(
        binary_literal(&r, "BINARY[1]"),
        (false, expected.as_bytes().to_vec())
    );
    assert_eq!(binary_size(&r, "BINARY.SIZE[1]"), expected.len() as u64);
    assert_eq!(binary_literal(&r, "BINARY[2]"), (true, vec![0, 1, 2, 3]));
    assert_eq!(binary_size(&r, "BINARY.SIZE[2]"), 4);
    assert_eq!(binary_literal(&r, "BINARY[3]"), (false, b"end".to_vec()));
    assert!(!shown(&r).contains('\0') || binary_literal(&r, "BINARY[2]").0);
    // A partial BINARY counts decoded bytes.
    let r = c.fetch(1, "BINARY.PEEK[1]<4.5>");
    assert_eq!(
        binary_literal(&r, "BINARY[1]<4>"),
        (false, b"break".to_vec())
    );
    // An encoding roost can't undo fails the command with UNKNOWN-CTE, but the messages
    // answered before it keep their responses, whole.
    let (untagged, tagged) = c.run(b"FETCH 1:2 (BINARY.PEEK[3])");
    assert!(tagged.starts_with("NO [UNKNOWN-CTE]"), "{tagged}");
    assert_eq!(untagged.len(), 1, "{untagged:?}");
    assert_eq!(
        binary_literal(&untagged[0], "BINARY[3]"),
        (false, b"end".to_vec())
    );
    let (untagged, tagged) = c.run(b"FETCH 2 (UID BINARY.PEEK[1] BINARY.PEEK[3])");
    assert!(tagged.starts_with("NO [UNKNOWN-CTE]"), "{tagged}");
    assert!(untagged.is_empty(), "no half response: {untagged:?}");
    let (_, tagged) = c.run(b"NOOP");
    assert!(tagged.starts_with("OK"), "the session goes on: {tagged}");
}

/// A message with a binary part holding NUL and other control bytes.
const BINARY_PART: &[u8] = b"Subject: bin\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nA\x00B\x01C\r\n--B--\r\n";

/// Checks that no literal but BINARY's literal8 carries a NUL (RFC 3501 CHAR8, RFC 9051
/// 4.3.1).
fn assert_no_nul_outside_literal8(response: &[u8]) {
    let mut rest = response;
    while let Some(nul) = rest.iter().position(|&b| b == 0) {
        let before = &rest[..nul];
        let open = before.iter().rposition(|&b| b == b'{').unwrap();
        assert!(
            open > 0 && before[open - 1] == b'~',
            "a NUL outside a literal8: {}",
            shown(response)
        );
        rest = &rest[nul + 1..];
    }
}

#[test]
fn nul_in_a_stored_message_never_reaches_a_plain_literal() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    common::seed_maildir(&server.mail_root().join("plain"), &[BINARY_PART]);
    let mut c = Raw::login(&server);
    c.ok("SELECT INBOX");
    let r = c.fetch(
        1,
        "RFC822.SIZE BODY.PEEK[1] BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[]<60.90>",
    );
    assert_no_nul_outside_literal8(&r);
    let got = sections(&r);
    // As Dovecot sends it: each NUL as 0x80, one byte for one, so sizes stay the stored ones.
    assert_eq!(got[0].1, b"A\x80B\x01C");
    assert_eq!(got[1].1.len(), BINARY_PART.len());
    assert!(shown(&r).contains(&format!("RFC822.SIZE {}", BINARY_PART.len())));
    let r = c.fetch(1, "BINARY.PEEK[1] BINARY.SIZE[1]");
    assert_eq!(
        binary_literal(&r, "BINARY[1]"),
        (true, b"A\x00B\x01C".to_vec())
    );
    assert_eq!(binary_size(&r, "BINARY.SIZE[1]"), 5);
    let r = c.fetch(1, "RFC822 RFC822.TEXT RFC822.HEADER");
    assert_no_nul_outside_literal8(&r);
    assert_eq!(
        attributes(&r).len(),
        4,
        "the three and FLAGS, \\Seen being set"
    );
    let r = c.fetch(1, "BINARY.PEEK[]");
    let (literal8, whole) = binary_literal(&r, "BINARY[]");
    assert!(literal8 && whole == BINARY_PART, "{}", shown(&r));
}

#[test]
fn a_literal8_append_keeps_binary_content_for_binary_fetches() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = Raw::login(&server);
    let tagged = c.append(BINARY_PART, DATE, true);
    assert!(tagged.starts_with("OK [APPENDUID "), "{tagged}");
    c.ok("SELECT INBOX");
    let r = c.fetch(1, "BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[]");
    assert_no_nul_outside_literal8(&r);
    assert_eq!(attributes(&r).len(), 3);
    // Stored as Dovecot stores it: the binary part re-encoded as base64, so a plain literal
    // carries it whole.
    let parts = sections(&r);
    assert_eq!(shown(parts[0].1.trim_ascii_end()), "QQBCAUM=");
    assert!(
        shown(&r).to_ascii_lowercase().contains("\"base64\""),
        "{}",
        shown(&r)
    );
    let r = c.fetch(1, "BINARY.PEEK[1] BINARY.SIZE[1]");
    assert_eq!(
        binary_literal(&r, "BINARY[1]"),
        (true, b"A\x00B\x01C".to_vec())
    );
    assert_eq!(binary_size(&r, "BINARY.SIZE[1]"), 5);
    // A synchronizing literal8 waits for the continuation like any literal.
    let head = format!("s1 APPEND INBOX ~{{{}}}\r\n", BINARY_PART.len());
    c.stream.write_all(head.as_bytes()).unwrap();
    assert!(c.response().starts_with(b"+ "));
    c.stream.write_all(BINARY_PART).unwrap();
    c.stream.write_all(b"\r\n").unwrap();
    let mut reply = c.response();
    while reply.starts_with(b"* ") {
        reply = c.response();
    }
    assert!(reply.starts_with(b"s1 OK"), "{}", shown(&reply));
    let r = c.fetch(2, "BINARY.PEEK[1]");
    assert_eq!(
        binary_literal(&r, "BINARY[1]"),
        (true, b"A\x00B\x01C".to_vec())
    );
}
