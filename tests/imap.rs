//! IMAP over real sockets (plain, STARTTLS, IMAPS), every byte the server sends checked by a
//! strict IMAP response parser that is not ours: `imap-proto`. Each response (a line, or lines
//! joined by literals) must parse completely and be 7-bit outside literals, with CRLF only where
//! the grammar puts it; anything else fails the test with the raw bytes and a transcript.
//!
//! Two holes in `imap-proto` are filled here, and only these: it has no NAMESPACE parser, so
//! `* NAMESPACE` is checked against RFC 2342's grammar by a small parser below; and it only knows
//! the extensible `BODYSTRUCTURE` form, so a FETCH `BODY (...)` item is parsed with the
//! BODYSTRUCTURE grammar (the non-extensible form is its subset) and then checked to carry no
//! extension data.

mod common;

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use imap_proto::rfc4315::UidSetMember;
use imap_proto::{
    AttributeValue, BodyStructure, Capability, ContentEncoding, MailboxDatum, MessageSection,
    NameAttribute, Response, ResponseCode, SectionPath, Status, StatusAttribute,
};

use common::{
    base_config, crlf, give_to_mail_owner, maildir_uidvalidity, seed_maildir, TestServer, PASSWORD,
};

// ---------------------------------------------------------------------------------------------
// The strict client
// ---------------------------------------------------------------------------------------------

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One server response: its bytes and what `imap-proto` made of them (`None` only for a
/// `* NAMESPACE` line, which our own RFC 2342 checker accepted).
struct Resp {
    raw: Vec<u8>,
    parsed: Option<Response<'static>>,
}

/// The answer to one command: the untagged responses before it and the tagged line.
struct Reply {
    command: String,
    untagged: Vec<Resp>,
    status: Status,
    code: Option<ResponseCode<'static>>,
    text: String,
    tagged_raw: Vec<u8>,
}

/// A client that sends commands and parses every response strictly.
struct Imap {
    stream: Box<dyn Stream>,
    tcp: TcpStream,
    buf: Vec<u8>,
    tag: u32,
    transcript: Vec<String>,
}

const READ_TIMEOUT: Duration = Duration::from_secs(15);

impl Imap {
    /// Connects in plain text and reads the greeting.
    fn connect(addr: SocketAddr) -> (Imap, Resp) {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut c = Imap {
            stream: Box::new(tcp.try_clone().unwrap()),
            tcp,
            buf: Vec::new(),
            tag: 0,
            transcript: Vec::new(),
        };
        let greeting = c.response();
        (c, greeting)
    }

    /// Connects with implicit TLS (IMAPS) and reads the greeting.
    fn connect_tls(addr: SocketAddr) -> (Imap, Resp) {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut c = Imap {
            stream: Box::new(common::tls_client(tcp.try_clone().unwrap())),
            tcp,
            buf: Vec::new(),
            tag: 0,
            transcript: Vec::new(),
        };
        let greeting = c.response();
        (c, greeting)
    }

    /// STARTTLS, then the rest of the session goes over TLS.
    fn starttls(&mut self) {
        self.ok("STARTTLS");
        assert!(self.buf.is_empty(), "bytes after the STARTTLS OK");
        self.stream = Box::new(common::tls_client(self.tcp.try_clone().unwrap()));
        self.transcript.push("-- TLS --".into());
    }

    fn login(&mut self) -> Reply {
        self.ok(&format!("LOGIN plain \"{PASSWORD}\""))
    }

    /// The transcript's last lines, for failure messages.
    fn recent(&self) -> String {
        let from = self.transcript.len().saturating_sub(40);
        self.transcript[from..].join("\n")
    }

    fn send(&mut self, bytes: &[u8]) {
        self.transcript.push(format!("C: {}", shown(bytes)));
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    /// Reads more bytes.
    fn fill(&mut self) -> Fill {
        let mut chunk = vec![0u8; 64 * 1024];
        // A signal (a child process of another test exiting) may interrupt the read: retry.
        let read = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) => Fill::Eof,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Fill::Timeout
            }
            Err(e) => panic!("read failed: {e}\n{}", self.recent()),
        }
    }

    /// The next whole response (lines and literals) if the buffer holds one; it is removed.
    fn take_frame(&mut self) -> Option<(Vec<u8>, Literals)> {
        let (end, literals) = frame_end(&self.buf)?;
        let frame: Vec<u8> = self.buf.drain(..end).collect();
        Some((frame, literals))
    }

    /// Waits up to `limit` for a response.
    fn response_within(&mut self, limit: Duration) -> Option<Resp> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((frame, literals)) = self.take_frame() {
                self.transcript.push(format!("S: {}", shown(&frame)));
                return Some(match strict_parse(&frame, &literals) {
                    Ok(parsed) => Resp { raw: frame, parsed },
                    Err(why) => panic!(
                        "GRAMMAR ERROR: {why}\nraw response: {}\ntranscript:\n{}",
                        shown(&frame),
                        self.recent()
                    ),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.tcp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let got = self.fill();
            self.tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            if got == Fill::Eof {
                return None;
            }
        }
    }

    /// The next response (bounded by the read timeout).
    fn response(&mut self) -> Resp {
        match self.response_within(READ_TIMEOUT) {
            Some(r) => r,
            None => panic!(
                "no response (connection closed or {READ_TIMEOUT:?} of silence); buffered {:?}\n{}",
                shown(&self.buf),
                self.recent()
            ),
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("a{}", self.tag)
    }

    /// Sends a command line (a tag is added) and reads until its tagged response.
    fn cmd(&mut self, command: &str) -> Reply {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until_tagged(&tag, command)
    }

    /// Sends a command made of text and synchronizing literals, waiting for each `+`; stops
    /// early (returning the tagged answer) when the server refuses a literal.
    fn cmd_literals(&mut self, parts: &[Part<'_>]) -> Reply {
        let tag = self.next_tag();
        let description: String = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.to_string(),
                Part::Literal(l) => format!("{{{}}}", l.len()),
                Part::LiteralPlus(l) => format!("{{{}+}}", l.len()),
            })
            .collect();
        let mut pending = format!("{tag} ").into_bytes();
        for part in parts {
            match part {
                Part::Text(t) => pending.extend_from_slice(t.as_bytes()),
                Part::LiteralPlus(l) => {
                    pending.extend_from_slice(format!("{{{}+}}\r\n", l.len()).as_bytes());
                    pending.extend_from_slice(l);
                }
                Part::Literal(l) => {
                    pending.extend_from_slice(format!("{{{}}}\r\n", l.len()).as_bytes());
                    self.send(&std::mem::take(&mut pending));
                    let r = self.response();
                    match &r.parsed {
                        Some(Response::Continue(_)) => {}
                        Some(Response::Done { tag: t, .. }) if t.0 == tag => {
                            return self.reply_from(description, Vec::new(), r);
                        }
                        _ => panic!("expected + after a literal announcement\n{}", self.recent()),
                    }
                    pending.extend_from_slice(l);
                }
            }
        }
        pending.extend_from_slice(b"\r\n");
        self.send(&pending);
        self.until_tagged(&tag, &description)
    }

    fn until_tagged(&mut self, tag: &str, command: &str) -> Reply {
        let mut untagged = Vec::new();
        loop {
            let r = self.response();
            if let Some(Response::Done { tag: t, .. }) = &r.parsed {
                assert_eq!(
                    t.0,
                    tag,
                    "tagged response for another command\n{}",
                    self.recent()
                );
                return self.reply_from(command.to_string(), untagged, r);
            }
            untagged.push(r);
        }
    }

    fn reply_from(&self, command: String, untagged: Vec<Resp>, tagged: Resp) -> Reply {
        let Some(Response::Done {
            status, outcome, ..
        }) = tagged.parsed
        else {
            unreachable!()
        };
        Reply {
            command,
            untagged,
            status,
            code: outcome.code,
            text: outcome
                .information
                .map(|s| s.into_owned())
                .unwrap_or_default(),
            tagged_raw: tagged.raw,
        }
    }

    /// Runs a command and asserts OK.
    fn ok(&mut self, command: &str) -> Reply {
        let r = self.cmd(command);
        r.assert_status(Status::Ok, self);
        r
    }

    /// Runs a command and asserts NO.
    fn no(&mut self, command: &str) -> Reply {
        let r = self.cmd(command);
        r.assert_status(Status::No, self);
        r
    }

    /// Runs a command and asserts BAD.
    fn bad(&mut self, command: &str) -> Reply {
        let r = self.cmd(command);
        r.assert_status(Status::Bad, self);
        r
    }

    /// Starts IDLE and waits for the continuation.
    fn idle(&mut self) -> String {
        let tag = self.next_tag();
        self.send(format!("{tag} IDLE\r\n").as_bytes());
        let r = self.response();
        assert!(
            matches!(r.parsed, Some(Response::Continue(_))),
            "IDLE: expected +\n{}",
            self.recent()
        );
        tag
    }

    /// Ends IDLE; returns what came before the tagged OK.
    fn done(&mut self, tag: &str) -> Reply {
        self.send(b"DONE\r\n");
        let r = self.until_tagged(tag, "IDLE");
        r.assert_status(Status::Ok, self);
        r
    }

    /// SELECT `mailbox`, asserting OK.
    fn select(&mut self, mailbox: &str) -> Reply {
        self.ok(&format!("SELECT {mailbox}"))
    }

    /// The single FETCH response to a command that names one message.
    fn fetch_one(&mut self, command: &str) -> Vec<AttributeValue<'static>> {
        let r = self.ok(command);
        let mut f = r.fetches();
        assert_eq!(
            f.len(),
            1,
            "{command}: one FETCH response expected\n{}",
            self.recent()
        );
        f.remove(0).1
    }
}

/// What a read brought.
#[derive(PartialEq, Eq)]
enum Fill {
    Data,
    Eof,
    Timeout,
}

/// Byte ranges of the literals in a response.
type Literals = Vec<(usize, usize)>;

/// A piece of a command with literals.
enum Part<'a> {
    Text(&'a str),
    Literal(&'a [u8]),
    LiteralPlus(&'a [u8]),
}

impl Reply {
    fn assert_status(&self, want: Status, c: &Imap) {
        assert!(
            self.status == want,
            "{}: expected {want:?}, got {:?} {}\n{}",
            self.command,
            self.status,
            shown(&self.tagged_raw),
            c.recent()
        );
    }

    /// Every untagged response as text (lossy), for `contains` checks.
    fn untagged_text(&self) -> String {
        self.untagged
            .iter()
            .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
            .collect()
    }

    fn parsed(&self) -> impl Iterator<Item = &Response<'static>> {
        self.untagged.iter().filter_map(|r| r.parsed.as_ref())
    }

    /// `(sequence number, attributes)` of every FETCH response, owned.
    fn fetches(&self) -> Vec<(u32, Vec<AttributeValue<'static>>)> {
        self.untagged
            .iter()
            .filter_map(|r| {
                let raw = r.raw.clone();
                match &r.parsed {
                    Some(Response::Fetch(n, _)) => {
                        let literals = frame_end(&raw).unwrap().1;
                        match strict_parse(&raw, &literals) {
                            Ok(Some(Response::Fetch(n2, attrs))) => {
                                assert_eq!(*n, n2);
                                Some((n2, attrs))
                            }
                            _ => unreachable!(),
                        }
                    }
                    _ => None,
                }
            })
            .collect()
    }

    fn exists(&self) -> Vec<u32> {
        self.parsed()
            .filter_map(|r| match r {
                Response::MailboxData(MailboxDatum::Exists(n)) => Some(*n),
                _ => None,
            })
            .collect()
    }

    fn expunges(&self) -> Vec<u32> {
        self.parsed()
            .filter_map(|r| match r {
                Response::Expunge(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// The numbers of the (one) `* SEARCH` response.
    fn search(&self) -> Vec<u32> {
        let found: Vec<&Vec<u32>> = self
            .parsed()
            .filter_map(|r| match r {
                Response::MailboxData(MailboxDatum::Search(n)) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 1, "{}: one SEARCH response", self.command);
        let mut n = found[0].clone();
        n.sort_unstable();
        n
    }

    /// Response codes of untagged `* OK [...]` lines.
    fn untagged_codes(&self) -> Vec<&ResponseCode<'static>> {
        self.parsed()
            .filter_map(|r| match r {
                Response::Data {
                    status: Status::Ok,
                    outcome,
                } => outcome.code.as_ref(),
                _ => None,
            })
            .collect()
    }

    /// `(attributes, name)` of every LIST or LSUB line.
    fn mailboxes(&self) -> Vec<(Vec<String>, String)> {
        self.parsed()
            .filter_map(|r| match r {
                Response::MailboxData(MailboxDatum::List(l)) => Some((
                    l.name_attributes.iter().map(attribute).collect(),
                    l.name.to_string(),
                )),
                _ => None,
            })
            .collect()
    }

    /// The names of LIST/LSUB lines, sorted.
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.mailboxes().into_iter().map(|(_, n)| n).collect();
        n.sort();
        n
    }

    fn status_items(&self) -> Vec<StatusAttribute> {
        self.untagged
            .iter()
            .filter_map(|r| match &r.parsed {
                Some(Response::MailboxData(MailboxDatum::Status { .. })) => {
                    let literals = frame_end(&r.raw).unwrap().1;
                    match strict_parse(&r.raw, &literals) {
                        Ok(Some(Response::MailboxData(MailboxDatum::Status {
                            status, ..
                        }))) => Some(status),
                        _ => None,
                    }
                }
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// A name attribute as the wire spells it.
fn attribute(a: &NameAttribute<'_>) -> String {
    match a {
        NameAttribute::NoInferiors => "\\Noinferiors".into(),
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::Marked => "\\Marked".into(),
        NameAttribute::Unmarked => "\\Unmarked".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Extension(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

/// Bytes for a failure message: printable ASCII as is, the rest escaped, long runs cut.
fn shown(bytes: &[u8]) -> String {
    let cut = bytes.len() > 600;
    let bytes = if cut { &bytes[..600] } else { bytes };
    let mut s: String = bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if cut {
        s.push_str("...");
    }
    s
}

/// Where the first complete response in `buf` ends, and the byte ranges of its literals.
fn frame_end(buf: &[u8]) -> Option<(usize, Literals)> {
    let mut at = 0;
    let mut literals = Vec::new();
    loop {
        let lf = buf[at..].iter().position(|&b| b == b'\n')? + at;
        let line = &buf[at..=lf];
        at = lf + 1;
        match literal_length(line) {
            Some(n) => {
                if buf.len() < at + n {
                    return None;
                }
                literals.push((at, at + n));
                at += n;
            }
            None => return Some((at, literals)),
        }
    }
}

/// `{n}\r\n` at the end of a line announces an n-byte literal.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The strict check: CRLF-terminated, 7-bit text outside literals with CRLF only before a
/// literal and at the end, and a complete `imap-proto` parse with nothing left over.
fn strict_parse(
    frame: &[u8],
    literals: &[(usize, usize)],
) -> Result<Option<Response<'static>>, String> {
    if !frame.ends_with(b"\r\n") {
        return Err("response does not end with CRLF".into());
    }
    let mut start = 0;
    let mut segments = Vec::new();
    for &(a, b) in literals {
        segments.push((start, a));
        start = b;
    }
    segments.push((start, frame.len()));
    for (a, b) in segments {
        let text = &frame[a..b];
        for (i, &byte) in text.iter().enumerate() {
            let last_two = i + 2 >= text.len();
            match byte {
                0 => return Err(format!("NUL at byte {}", a + i)),
                0x80..=0xff => {
                    return Err(format!(
                        "8-bit byte {byte:#x} outside a literal at byte {}",
                        a + i
                    ))
                }
                b'\r' | b'\n' if !last_two => {
                    return Err(format!("CR or LF inside a line at byte {}", a + i))
                }
                _ => {}
            }
        }
        if !text.ends_with(b"\r\n") {
            return Err(format!("line ending at byte {b} is not CRLF-terminated"));
        }
    }
    if frame.starts_with(b"* NAMESPACE ") {
        return check_namespace(frame).map(|()| None);
    }
    let rewritten = body_items_as_bodystructure(frame, literals);
    let input: &[u8] = rewritten.as_deref().unwrap_or(frame);
    match Response::parse(input) {
        Ok(([], response)) => {
            let response = response.into_owned();
            if rewritten.is_some() {
                check_basic_body(&response)?;
            }
            check_no_fallbacks(&response)?;
            Ok(Some(response))
        }
        Ok((rest, _)) => Err(format!(
            "{} bytes left unparsed: {}",
            rest.len(),
            shown(rest)
        )),
        Err(e) if e.is_incomplete() => Err("incomplete: the parser wanted more input".into()),
        Err(e) => Err(format!("parse error: {e:?}")),
    }
}

/// In a FETCH response, the non-extensible `BODY (` item renamed `BODYSTRUCTURE (` (outside
/// quoted strings and literals), since `imap-proto` only parses the latter; `None` if absent.
fn body_items_as_bodystructure(frame: &[u8], literals: &[(usize, usize)]) -> Option<Vec<u8>> {
    let head = frame.iter().take_while(|&&b| b != b'(').count();
    if !std::str::from_utf8(&frame[..head])
        .is_ok_and(|h| h.starts_with("* ") && h.ends_with(" FETCH "))
    {
        return None;
    }
    let mut out = Vec::with_capacity(frame.len() + 16);
    let mut quoted = false;
    let mut i = 0;
    let mut changed = false;
    while i < frame.len() {
        if let Some(&(_, end)) = literals.iter().find(|(a, b)| *a == i && b > a) {
            out.extend_from_slice(&frame[i..end]);
            i = end;
            continue;
        }
        let b = frame[i];
        if quoted {
            if b == b'\\' {
                out.extend_from_slice(&frame[i..i + 2]);
                i += 2;
                continue;
            }
            if b == b'"' {
                quoted = false;
            }
        } else if b == b'"' {
            quoted = true;
        } else if frame[i..].starts_with(b"BODY (") && i > 0 && matches!(frame[i - 1], b'(' | b' ')
        {
            out.extend_from_slice(b"BODYSTRUCTURE (");
            i += 6;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// Response codes `imap-proto` knows; one of these left as plain text was malformed.
const KNOWN_CODES: [&str; 15] = [
    "ALERT",
    "BADCHARSET",
    "CAPABILITY",
    "PARSE",
    "PERMANENTFLAGS",
    "READ-ONLY",
    "READ-WRITE",
    "TRYCREATE",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "HIGHESTMODSEQ",
    "APPENDUID",
    "COPYUID",
    "UIDNOTSTICKY",
];

/// `imap-proto` is lenient in two places, closed here: a FETCH item it cannot parse becomes
/// `Unknown` (so a malformed ENVELOPE would pass), and a response code it cannot parse is read
/// as text (so `[UIDNEXT x]` would pass). Neither may happen: every item roost sends is one
/// `imap-proto` knows, and a code left as text must be a well-formed code it doesn't know
/// (RFC 3501 `atom [SP 1*<any TEXT-CHAR except "]">]`), `MODIFIED` with a sequence set.
fn check_no_fallbacks(response: &Response<'_>) -> Result<(), String> {
    let outcome = match response {
        Response::Fetch(_, attrs) => {
            if attrs.iter().any(|a| matches!(a, AttributeValue::Unknown)) {
                return Err("a FETCH item imap-proto does not recognize (malformed?)".into());
            }
            return Ok(());
        }
        Response::Done { outcome, .. }
        | Response::Data { outcome, .. }
        | Response::Continue(outcome) => outcome,
        _ => return Ok(()),
    };
    let Some(text) = outcome.information.as_deref() else {
        return Ok(());
    };
    if outcome.code.is_some() || !text.starts_with('[') {
        return Ok(());
    }
    let Some(close) = text.find(']') else {
        return Err("a response code without ]".into());
    };
    let code = &text[1..close];
    let (atom, arg) = match code.split_once(' ') {
        Some((a, b)) => (a, Some(b)),
        None => (code, None),
    };
    let atom_ok = !atom.is_empty()
        && atom
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"]".contains(&b));
    if !atom_ok || arg == Some("") {
        return Err(format!("malformed response code [{code}]"));
    }
    if KNOWN_CODES.contains(&atom.to_ascii_uppercase().as_str()) {
        return Err(format!(
            "imap-proto could not parse the response code [{code}]"
        ));
    }
    if atom.eq_ignore_ascii_case("MODIFIED") {
        let set_ok = arg.is_some_and(|a| {
            a.split(',').all(|r| {
                r.split(':').count() <= 2
                    && r.split(':')
                        .all(|n| n == "*" || n.parse::<u32>().is_ok_and(|n| n > 0))
            })
        });
        if !set_ok {
            return Err(format!("[MODIFIED] needs a sequence set: [{code}]"));
        }
    }
    if !text[close + 1..].is_empty() && !text[close + 1..].starts_with(' ') {
        return Err(format!("no space after [{code}]"));
    }
    Ok(())
}

/// A `BODY` item (parsed as BODYSTRUCTURE) must carry none of BODYSTRUCTURE's extension data.
fn check_basic_body(response: &Response<'_>) -> Result<(), String> {
    fn basic(b: &BodyStructure<'_>) -> bool {
        match b {
            BodyStructure::Basic {
                common,
                other,
                extension,
            }
            | BodyStructure::Text {
                common,
                other,
                extension,
                ..
            } => {
                common.disposition.is_none()
                    && common.language.is_none()
                    && common.location.is_none()
                    && other.md5.is_none()
                    && extension.is_none()
            }
            BodyStructure::Message {
                common,
                other,
                body,
                extension,
                ..
            } => {
                common.disposition.is_none()
                    && other.md5.is_none()
                    && extension.is_none()
                    && basic(body)
            }
            BodyStructure::Multipart {
                common,
                bodies,
                extension,
            } => {
                common.ty.params.is_none()
                    && common.disposition.is_none()
                    && extension.is_none()
                    && bodies.iter().all(basic)
            }
        }
    }
    if let Response::Fetch(_, attrs) = response {
        for a in attrs {
            if let AttributeValue::BodyStructure(b) = a {
                if !basic(b) {
                    return Err("BODY carries BODYSTRUCTURE extension data".into());
                }
            }
        }
    }
    Ok(())
}

/// RFC 2342: `"* NAMESPACE" SP namespace SP namespace SP namespace CRLF`, where
/// `namespace = nil / "(" 1*( "(" string SP (<"> QUOTED_CHAR <"> / nil) *(extension) ")" ) ")"`.
fn check_namespace(frame: &[u8]) -> Result<(), String> {
    struct P<'a>(&'a [u8], usize);
    impl P<'_> {
        fn eat(&mut self, s: &[u8]) -> bool {
            if self.0[self.1..].starts_with(s) {
                self.1 += s.len();
                true
            } else {
                false
            }
        }
        fn quoted(&mut self) -> Result<Vec<u8>, String> {
            if !self.eat(b"\"") {
                return Err(format!("expected a quoted string at byte {}", self.1));
            }
            let mut v = Vec::new();
            loop {
                match self.0.get(self.1) {
                    Some(b'"') => {
                        self.1 += 1;
                        return Ok(v);
                    }
                    Some(b'\\') if matches!(self.0.get(self.1 + 1), Some(b'"' | b'\\')) => {
                        v.push(self.0[self.1 + 1]);
                        self.1 += 2;
                    }
                    Some(&c) if c != b'\r' && c != b'\n' && c != b'\\' => {
                        v.push(c);
                        self.1 += 1;
                    }
                    _ => return Err(format!("bad quoted string at byte {}", self.1)),
                }
            }
        }
        fn namespace(&mut self) -> Result<(), String> {
            if self.eat(b"NIL") {
                return Ok(());
            }
            if !self.eat(b"(") {
                return Err(format!("expected NIL or ( at byte {}", self.1));
            }
            let mut n = 0;
            while self.eat(b"(") {
                self.quoted()?;
                if !self.eat(b" ") {
                    return Err(format!("expected SP at byte {}", self.1));
                }
                if !self.eat(b"NIL") {
                    let d = self.quoted()?;
                    if d.len() != 1 {
                        return Err("hierarchy delimiter must be one character".into());
                    }
                }
                if !self.eat(b")") {
                    return Err(format!(
                        "expected ) at byte {} (extensions unexpected)",
                        self.1
                    ));
                }
                n += 1;
            }
            if n == 0 || !self.eat(b")") {
                return Err(format!("bad namespace list at byte {}", self.1));
            }
            Ok(())
        }
    }
    let mut p = P(frame, 0);
    assert!(p.eat(b"* NAMESPACE "));
    p.namespace()?;
    for _ in 0..2 {
        if !p.eat(b" ") {
            return Err(format!("expected SP at byte {}", p.1));
        }
        p.namespace()?;
    }
    if !p.eat(b"\r\n") || p.1 != frame.len() {
        return Err(format!("junk after the namespaces at byte {}", p.1));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------------

/// A plain message with bare-LF lines, a folded header and Thunderbird's favourite fields.
const M1: &[u8] = concat!(
    "From: Alice Example <alice@example.com>\n",
    "To: Bob <bob@example.com>, carol@example.org\n",
    "Cc: dave@example.net\n",
    "Subject: Quarterly\n",
    " report\n",
    "Date: Mon, 02 Mar 2020 10:00:00 +0000\n",
    "Message-ID: <m1@example.com>\n",
    "X-Priority: 1\n",
    "X-Mailer: roost-tests\n",
    "\n",
    "Hello Bob,\n",
    "the figures are attached.\n",
)
.as_bytes();

/// multipart/mixed: a multipart/alternative (quoted-printable UTF-8 text and HTML), a
/// message/rfc822, and a base64 attachment.
const M2: &[u8] = concat!(
    "From: Carol <carol@example.org>\n",
    "To: alice@example.com\n",
    "Subject: Fwd: nested\n",
    "Date: Tue, 15 Sep 2020 08:30:00 +0200\n",
    "Message-ID: <m2@example.org>\n",
    "MIME-Version: 1.0\n",
    "Content-Type: multipart/mixed; boundary=\"outer\"\n",
    "\n",
    "This is a multi-part message in MIME format.\n",
    "--outer\n",
    "Content-Type: multipart/alternative; boundary=\"inner\"\n",
    "\n",
    "--inner\n",
    "Content-Type: text/plain; charset=utf-8\n",
    "Content-Transfer-Encoding: quoted-printable\n",
    "\n",
    "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, see the forwarded message.\n",
    "--inner\n",
    "Content-Type: text/html; charset=utf-8\n",
    "\n",
    "<p>Gr&uuml;&szlig;e</p>\n",
    "--inner--\n",
    "\n",
    "--outer\n",
    "Content-Type: message/rfc822\n",
    "\n",
    "From: Dave <dave@example.net>\n",
    "To: carol@example.org\n",
    "Subject: original\n",
    "Date: Wed, 09 Sep 2020 12:00:00 +0000\n",
    "Message-ID: <orig@example.net>\n",
    "\n",
    "The original text.\n",
    "Second line.\n",
    "--outer\n",
    "Content-Type: application/octet-stream; name=\"data.bin\"\n",
    "Content-Transfer-Encoding: base64\n",
    "Content-Disposition: attachment; filename=\"data.bin\"\n",
    "\n",
    "AAECAwQFBgcICQ==\n",
    "--outer--\n",
)
.as_bytes();

/// About 200 kB: CRLF header, bare-LF body lines of varying length (so line ends fall on the
/// 64 KiB chunk borders a client asks for).
fn big_message() -> Vec<u8> {
    let mut m = b"From: Grace <grace@example.com>\r\nTo: bob@example.com\r\n\
                  Subject: big figures\r\nDate: Fri, 01 Jan 2021 09:00:00 +0000\r\n\
                  Message-ID: <m3@example.com>\r\n\r\n"
        .to_vec();
    let mut i = 0;
    while m.len() < 200_000 {
        m.extend_from_slice(format!("{i:05} {}\n", "y".repeat(i * 13 % 97)).as_bytes());
        i += 1;
    }
    m
}

/// The bytes of `message` (CRLF form) between the end of `after` and the start of `before`.
fn between(message: &[u8], after: &str, before: &str) -> Vec<u8> {
    let m = crlf(message);
    let after = crlf(after.as_bytes());
    let before = crlf(before.as_bytes());
    let start = find(&m, &after).expect("start marker") + after.len();
    let end = find(&m[start..], &before).expect("end marker") + start;
    m[start..end].to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A server with IMAP (and optionally more) whose user `plain` has M1, M2 and the big message
/// in INBOX (UIDs 1, 2, 3).
fn server_with_inbox(protocols: &[&str], extra: &str) -> TestServer {
    let server = TestServer::start(&base_config(protocols, extra));
    seed_maildir(&server.mail_root().join("plain"), &[M1, M2, &big_message()]);
    server
}

fn logged_in(server: &TestServer) -> Imap {
    let (mut c, _) = Imap::connect(server.addr("imap"));
    c.login();
    c
}

/// Delivers a message into the maildir as an MTA does: write in `tmp/`, rename into `new/`.
fn deliver(maildir: &Path, name: &str, message: &[u8]) {
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, message).unwrap();
    give_to_mail_owner(&tmp);
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

/// The stored flags a FETCH shows, sorted; `\Recent`, which says which session heard of a
/// message first rather than anything stored, is left out (tests/imap_state.rs covers it).
fn flags(attrs: &[AttributeValue<'_>]) -> Vec<String> {
    let mut f: Vec<String> = attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::Flags(f) => Some(f.iter().map(|s| s.to_string()).collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no FLAGS in {attrs:?}"));
    f.retain(|flag| flag != "\\Recent");
    f.sort();
    f
}

fn has_flags(attrs: &[AttributeValue<'_>]) -> bool {
    attrs.iter().any(|a| matches!(a, AttributeValue::Flags(_)))
}

fn uid(attrs: &[AttributeValue<'_>]) -> u32 {
    attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::Uid(u) => Some(*u),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no UID in {attrs:?}"))
}

fn modseq(attrs: &[AttributeValue<'_>]) -> u64 {
    attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::ModSeq(m) => Some(*m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no MODSEQ in {attrs:?}"))
}

fn size(attrs: &[AttributeValue<'_>]) -> u32 {
    attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::Rfc822Size(s) => Some(*s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no RFC822.SIZE in {attrs:?}"))
}

/// The data of the `n`th body section item (BODY[...]) of a FETCH response, with its origin.
fn section(attrs: &[AttributeValue<'_>], n: usize) -> (Option<u32>, Vec<u8>) {
    attrs
        .iter()
        .filter_map(|a| match a {
            AttributeValue::BodySection { index, data, .. } => Some((
                *index,
                data.as_deref().map(<[u8]>::to_vec).expect("NIL section"),
            )),
            _ => None,
        })
        .nth(n)
        .unwrap_or_else(|| panic!("no body section #{n} in {attrs:?}"))
}

/// The section the `n`th body section item of a FETCH response names.
fn section_path(attrs: &[AttributeValue<'_>], n: usize) -> Option<SectionPath> {
    attrs
        .iter()
        .filter_map(|a| match a {
            AttributeValue::BodySection { section, .. } => Some(section),
            _ => None,
        })
        .nth(n)
        .and_then(|s| {
            s.as_ref().map(|s| match s {
                SectionPath::Full(m) => SectionPath::Full(copy_section(m)),
                SectionPath::Part(p, m) => {
                    SectionPath::Part(p.clone(), m.as_ref().map(copy_section))
                }
            })
        })
}

fn copy_section(m: &MessageSection) -> MessageSection {
    match m {
        MessageSection::Header => MessageSection::Header,
        MessageSection::Mime => MessageSection::Mime,
        MessageSection::Text => MessageSection::Text,
    }
}

/// `imap-proto`'s form of a section spec such as `2.HEADER` or `1.1`.
fn expected_path(spec: &str) -> SectionPath {
    let text = |t: &str| match t {
        "HEADER" => MessageSection::Header,
        "TEXT" => MessageSection::Text,
        "MIME" => MessageSection::Mime,
        other => panic!("{other}"),
    };
    let mut parts = Vec::new();
    let mut last = None;
    for piece in spec.split('.') {
        match piece.parse::<u32>() {
            Ok(n) => parts.push(n),
            Err(_) => last = Some(text(piece)),
        }
    }
    if parts.is_empty() {
        SectionPath::Full(last.unwrap())
    } else {
        SectionPath::Part(parts, last)
    }
}

fn body_structure<'a>(attrs: &'a [AttributeValue<'static>]) -> &'a BodyStructure<'static> {
    attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::BodyStructure(b) => Some(b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no BODYSTRUCTURE in {attrs:?}"))
}

fn text_of(cow: &Option<Cow<'_, [u8]>>) -> String {
    String::from_utf8_lossy(cow.as_deref().unwrap_or(b"NIL")).into_owned()
}

fn param<'a>(params: &'a Option<Vec<(Cow<'_, str>, Cow<'a, str>)>>, name: &str) -> Option<&'a str> {
    params
        .as_ref()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

fn status_value(items: &[StatusAttribute], want: &str) -> u64 {
    items
        .iter()
        .find_map(|s| match (s, want) {
            (StatusAttribute::Messages(n), "MESSAGES") => Some(u64::from(*n)),
            (StatusAttribute::Recent(n), "RECENT") => Some(u64::from(*n)),
            (StatusAttribute::UidNext(n), "UIDNEXT") => Some(u64::from(*n)),
            (StatusAttribute::UidValidity(n), "UIDVALIDITY") => Some(u64::from(*n)),
            (StatusAttribute::Unseen(n), "UNSEEN") => Some(u64::from(*n)),
            (StatusAttribute::HighestModSeq(n), "HIGHESTMODSEQ") => Some(*n),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {want} in {items:?}"))
}

fn uid_members(set: &[UidSetMember]) -> Vec<u32> {
    set.iter()
        .flat_map(|m| match m {
            UidSetMember::Uid(u) => vec![*u],
            UidSetMember::UidRange(r) => r.clone().collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const ADVERTISED: &str = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CONDSTORE";

/// Every capability of [`ADVERTISED`] is there (more may follow as the server grows).
fn assert_advertised(names: &[String]) {
    for cap in ADVERTISED.split(' ') {
        assert!(
            names.iter().any(|n| n == cap),
            "{cap} missing from {names:?}"
        );
    }
}

fn capability_names(caps: &[Capability<'_>]) -> Vec<String> {
    caps.iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4rev1".to_string(),
            Capability::Auth(a) => format!("AUTH={a}"),
            Capability::Atom(a) => a.to_string(),
        })
        .collect()
}

#[test]
fn greeting_capabilities_namespace_id_enable_and_logout_parse_strictly() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let (mut c, greeting) = Imap::connect(server.addr("imap"));
    match &greeting.parsed {
        Some(Response::Data {
            status: Status::Ok,
            outcome,
        }) => match &outcome.code {
            Some(ResponseCode::Capabilities(caps)) => {
                let names = capability_names(caps);
                assert!(names.contains(&"STARTTLS".to_string()), "{names:?}");
                assert!(names.contains(&"AUTH=PLAIN".to_string()), "{names:?}");
            }
            other => panic!("greeting without CAPABILITY code: {other:?}"),
        },
        other => panic!("greeting: {other:?}"),
    }
    let pre = c.ok("CAPABILITY");
    assert!(
        pre.untagged_text().contains("STARTTLS"),
        "{}",
        pre.untagged_text()
    );
    // Commands that need a login are refused clearly before it.
    let r = c.bad("SELECT INBOX");
    assert!(r.text.contains("not allowed before login"), "{}", r.text);
    c.ok("NOOP");

    let login = c.login();
    match &login.code {
        Some(ResponseCode::Capabilities(caps)) => assert_advertised(&capability_names(caps)),
        other => panic!("LOGIN OK without CAPABILITY: {other:?}"),
    }
    let caps = c.ok("CAPABILITY");
    let listed: Vec<String> = caps
        .parsed()
        .filter_map(|r| match r {
            Response::Capabilities(c) => Some(capability_names(c)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_advertised(&listed);

    let ns = c.ok("NAMESPACE");
    assert_eq!(ns.untagged.len(), 1);
    assert_eq!(
        ns.untagged[0].raw,
        b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );

    let id = c.ok("ID (\"name\" \"imap-proto test\" \"version\" \"1\")");
    let server_id = id
        .parsed()
        .find_map(|r| match r {
            Response::Id(Some(map)) => Some(map.clone()),
            _ => None,
        })
        .expect("an ID response with fields");
    assert_eq!(server_id.get("name").map(|v| v.as_ref()), Some("roost"));
    c.ok("ID NIL");

    let en = c.ok("ENABLE CONDSTORE");
    let enabled: Vec<String> = en
        .parsed()
        .filter_map(|r| match r {
            Response::Capabilities(c) => Some(capability_names(c)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(enabled, ["CONDSTORE"]);
    c.ok("CHECK");
    c.ok("NOOP");
    let bye = c.ok("LOGOUT");
    assert!(
        bye.parsed().any(|r| matches!(
            r,
            Response::Data {
                status: Status::Bye,
                ..
            }
        )),
        "LOGOUT without BYE"
    );
}

#[test]
fn starttls_and_imaps_sessions_parse_strictly_and_fetch_byte_exactly() {
    let server = server_with_inbox(&["imap", "imaps"], "");
    let (mut plain, _) = Imap::connect(server.addr("imap"));
    plain.starttls();
    let caps = plain.ok("CAPABILITY").untagged_text();
    assert!(!caps.contains("STARTTLS"), "{caps}");
    let (implicit, _) = Imap::connect_tls(server.addr("imaps"));
    for mut c in [plain, implicit] {
        c.login();
        let sel = c.select("INBOX");
        assert_eq!(sel.exists(), [3]);
        let a = c.fetch_one("UID FETCH 2 (UID RFC822.SIZE BODY.PEEK[])");
        assert_eq!(section(&a, 0).1, crlf(M2));
        assert_eq!(size(&a) as usize, crlf(M2).len());
        let big = c.fetch_one("FETCH 3 BODY.PEEK[]");
        assert_eq!(section(&big, 0).1, crlf(&big_message()));
        c.ok("LOGOUT");
    }
}

#[test]
fn select_and_examine_report_the_mailbox_and_examine_is_read_only() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    let sel = c.select("INBOX");
    let validity = maildir_uidvalidity(&server.mail_root().join("plain"));
    assert_eq!(sel.exists(), [3]);
    assert!(sel.untagged_text().contains("* 3 RECENT\r\n"));
    let flags_line: Vec<Vec<String>> = sel
        .parsed()
        .filter_map(|r| match r {
            Response::MailboxData(MailboxDatum::Flags(f)) => {
                Some(f.iter().map(|s| s.to_string()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(flags_line.len(), 1);
    for f in ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"] {
        assert!(flags_line[0].contains(&f.to_string()), "{flags_line:?}");
    }
    let codes = sel.untagged_codes();
    let mut seen = 0;
    for code in &codes {
        match code {
            ResponseCode::UidValidity(v) => {
                assert_eq!(*v, validity);
                seen |= 1;
            }
            ResponseCode::UidNext(n) => {
                assert_eq!(*n, 4);
                seen |= 2;
            }
            ResponseCode::PermanentFlags(p) => {
                for f in [
                    "\\Answered",
                    "\\Flagged",
                    "\\Deleted",
                    "\\Seen",
                    "\\Draft",
                    "\\*",
                ] {
                    assert!(p.iter().any(|x| x == f), "{p:?}");
                }
                seen |= 4;
            }
            ResponseCode::HighestModSeq(m) => {
                assert!(*m >= 1);
                seen |= 8;
            }
            ResponseCode::Unseen(n) => {
                assert_eq!(*n, 1);
                seen |= 16;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 31, "SELECT lacks a response code: {codes:?}");
    assert_eq!(sel.code, Some(ResponseCode::ReadWrite));

    // EXAMINE: READ-ONLY, no permanent flags, and nothing may change.
    let ex = c.ok("EXAMINE INBOX");
    assert_eq!(ex.code, Some(ResponseCode::ReadOnly));
    assert_eq!(ex.exists(), [3]);
    let permanent: Vec<&ResponseCode<'_>> = ex
        .untagged_codes()
        .into_iter()
        .filter(|c| matches!(c, ResponseCode::PermanentFlags(_)))
        .collect();
    assert_eq!(permanent, [&ResponseCode::PermanentFlags(vec![])]);
    let st = c.no("STORE 1 +FLAGS (\\Flagged)");
    assert!(st.text.contains("read-only"), "{}", st.text);
    assert!(
        shown(&st.tagged_raw).contains(" NO [READ-ONLY] "),
        "{}",
        shown(&st.tagged_raw)
    );
    c.no("EXPUNGE");
    c.no("MOVE 1 Trash");
    // Reading a message in a read-only mailbox does not set \Seen.
    let a = c.fetch_one("FETCH 1 (BODY[TEXT])");
    assert!(!has_flags(&a), "no FLAGS change in EXAMINE: {a:?}");
    let a = c.fetch_one("FETCH 1 FLAGS");
    assert_eq!(flags(&a), Vec::<String>::new());
    c.ok("CLOSE");

    // SELECT of a folder that doesn't exist.
    let r = c.no("SELECT Nowhere");
    assert!(
        r.tagged_raw.windows(13).any(|w| w == b"[NONEXISTENT]"),
        "{}",
        shown(&r.tagged_raw)
    );
    c.ok("NOOP");
}

#[test]
fn list_and_lsub_follow_patterns_children_subscriptions_and_special_use() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    for name in [
        "Projects",
        "Projects/2024",
        "Projects/2024/Q1",
        "Projects/Notes",
        "Recipes",
    ] {
        c.ok(&format!("CREATE {name}"));
    }
    let all = c.ok("LIST \"\" *");
    assert_eq!(
        all.names(),
        [
            "Archive",
            "Drafts",
            "INBOX",
            "Junk",
            "Projects",
            "Projects/2024",
            "Projects/2024/Q1",
            "Projects/Notes",
            "Recipes",
            "Sent",
            "Trash"
        ]
    );
    assert!(all.untagged_text().lines().all(|l| l.contains(" \"/\" ")));
    let attrs = |r: &Reply, name: &str| -> Vec<String> {
        r.mailboxes()
            .into_iter()
            .find(|(_, n)| n == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
            .0
    };
    assert!(attrs(&all, "Projects").contains(&"\\HasChildren".into()));
    assert!(attrs(&all, "Projects/2024").contains(&"\\HasChildren".into()));
    assert!(attrs(&all, "Projects/Notes").contains(&"\\HasNoChildren".into()));
    assert!(attrs(&all, "INBOX").contains(&"\\HasNoChildren".into()));
    for (name, special) in [
        ("Drafts", "\\Drafts"),
        ("Sent", "\\Sent"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        let a = attrs(&all, name);
        assert!(a.contains(&special.to_string()), "{name}: {a:?}");
    }
    assert!(!attrs(&all, "Recipes").iter().any(|a| a == "\\Sent"));

    assert_eq!(
        c.ok("LIST \"\" %").names(),
        ["Archive", "Drafts", "INBOX", "Junk", "Projects", "Recipes", "Sent", "Trash"]
    );
    assert_eq!(
        c.ok("LIST \"\" Projects/%").names(),
        ["Projects/2024", "Projects/Notes"]
    );
    assert_eq!(
        c.ok("LIST Projects/ %").names(),
        ["Projects/2024", "Projects/Notes"]
    );
    assert_eq!(
        c.ok("LIST \"\" Proj*").names(),
        [
            "Projects",
            "Projects/2024",
            "Projects/2024/Q1",
            "Projects/Notes"
        ]
    );
    assert_eq!(c.ok("LIST \"\" */Q1").names(), ["Projects/2024/Q1"]);
    assert_eq!(c.ok("LIST \"\" inbox").names(), ["INBOX"]);
    assert_eq!(c.ok("LIST \"\" Nothing*").names(), Vec::<String>::new());
    // The empty pattern asks for the hierarchy delimiter.
    let delim = c.ok("LIST \"\" \"\"");
    assert_eq!(delim.untagged_text(), "* LIST (\\Noselect) \"/\" \"\"\r\n");

    let lsub = c.ok("LSUB \"\" *");
    assert_eq!(
        lsub.names(),
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    c.ok("SUBSCRIBE Recipes");
    c.ok("UNSUBSCRIBE Sent");
    assert_eq!(
        c.ok("LSUB \"\" *").names(),
        ["Archive", "Drafts", "INBOX", "Junk", "Recipes", "Trash"]
    );
    c.ok("UNSUBSCRIBE Recipes");
    c.ok("SUBSCRIBE Sent");
    assert_eq!(
        c.ok("LSUB \"\" *").names(),
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
}

/// RFC 3501 6.3.9: LSUB returns subscribed names; only for `%` does an unsubscribed parent of a
/// subscribed child appear (flagged \Noselect).
#[test]
fn lsub_lists_only_subscribed_names_except_noselect_parents_for_percent() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    c.ok("CREATE Projects");
    c.ok("CREATE Projects/Notes");
    c.ok("SUBSCRIBE Projects/Notes");
    assert_eq!(
        c.ok("LSUB \"\" *").names(),
        [
            "Archive",
            "Drafts",
            "INBOX",
            "Junk",
            "Projects/Notes",
            "Sent",
            "Trash"
        ],
        "{}",
        c.recent()
    );
    let top = c.ok("LSUB \"\" %");
    let projects: Vec<(Vec<String>, String)> = top
        .mailboxes()
        .into_iter()
        .filter(|(_, n)| n.starts_with("Projects"))
        .collect();
    assert_eq!(
        projects,
        [(vec!["\\Noselect".to_string()], "Projects".to_string())],
        "{}",
        c.recent()
    );
}

#[test]
fn create_delete_rename_status_and_the_inbox_rename_rule() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    let r = c.no("CREATE Drafts");
    assert!(
        shown(&r.tagged_raw).contains("[ALREADYEXISTS]"),
        "{}",
        shown(&r.tagged_raw)
    );
    c.no("CREATE INBOX");
    c.ok("CREATE Work/");
    assert_eq!(c.ok("LIST \"\" Work").names(), ["Work"]);

    let st = c.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)");
    let items = st.status_items();
    assert_eq!(status_value(&items, "MESSAGES"), 3);
    assert_eq!(status_value(&items, "RECENT"), 3);
    assert_eq!(status_value(&items, "UIDNEXT"), 4);
    let validity = maildir_uidvalidity(&server.mail_root().join("plain"));
    assert_eq!(status_value(&items, "UIDVALIDITY"), u64::from(validity));
    assert_eq!(status_value(&items, "UNSEEN"), 3);
    assert!(status_value(&items, "HIGHESTMODSEQ") >= 1);
    let st = c.ok("STATUS Work (MESSAGES UIDNEXT)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 0);
    assert_eq!(status_value(&st.status_items(), "UIDNEXT"), 1);
    c.no("STATUS Nowhere (MESSAGES)");

    // RENAME takes the children along.
    c.ok("CREATE Old");
    c.ok("CREATE Old/Child");
    c.ok("RENAME Old New");
    assert_eq!(c.ok("LIST \"\" New*").names(), ["New", "New/Child"]);
    assert_eq!(c.ok("LIST \"\" Old*").names(), Vec::<String>::new());
    let r = c.no("RENAME New Work");
    assert!(
        shown(&r.tagged_raw).contains("[ALREADYEXISTS]"),
        "{}",
        shown(&r.tagged_raw)
    );
    let r = c.no("RENAME Nowhere Elsewhere");
    assert!(
        shown(&r.tagged_raw).contains("[NONEXISTENT]"),
        "{}",
        shown(&r.tagged_raw)
    );

    // RENAME INBOX moves its messages into the new folder; INBOX stays, empty.
    c.ok("RENAME INBOX Moved");
    let st = c.ok("STATUS Moved (MESSAGES)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 3);
    let st = c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 0);
    assert!(c.ok("LIST \"\" %").names().contains(&"INBOX".to_string()));
    assert_eq!(c.select("INBOX").exists(), [0]);
    assert_eq!(c.select("Moved").exists(), [3]);
    let a = c.fetch_one("FETCH 2 BODY.PEEK[]");
    assert_eq!(section(&a, 0).1, crlf(M2));

    // DELETE: never INBOX; children first; the selected mailbox is closed.
    let r = c.no("DELETE INBOX");
    assert!(
        shown(&r.tagged_raw).contains("[CANNOT]"),
        "{}",
        shown(&r.tagged_raw)
    );
    c.ok("DELETE New/Child");
    c.ok("DELETE New");
    assert_eq!(c.ok("LIST \"\" New*").names(), Vec::<String>::new());
    c.no("DELETE Nowhere");
    c.select("Work");
    let del = c.ok("DELETE Work");
    assert!(
        del.untagged_text().contains("[CLOSED]"),
        "{}",
        del.untagged_text()
    );
    let r = c.bad("FETCH 1 FLAGS");
    assert!(r.text.contains("No mailbox selected"), "{}", r.text);
    assert_eq!(c.ok("LIST \"\" Work").names(), Vec::<String>::new());
}

#[test]
fn append_with_flags_date_literal_plus_and_appenduid() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let validity = status_value(
        &c.ok("STATUS Drafts (UIDVALIDITY)").status_items(),
        "UIDVALIDITY",
    );
    let first = b"From: me@example.com\r\nSubject: draft one\r\n\r\nStill thinking.\r\n";
    let r = c.cmd_literals(&[
        Part::Text("APPEND Drafts (\\Draft \\Seen $Label1) \"05-Feb-2019 14:30:00 +0100\" "),
        Part::Literal(first),
    ]);
    r.assert_status(Status::Ok, &c);
    match &r.code {
        Some(ResponseCode::AppendUid(v, uids)) => {
            assert_eq!(u64::from(*v), validity);
            assert_eq!(uid_members(uids), [1]);
        }
        other => panic!("APPEND without APPENDUID: {other:?}"),
    }
    let second = b"From: me@example.com\r\nSubject: draft two\r\n\r\nNon-synchronizing.\r\n";
    let r = c.cmd_literals(&[Part::Text("APPEND Drafts "), Part::LiteralPlus(second)]);
    r.assert_status(Status::Ok, &c);
    assert!(matches!(&r.code, Some(ResponseCode::AppendUid(_, u)) if uid_members(u) == [2]));
    let r = c.cmd_literals(&[Part::Text("APPEND Nowhere "), Part::Literal(first)]);
    r.assert_status(Status::No, &c);
    assert_eq!(r.code, Some(ResponseCode::TryCreate));

    let st = c.ok("STATUS Drafts (MESSAGES UNSEEN UIDNEXT)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 2);
    assert_eq!(status_value(&st.status_items(), "UNSEEN"), 1);
    assert_eq!(status_value(&st.status_items(), "UIDNEXT"), 3);
    let sel = c.select("Drafts");
    assert_eq!(sel.exists(), [2]);
    assert!(
        sel.untagged_text().contains("$Label1"),
        "keywords in use are announced"
    );
    let a = c.fetch_one("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
    assert_eq!(flags(&a), ["$Label1", "\\Draft", "\\Seen"]);
    assert_eq!(size(&a) as usize, first.len());
    assert_eq!(section(&a, 0).1, first);
    let date = internal_date(&a);
    assert_eq!(
        date.timestamp(),
        chrono::DateTime::parse_from_rfc3339("2019-02-05T13:30:00Z")
            .unwrap()
            .timestamp()
    );
    let a = c.fetch_one("FETCH 2 (FLAGS INTERNALDATE BODY.PEEK[])");
    assert_eq!(flags(&a), Vec::<String>::new());
    assert_eq!(section(&a, 0).1, second);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let age = now - internal_date(&a).timestamp();
    assert!(
        (0..600).contains(&age),
        "INTERNALDATE of an APPEND without date is now: {age}"
    );
}

fn internal_date(attrs: &[AttributeValue<'_>]) -> chrono::DateTime<chrono::FixedOffset> {
    let text = attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::InternalDate(d) => Some(d.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no INTERNALDATE in {attrs:?}"));
    chrono::DateTime::parse_from_str(&text, "%d-%b-%Y %H:%M:%S %z")
        .unwrap_or_else(|e| panic!("INTERNALDATE {text:?}: {e}"))
}

/// The header lines named (in the message's order, continuations kept) and the blank line.
fn header_fields_of(message: &[u8], names: &[&str], not: bool) -> Vec<u8> {
    let m = crlf(message);
    let end = find(&m, b"\r\n\r\n").unwrap() + 2;
    let mut out = Vec::new();
    let mut keep = false;
    for line in m[..end].split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = String::from_utf8_lossy(line.split(|&b| b == b':').next().unwrap());
            keep = names.iter().any(|n| n.eq_ignore_ascii_case(name.trim())) != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn fetch_returns_every_item_of_plain_and_nested_messages() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    c.select("INBOX");

    // The cheap items and ENVELOPE.
    let a = c.fetch_one("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)");
    assert_eq!(uid(&a), 1);
    assert_eq!(flags(&a), Vec::<String>::new());
    internal_date(&a);
    assert_eq!(
        size(&a) as usize,
        crlf(M1).len(),
        "RFC822.SIZE counts CRLF line ends"
    );
    let env = a
        .iter()
        .find_map(|x| match x {
            AttributeValue::Envelope(e) => Some(e),
            _ => None,
        })
        .expect("ENVELOPE");
    assert_eq!(text_of(&env.date), "Mon, 02 Mar 2020 10:00:00 +0000");
    assert_eq!(text_of(&env.subject), "Quarterly report");
    let addrs = |list: &Option<Vec<imap_proto::Address<'_>>>| -> Vec<String> {
        list.as_ref()
            .map(|l| {
                l.iter()
                    .map(|a| {
                        format!(
                            "{}|{}@{}",
                            text_of(&a.name),
                            text_of(&a.mailbox),
                            text_of(&a.host)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(addrs(&env.from), ["Alice Example|alice@example.com"]);
    assert_eq!(
        addrs(&env.sender),
        addrs(&env.from),
        "sender defaults to from"
    );
    assert_eq!(
        addrs(&env.reply_to),
        addrs(&env.from),
        "reply-to defaults to from"
    );
    assert_eq!(
        addrs(&env.to),
        ["Bob|bob@example.com", "NIL|carol@example.org"]
    );
    assert_eq!(addrs(&env.cc), ["NIL|dave@example.net"]);
    assert!(env.bcc.is_none());
    assert!(env.in_reply_to.is_none());
    assert_eq!(text_of(&env.message_id), "<m1@example.com>");

    // BODYSTRUCTURE of a plain text message.
    let a = c.fetch_one("FETCH 1 BODYSTRUCTURE");
    let m1_body = &crlf(M1)[find(&crlf(M1), b"\r\n\r\n").unwrap() + 4..];
    match body_structure(&a) {
        BodyStructure::Text {
            common,
            other,
            lines,
            ..
        } => {
            assert!(common.ty.ty.eq_ignore_ascii_case("text"));
            assert!(common.ty.subtype.eq_ignore_ascii_case("plain"));
            assert_eq!(other.octets as usize, m1_body.len());
            assert_eq!(*lines, 2);
            assert_eq!(other.transfer_encoding, ContentEncoding::SevenBit);
        }
        other => panic!("M1 is text/plain: {other:?}"),
    }

    // Every section of the nested message, and BODYSTRUCTURE's sizes agree with them.
    let sections = [
        ("HEADER", crlf(M2)[..find(&crlf(M2), b"\r\n\r\n").unwrap() + 4].to_vec()),
        ("TEXT", crlf(M2)[find(&crlf(M2), b"\r\n\r\n").unwrap() + 4..].to_vec()),
        (
            "1",
            between(
                M2,
                "boundary=\"inner\"\n\n",
                "\n--outer\nContent-Type: message/rfc822",
            ),
        ),
        (
            "1.1",
            between(M2, "quoted-printable\n\n", "\n--inner\n"),
        ),
        ("1.2", between(M2, "text/html; charset=utf-8\n\n", "\n--inner--")),
        (
            "1.MIME",
            b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n".to_vec(),
        ),
        (
            "1.1.MIME",
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                .to_vec(),
        ),
        (
            "2",
            between(M2, "message/rfc822\n\n", "\n--outer\nContent-Type: application"),
        ),
        ("2.MIME", b"Content-Type: message/rfc822\r\n\r\n".to_vec()),
        (
            "2.HEADER",
            between(M2, "message/rfc822\n\n", "The original text."),
        ),
        ("2.TEXT", b"The original text.\r\nSecond line.".to_vec()),
        ("2.1", b"The original text.\r\nSecond line.".to_vec()),
        ("3", b"AAECAwQFBgcICQ==".to_vec()),
        (
            "3.MIME",
            b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
              Content-Transfer-Encoding: base64\r\n\
              Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n"
                .to_vec(),
        ),
    ];
    let mut got = std::collections::HashMap::new();
    for (name, expected) in &sections {
        let a = c.fetch_one(&format!("FETCH 2 BODY.PEEK[{name}]"));
        let (origin, data) = section(&a, 0);
        assert_eq!(origin, None);
        assert_eq!(
            String::from_utf8_lossy(&data),
            String::from_utf8_lossy(expected),
            "BODY[{name}]"
        );
        got.insert(*name, data);
    }
    // All of them in one FETCH: the same bytes, in the order asked.
    let names: Vec<&str> = sections.iter().map(|(n, _)| *n).collect();
    let items: Vec<String> = names.iter().map(|n| format!("BODY.PEEK[{n}]")).collect();
    let a = c.fetch_one(&format!("FETCH 2 ({})", items.join(" ")));
    for (i, (name, expected)) in sections.iter().enumerate() {
        assert_eq!(
            &section(&a, i).1,
            expected,
            "BODY[{name}] in a combined FETCH"
        );
        assert_eq!(
            section_path(&a, i),
            Some(expected_path(name)),
            "section echoed for {name}"
        );
    }
    let a = c.fetch_one("FETCH 2 BODYSTRUCTURE");
    let BodyStructure::Multipart { common, bodies, .. } = body_structure(&a) else {
        panic!("M2 is multipart: {a:?}")
    };
    assert!(common.ty.subtype.eq_ignore_ascii_case("mixed"));
    assert_eq!(param(&common.ty.params, "boundary"), Some("outer"));
    assert_eq!(bodies.len(), 3, "mixed has 3 parts");
    let BodyStructure::Multipart {
        common: alt,
        bodies: alternatives,
        ..
    } = &bodies[0]
    else {
        panic!("part 1 is multipart/alternative: {:?}", bodies[0])
    };
    assert!(alt.ty.subtype.eq_ignore_ascii_case("alternative"));
    assert_eq!(alternatives.len(), 2);
    match &alternatives[0] {
        BodyStructure::Text { common, other, .. } => {
            assert!(common.ty.subtype.eq_ignore_ascii_case("plain"));
            assert_eq!(
                param(&common.ty.params, "charset").map(str::to_ascii_lowercase),
                Some("utf-8".into())
            );
            assert_eq!(other.transfer_encoding, ContentEncoding::QuotedPrintable);
            assert_eq!(other.octets as usize, got["1.1"].len());
        }
        other => panic!("1.1 is text/plain: {other:?}"),
    }
    match &alternatives[1] {
        BodyStructure::Text { common, other, .. } => {
            assert!(common.ty.subtype.eq_ignore_ascii_case("html"));
            assert_eq!(other.octets as usize, got["1.2"].len());
        }
        other => panic!("1.2 is text/html: {other:?}"),
    }
    match &bodies[1] {
        BodyStructure::Message {
            common,
            other,
            envelope,
            body,
            lines,
            ..
        } => {
            assert!(common.ty.ty.eq_ignore_ascii_case("message"));
            assert!(common.ty.subtype.eq_ignore_ascii_case("rfc822"));
            assert_eq!(other.octets as usize, got["2"].len());
            let lf = got["2"].iter().filter(|&&b| b == b'\n').count() as u32;
            assert!(
                *lines == lf || *lines == lf + 1,
                "lines {lines} of {lf} LFs"
            );
            assert_eq!(text_of(&envelope.subject), "original");
            assert_eq!(text_of(&envelope.message_id), "<orig@example.net>");
            match body.as_ref() {
                BodyStructure::Text { other, .. } => {
                    assert_eq!(other.octets as usize, got["2.TEXT"].len())
                }
                other => panic!("the attached message is text: {other:?}"),
            }
        }
        other => panic!("part 2 is message/rfc822: {other:?}"),
    }
    match &bodies[2] {
        BodyStructure::Basic { common, other, .. } => {
            assert!(common.ty.ty.eq_ignore_ascii_case("application"));
            assert!(common.ty.subtype.eq_ignore_ascii_case("octet-stream"));
            assert_eq!(param(&common.ty.params, "name"), Some("data.bin"));
            assert_eq!(other.transfer_encoding, ContentEncoding::Base64);
            assert_eq!(other.octets, 16);
            let disposition = common.disposition.as_ref().expect("Content-Disposition");
            assert!(disposition.ty.eq_ignore_ascii_case("attachment"));
            assert_eq!(param(&disposition.params, "filename"), Some("data.bin"));
        }
        other => panic!("part 3 is application/octet-stream: {other:?}"),
    }
    // BODY: the same tree without extension data (checked while parsing).
    let a = c.fetch_one("FETCH 2 BODY");
    let raw = c
        .transcript
        .iter()
        .rev()
        .find(|l| l.contains(" FETCH ("))
        .unwrap()
        .clone();
    assert!(raw.contains(" FETCH (BODY ("), "{raw}");
    match body_structure(&a) {
        BodyStructure::Multipart { bodies, .. } => assert_eq!(bodies.len(), 3),
        other => panic!("BODY of M2: {other:?}"),
    }

    // HEADER.FIELDS and .NOT on a folded header.
    let a = c.fetch_one("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)] BODY.PEEK[HEADER.FIELDS.NOT (Subject X-Mailer X-Priority)])");
    assert_eq!(
        String::from_utf8_lossy(&section(&a, 0).1),
        String::from_utf8_lossy(&header_fields_of(M1, &["Subject", "From"], false))
    );
    assert_eq!(
        String::from_utf8_lossy(&section(&a, 1).1),
        String::from_utf8_lossy(&header_fields_of(
            M1,
            &["Subject", "X-Mailer", "X-Priority"],
            true
        ))
    );
    assert!(section(&a, 0)
        .1
        .ends_with(b"Subject: Quarterly\r\n report\r\n\r\n"));

    // Partial fetches: origin echoed, window clamped, empty past the end.
    let a = c.fetch_one("FETCH 1 (BODY.PEEK[]<0.20> BODY.PEEK[TEXT]<5.10> BODY.PEEK[HEADER]<0.4> BODY.PEEK[]<100000.10>)");
    assert_eq!(section(&a, 0), (Some(0), crlf(M1)[..20].to_vec()));
    assert_eq!(section(&a, 1), (Some(5), m1_body[5..15].to_vec()));
    assert_eq!(section(&a, 2), (Some(0), b"From".to_vec()));
    assert_eq!(section(&a, 3), (Some(100000), Vec::new()));
    let a = c.fetch_one("FETCH 2 BODY.PEEK[1.1]<4.1000>");
    assert_eq!(section(&a, 0), (Some(4), got["1.1"][4..].to_vec()));

    // Reading with PEEK, RFC822.HEADER and RFC822.SIZE leaves \Seen alone.
    let before = modseq(&c.fetch_one("FETCH 1 MODSEQ"));
    let a = c.fetch_one("FETCH 1 (RFC822.HEADER RFC822.SIZE)");
    assert!(!has_flags(&a));
    let header = a
        .iter()
        .find_map(|x| match x {
            AttributeValue::Rfc822Header(h) => h.as_deref().map(<[u8]>::to_vec),
            _ => None,
        })
        .expect("RFC822.HEADER");
    assert_eq!(
        header,
        crlf(M1)[..find(&crlf(M1), b"\r\n\r\n").unwrap() + 4]
    );
    assert_eq!(flags(&c.fetch_one("FETCH 1 FLAGS")), Vec::<String>::new());
    // BODY[...] without PEEK sets \Seen, and says so in the same response.
    let a = c.fetch_one("FETCH 1 BODY[TEXT]");
    assert_eq!(section(&a, 0).1, m1_body);
    assert_eq!(flags(&a), ["\\Seen"]);
    assert_eq!(flags(&c.fetch_one("FETCH 1 FLAGS")), ["\\Seen"]);
    let after = modseq(&c.fetch_one("FETCH 1 MODSEQ"));
    assert!(
        after > before,
        "MODSEQ grows with a flag change: {before} -> {after}"
    );
    // RFC822 and RFC822.TEXT are the non-PEEK forms.
    let a = c.fetch_one("FETCH 2 RFC822");
    let whole = a
        .iter()
        .find_map(|x| match x {
            AttributeValue::Rfc822(h) => h.as_deref().map(<[u8]>::to_vec),
            _ => None,
        })
        .expect("RFC822");
    assert_eq!(whole, crlf(M2));
    assert_eq!(flags(&a), ["\\Seen"]);
    let a = c.fetch_one("FETCH 3 RFC822.TEXT");
    let text = a
        .iter()
        .find_map(|x| match x {
            AttributeValue::Rfc822Text(h) => h.as_deref().map(<[u8]>::to_vec),
            _ => None,
        })
        .expect("RFC822.TEXT");
    let big = crlf(&big_message());
    assert_eq!(text, big[find(&big, b"\r\n\r\n").unwrap() + 4..]);
    assert_eq!(flags(&a), ["\\Seen"]);

    // UID and MODSEQ for all; the macros.
    let r = c.ok("FETCH 1:* (UID MODSEQ)");
    let f = r.fetches();
    assert_eq!(f.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(f.iter().map(|(_, a)| uid(a)).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(f.iter().all(|(_, a)| modseq(a) >= 1));
    let a = c.fetch_one("FETCH 1 ALL");
    assert!(a.iter().any(|x| matches!(x, AttributeValue::Envelope(_))));
    assert_eq!(size(&a) as usize, crlf(M1).len());
    internal_date(&a);
    assert_eq!(flags(&a), ["\\Seen"]);
    let a = c.fetch_one("FETCH 2 FAST");
    assert_eq!(size(&a) as usize, crlf(M2).len());
    let a = c.fetch_one("FETCH 2 FULL");
    assert!(matches!(
        body_structure(&a),
        BodyStructure::Multipart { .. }
    ));
}

#[test]
fn thunderbird_and_outlook_fetch_sequences_get_exact_bytes() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    c.select("INBOX");
    let names = [
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "Priority",
        "X-Priority",
        "References",
        "Newsgroups",
        "In-Reply-To",
        "Content-Type",
        "Reply-To",
    ];
    let r = c.ok(&format!(
        "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({})])",
        names.join(" ")
    ));
    let messages: [Vec<u8>; 3] = [M1.to_vec(), M2.to_vec(), big_message()];
    let f = r.fetches();
    assert_eq!(f.len(), 3);
    for (i, (seq, a)) in f.iter().enumerate() {
        assert_eq!(*seq as usize, i + 1);
        assert_eq!(uid(a) as usize, i + 1);
        assert_eq!(size(a) as usize, crlf(&messages[i]).len());
        assert_eq!(flags(a), Vec::<String>::new());
        assert_eq!(
            String::from_utf8_lossy(&section(a, 0).1),
            String::from_utf8_lossy(&header_fields_of(&messages[i], &names, false)),
            "message {}",
            i + 1
        );
    }

    // Thunderbird downloads a big message in 64 KiB chunks.
    let expected = crlf(&big_message());
    let mut whole = Vec::new();
    loop {
        let a = c.fetch_one(&format!(
            "UID FETCH 3 (UID RFC822.SIZE BODY.PEEK[]<{}.65536>)",
            whole.len()
        ));
        assert_eq!(size(&a) as usize, expected.len());
        let (origin, chunk) = section(&a, 0);
        assert_eq!(origin, Some(whole.len() as u32));
        let last = chunk.len() < 65536;
        whole.extend_from_slice(&chunk);
        if last {
            break;
        }
    }
    assert_eq!(whole.len(), expected.len());
    assert!(
        whole == expected,
        "the chunks reassemble the message byte for byte"
    );

    // Outlook: flags for all, then the header, then the whole message.
    let r = c.ok("UID FETCH 1:* (UID FLAGS)");
    assert_eq!(
        r.fetches().iter().map(|(_, a)| uid(a)).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (u, m) in messages.iter().enumerate() {
        let u = u + 1;
        let a = c.fetch_one(&format!("UID FETCH {u} (UID BODY.PEEK[HEADER])"));
        let m = crlf(m);
        assert_eq!(section(&a, 0).1, m[..find(&m, b"\r\n\r\n").unwrap() + 4]);
        let a = c.fetch_one(&format!("UID FETCH {u} (UID BODY.PEEK[])"));
        assert!(section(&a, 0).1 == m, "UID {u} byte for byte");
        assert!(!has_flags(&a), "PEEK changes nothing");
    }
}

#[test]
fn store_flags_keywords_silent_and_unchangedsince() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    c.select("INBOX");
    let r = c.ok("STORE 1 +FLAGS (\\Flagged $Important)");
    let f = r.fetches();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, 1);
    assert_eq!(flags(&f[0].1), ["$Important", "\\Flagged"]);
    let r = c.ok("STORE 1 -FLAGS (\\Flagged)");
    assert_eq!(flags(&r.fetches()[0].1), ["$Important"]);
    let r = c.ok("STORE 1:2 FLAGS (\\Seen \\Answered)");
    let f = r.fetches();
    assert_eq!(f.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
    for (_, a) in &f {
        assert_eq!(flags(a), ["\\Answered", "\\Seen"]);
    }
    let r = c.ok("STORE 2 +FLAGS.SILENT (\\Draft)");
    assert!(r.fetches().is_empty(), "{}", r.untagged_text());
    assert_eq!(
        flags(&c.fetch_one("FETCH 2 FLAGS")),
        ["\\Answered", "\\Draft", "\\Seen"]
    );
    let r = c.ok("UID STORE 3 +FLAGS ($Work)");
    let f = r.fetches();
    assert_eq!(uid(&f[0].1), 3);
    assert_eq!(flags(&f[0].1), ["$Work"]);
    c.bad("STORE 99 +FLAGS (\\Seen)");
    c.ok("UID STORE 99 +FLAGS (\\Seen)");
    // Keywords survive a new session, and SELECT announces them.
    let mut d = logged_in(&server);
    let sel = d.select("INBOX");
    assert!(
        sel.untagged_text().contains("$Work"),
        "{}",
        sel.untagged_text()
    );
    assert_eq!(flags(&d.fetch_one("FETCH 3 FLAGS")), ["$Work"]);
    d.ok("LOGOUT");

    // CONDSTORE: MODSEQ in every FETCH, UNCHANGEDSINCE refuses what changed.
    c.ok("ENABLE CONDSTORE");
    let m = c.ok("FETCH 1:2 MODSEQ").fetches();
    let (m1, m2) = (modseq(&m[0].1), modseq(&m[1].1));
    let limit = m1.max(m2);
    let r = c.ok("STORE 2 +FLAGS ($Changed)");
    let f = r.fetches();
    let m2_new = modseq(&f[0].1);
    assert!(m2_new > limit, "{m2_new} > {limit}");
    let r = c.ok(&format!(
        "STORE 1:2 (UNCHANGEDSINCE {limit}) +FLAGS (\\Flagged)"
    ));
    assert!(
        shown(&r.tagged_raw).contains(" OK [MODIFIED 2] "),
        "{}",
        shown(&r.tagged_raw)
    );
    let f = r.fetches();
    assert_eq!(f.len(), 1, "{}", r.untagged_text());
    assert_eq!(f[0].0, 1);
    assert!(flags(&f[0].1).contains(&"\\Flagged".to_string()));
    assert!(modseq(&f[0].1) > m2_new);
    assert!(!flags(&c.fetch_one("FETCH 2 FLAGS")).contains(&"\\Flagged".to_string()));
    let r = c.ok(&format!(
        "UID STORE 2 (UNCHANGEDSINCE {m2_new}) -FLAGS ($Changed)"
    ));
    assert!(!shown(&r.tagged_raw).contains("MODIFIED"));
    assert!(!flags(&r.fetches()[0].1).contains(&"$Changed".to_string()));
    let st = c.ok("STATUS INBOX (HIGHESTMODSEQ)");
    assert!(status_value(&st.status_items(), "HIGHESTMODSEQ") > m2_new);
}

#[test]
fn copy_move_expunge_close_and_unselect() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    let archive = status_value(
        &c.ok("STATUS Archive (UIDVALIDITY)").status_items(),
        "UIDVALIDITY",
    );
    let trash = status_value(
        &c.ok("STATUS Trash (UIDVALIDITY)").status_items(),
        "UIDVALIDITY",
    );
    c.select("INBOX");
    let r = c.ok("COPY 1:2 Archive");
    match &r.code {
        Some(ResponseCode::CopyUid(v, from, to)) => {
            assert_eq!(u64::from(*v), archive);
            assert_eq!(uid_members(from), [1, 2]);
            assert_eq!(uid_members(to), [1, 2]);
        }
        other => panic!("COPY without COPYUID: {other:?}"),
    }
    assert_eq!(
        r.fetches().len() + r.expunges().len(),
        0,
        "COPY leaves the source alone"
    );
    let r = c.no("COPY 1 Nowhere");
    assert_eq!(r.code, Some(ResponseCode::TryCreate));

    let r = c.ok("MOVE 1 Trash");
    let codes = r.untagged_codes();
    match codes.as_slice() {
        [ResponseCode::CopyUid(v, from, to)] => {
            assert_eq!(u64::from(*v), trash);
            assert_eq!(uid_members(from), [1]);
            assert_eq!(uid_members(to), [1]);
        }
        other => panic!("MOVE without one untagged COPYUID: {other:?}"),
    }
    assert_eq!(r.expunges(), [1]);
    let r = c.ok("UID MOVE 3 Trash");
    match r.untagged_codes().as_slice() {
        [ResponseCode::CopyUid(_, from, to)] => {
            assert_eq!(uid_members(from), [3]);
            assert_eq!(uid_members(to), [2]);
        }
        other => panic!("UID MOVE without COPYUID: {other:?}"),
    }
    assert_eq!(
        r.expunges(),
        [2],
        "UID 3 was message 2 after the first MOVE"
    );
    let left = c.ok("UID FETCH 1:* UID").fetches();
    assert_eq!(left.iter().map(|(_, a)| uid(a)).collect::<Vec<_>>(), [2]);
    c.select("Trash");
    let r = c.ok("FETCH 1:2 (UID BODY.PEEK[])");
    let f = r.fetches();
    assert_eq!(section(&f[0].1, 0).1, crlf(M1));
    assert!(section(&f[1].1, 0).1 == crlf(&big_message()));

    // EXPUNGE removes \Deleted messages and reports each one.
    c.select("Archive");
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(r.expunges(), [1]);
    // UID EXPUNGE removes only the UIDs named.
    let r = c.ok("COPY 1 Archive");
    assert_eq!(r.exists(), [2], "{}", r.untagged_text());
    c.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UID EXPUNGE 3");
    assert_eq!(r.expunges(), [2]);
    // UNSELECT leaves \Deleted messages; CLOSE expunges them silently.
    let r = c.ok("UNSELECT");
    assert!(r.untagged.is_empty(), "{}", r.untagged_text());
    let sel = c.select("Archive");
    assert_eq!(sel.exists(), [1]);
    let r = c.ok("CLOSE");
    assert!(
        r.untagged.is_empty(),
        "CLOSE is silent: {}",
        r.untagged_text()
    );
    c.bad("FETCH 1 FLAGS");
    let st = c.ok("STATUS Archive (MESSAGES)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 0);
    c.bad("UNSELECT");
}

#[test]
fn search_finds_by_flags_sets_sizes_dates_headers_and_text() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    let a4 = b"From: Old Timer <old@example.com>\r\nSubject: old times\r\nDate: Thu, 01 Feb 2001 12:00:00 +0000\r\n\r\nlong ago\r\n";
    let a5 = b"From: mid@example.com\r\nSubject: middle ages\r\nDate: Thu, 10 Jun 2010 12:00:00 +0000\r\nIn-Reply-To: <m1@example.com>\r\n\r\nin between\r\n";
    c.cmd_literals(&[
        Part::Text("APPEND INBOX (\\Answered) \"01-Feb-2001 12:00:00 +0000\" "),
        Part::Literal(a4),
    ])
    .assert_status(Status::Ok, &c);
    c.cmd_literals(&[
        Part::Text("APPEND INBOX ($Work) \"10-Jun-2010 12:00:00 +0000\" "),
        Part::Literal(a5),
    ])
    .assert_status(Status::Ok, &c);
    c.select("INBOX");
    c.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    c.ok("STORE 2 +FLAGS.SILENT (\\Seen)");
    let sizes: Vec<usize> = [
        M1.to_vec(),
        M2.to_vec(),
        big_message(),
        a4.to_vec(),
        a5.to_vec(),
    ]
    .iter()
    .map(|m| crlf(m).len())
    .collect();
    let mut s = |query: &str| c.ok(&format!("SEARCH {query}")).search();
    assert_eq!(s("ALL"), [1, 2, 3, 4, 5]);
    assert_eq!(s("FLAGGED"), [1]);
    assert_eq!(s("UNFLAGGED"), [2, 3, 4, 5]);
    assert_eq!(s("SEEN"), [2]);
    assert_eq!(s("UNSEEN"), [1, 3, 4, 5]);
    assert_eq!(s("ANSWERED"), [4]);
    assert_eq!(s("KEYWORD $Work"), [5]);
    assert_eq!(s("UNKEYWORD $Work"), [1, 2, 3, 4]);
    assert_eq!(s("2:4"), [2, 3, 4]);
    assert_eq!(s("4:*"), [4, 5]);
    assert_eq!(s("UID 1,5"), [1, 5]);
    assert_eq!(s("OR FLAGGED ANSWERED"), [1, 4]);
    assert_eq!(s("OR (UNSEEN FLAGGED) KEYWORD $Work"), [1, 5]);
    assert_eq!(s("NOT OR FLAGGED (OR SEEN ANSWERED)"), [3, 5]);
    assert_eq!(s("NOT NOT SEEN"), [2]);
    assert_eq!(s("LARGER 100000"), [3]);
    let limit = sizes[0];
    let smaller: Vec<u32> = (1..=5).filter(|&i| sizes[i as usize - 1] < limit).collect();
    assert_eq!(s(&format!("SMALLER {limit}")), smaller);
    let larger: Vec<u32> = (1..=5).filter(|&i| sizes[i as usize - 1] > limit).collect();
    assert_eq!(s(&format!("LARGER {limit}")), larger);
    assert_eq!(s("SINCE 1-Jan-2005"), [1, 2, 3, 5]);
    assert_eq!(s("BEFORE 1-Jan-2005"), [4]);
    assert_eq!(s("ON 1-Feb-2001"), [4]);
    assert_eq!(s("SINCE 1-Jan-2005 BEFORE 1-Jan-2011"), [5]);
    assert_eq!(s("SENTSINCE 1-Jun-2020"), [2, 3]);
    assert_eq!(s("SENTBEFORE 1-Jan-2005"), [4]);
    assert_eq!(s("SENTON 2-Mar-2020"), [1]);
    assert_eq!(s("FROM alice"), [1]);
    assert_eq!(s("FROM \"Grace\""), [3]);
    assert_eq!(s("TO carol"), [1]);
    assert_eq!(s("CC dave"), [1]);
    assert_eq!(s("SUBJECT nested"), [2]);
    assert_eq!(
        s("SUBJECT \"quarterly report\""),
        [1],
        "a folded Subject is unfolded"
    );
    assert_eq!(s("HEADER Message-ID m2@example.org"), [2]);
    assert_eq!(s("HEADER In-Reply-To <m1@example.com>"), [5]);
    assert_eq!(s("HEADER X-Priority \"\""), [1]);
    assert_eq!(s("BODY figures"), [1]);
    assert_eq!(s("TEXT figures"), [1, 3]);
    assert_eq!(s("TEXT alice"), [1, 2]);
    assert_eq!(s("BODY \"long ago\""), [4]);
    assert_eq!(s("SUBJECT no-such-thing"), Vec::<u32>::new());
    assert_eq!(s("CHARSET US-ASCII FROM alice"), [1]);
    let uids = c.ok("UID SEARCH UID 2:* FLAGGED").search();
    assert!(uids.is_empty());
    assert_eq!(c.ok("UID SEARCH UID 2:*").search(), [2, 3, 4, 5]);

    // UTF-8 in a literal, found in a quoted-printable body, case-insensitively.
    for needle in ["Köln", "GRÜßE", "grüße aus köln"] {
        let r = c.cmd_literals(&[
            Part::Text("SEARCH CHARSET UTF-8 BODY "),
            Part::Literal(needle.as_bytes()),
        ]);
        r.assert_status(Status::Ok, &c);
        assert_eq!(r.search(), [2], "BODY {needle}");
    }
    let r = c.no("SEARCH CHARSET ISO-8859-1 BODY x");
    match &r.code {
        Some(ResponseCode::BadCharset(Some(list))) => {
            assert!(
                list.iter().any(|c| c.eq_ignore_ascii_case("UTF-8")),
                "{list:?}"
            )
        }
        other => panic!("no BADCHARSET: {other:?}"),
    }
    c.ok("NOOP");
}

#[test]
fn bad_commands_get_clear_tagged_answers_and_the_session_goes_on() {
    let server = server_with_inbox(&["imap"], "[limits]\nmax_literal_bytes = 65536\n");
    let (mut c, _) = Imap::connect(server.addr("imap"));
    let r = c.bad("FETCH 1 FLAGS");
    assert!(r.text.contains("not allowed before login"), "{}", r.text);
    c.login();
    // The wrong state.
    for cmd in [
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "EXPUNGE",
        "CLOSE",
        "SEARCH ALL",
    ] {
        let r = c.bad(cmd);
        assert_eq!(r.text, "No mailbox selected.", "{cmd}");
    }
    let r = c.bad(&format!("LOGIN plain \"{PASSWORD}\""));
    assert!(r.text.contains("Already logged in"), "{}", r.text);
    c.bad("STARTTLS");
    c.ok("NOOP");
    // Malformed and unknown commands.
    let r = c.bad("XYZZY now");
    assert!(r.text.contains("Unknown command XYZZY"), "{}", r.text);
    let r = c.bad("SELECT");
    assert!(r.text.contains("SELECT"), "{}", r.text);
    c.bad("FETCH 1 (FLAGS");
    c.bad("FETCH 1:x FLAGS");
    c.bad("SEARCH BOGUSKEY");
    c.send(b"+++\r\n");
    let r = c.response();
    assert!(
        matches!(
            r.parsed,
            Some(Response::Data {
                status: Status::Bad,
                ..
            })
        ),
        "a line without a valid tag gets * BAD"
    );
    c.ok("NOOP");

    // Sequence numbers beyond the mailbox are BAD; UIDs that don't exist are just not there.
    assert_eq!(c.select("INBOX").exists(), [3]);
    let r = c.bad("FETCH 99 FLAGS");
    assert!(
        r.text.contains("Invalid message sequence number"),
        "{}",
        r.text
    );
    c.bad("FETCH 2:99 FLAGS");
    c.bad("STORE 99 +FLAGS (\\Seen)");
    c.bad("COPY 99 Trash");
    let r = c.ok("UID FETCH 99 FLAGS");
    assert!(r.untagged.is_empty(), "{}", r.untagged_text());
    let r = c.ok("UID FETCH 99:* FLAGS");
    assert_eq!(
        r.fetches().len(),
        1,
        "99:* includes the highest UID (RFC 3501 6.4.8)"
    );
    assert_eq!(flags(&c.fetch_one("FETCH 3 FLAGS")), Vec::<String>::new());
    c.ok("LOGOUT");

    // Literals over the limit are refused before the client sends them; the session goes on.
    let mut c = logged_in(&server);
    let big = vec![b'x'; 70_000];
    let r = c.cmd_literals(&[Part::Text("APPEND INBOX "), Part::Literal(&big)]);
    r.assert_status(Status::Bad, &c);
    assert!(r.text.contains("exceeds the limit of 65536"), "{}", r.text);
    c.ok("NOOP");
    // A non-synchronizing one arrives anyway: swallowed, then refused.
    let r = c.cmd_literals(&[Part::Text("APPEND INBOX "), Part::LiteralPlus(&big)]);
    r.assert_status(Status::Bad, &c);
    c.ok("NOOP");
    let small = b"Subject: fits\r\n\r\nsmall\r\n";
    c.cmd_literals(&[Part::Text("APPEND INBOX "), Part::Literal(small)])
        .assert_status(Status::Ok, &c);
    let st = c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(status_value(&st.status_items(), "MESSAGES"), 4);
    // A command line longer than the server takes.
    let r = c.bad(&format!("NOOP {}", "x".repeat(80_000)));
    assert!(r.text.contains("too long"), "{}", r.text);
    c.ok("NOOP");
    c.ok("LOGOUT");
}

/// RFC 3501 BODY: "the body of the message" includes the text of an attached message/rfc822
/// (Dovecot and Cyrus find it).
#[test]
fn search_body_finds_the_text_of_an_attached_message() {
    let server = server_with_inbox(&["imap"], "");
    let mut c = logged_in(&server);
    c.select("INBOX");
    assert_eq!(
        c.ok("SEARCH BODY \"original text\"").search(),
        [2],
        "{}",
        c.recent()
    );
    assert_eq!(
        c.ok("SEARCH TEXT \"second line\"").search(),
        [2],
        "{}",
        c.recent()
    );
}

/// Waits up to `limit` for a response `want` accepts; returns it and how long it took. A
/// failure shows the server's warnings too (IDLE falls back to polling every 5 s when it can't
/// get an inotify instance, e.g. when other processes of the mail owner's uid hold them all).
fn wait_for(
    c: &mut Imap,
    server: &TestServer,
    limit: Duration,
    what: &str,
    want: impl Fn(&Response<'static>) -> bool,
) -> (Resp, Duration) {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match c.response_within(left) {
            Some(r) if r.parsed.as_ref().is_some_and(&want) => return (r, start.elapsed()),
            Some(_) => continue,
            None => {
                let log = server.log_text();
                let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
                panic!(
                    "no {what} within {limit:?}\n{}\nserver warnings:\n{}",
                    c.recent(),
                    warnings.join("\n")
                )
            }
        }
    }
}

#[test]
fn idle_and_noop_report_deliveries_expunges_and_flag_changes_from_elsewhere() {
    let server = server_with_inbox(&["imap"], "");
    let maildir = server.mail_root().join("plain");
    let mut a = logged_in(&server);
    let mut b = logged_in(&server);
    a.select("INBOX");
    b.select("INBOX");

    // A delivery into new/ reaches the idling session within a second. The server watches
    // the folder before it says "+ idling", so the delivery may follow the "+" at once.
    let tag = a.idle();
    deliver(
        &maildir,
        "1800000000.M1P1.mta",
        b"Subject: delivered\n\nfresh\n",
    );
    let (_, took) = wait_for(&mut a, &server, Duration::from_secs(1), "* 4 EXISTS", |r| {
        matches!(r, Response::MailboxData(MailboxDatum::Exists(4)))
    });
    eprintln!("delivery seen after {took:?}");
    // An APPEND from another session.
    b.cmd_literals(&[
        Part::Text("APPEND INBOX "),
        Part::Literal(b"Subject: appended\r\n\r\nby b\r\n"),
    ])
    .assert_status(Status::Ok, &b);
    wait_for(&mut a, &server, Duration::from_secs(1), "* 5 EXISTS", |r| {
        matches!(r, Response::MailboxData(MailboxDatum::Exists(5)))
    });
    // A flag change.
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    let (r, _) = wait_for(&mut a, &server, Duration::from_secs(1), "* 1 FETCH", |r| {
        matches!(r, Response::Fetch(1, _))
    });
    let Some(Response::Fetch(_, attrs)) = r.parsed else {
        unreachable!()
    };
    assert_eq!(flags(&attrs), ["\\Flagged"]);
    // An expunge.
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(b.ok("EXPUNGE").expunges(), [2]);
    wait_for(
        &mut a,
        &server,
        Duration::from_secs(1),
        "* 2 EXPUNGE",
        |r| matches!(r, Response::Expunge(2)),
    );
    a.done(&tag);

    // Without IDLE: a non-UID FETCH must not report the expunge; NOOP does.
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    b.ok("STORE 1 +FLAGS (\\Answered)");
    let r = a.ok("FETCH 1 UID");
    assert!(r.expunges().is_empty(), "{}", r.untagged_text());
    let r = a.ok("NOOP");
    assert_eq!(r.expunges(), [1], "{}", r.untagged_text());
    let changed: Vec<(u32, Vec<String>)> =
        r.fetches().iter().map(|(n, a)| (*n, flags(a))).collect();
    assert_eq!(
        changed,
        [(1, vec!["\\Answered".to_string()])],
        "{}",
        r.untagged_text()
    );
    // Both sessions now agree.
    let ua: Vec<u32> = a
        .ok("UID FETCH 1:* UID")
        .fetches()
        .iter()
        .map(|(_, x)| uid(x))
        .collect();
    let ub: Vec<u32> = b
        .ok("UID FETCH 1:* UID")
        .fetches()
        .iter()
        .map(|(_, x)| uid(x))
        .collect();
    assert_eq!(ua, ub);
    assert_eq!(ua, [3, 4, 5]);
    // IDLE outside the selected state is allowed and ends cleanly.
    a.ok("UNSELECT");
    let tag = a.idle();
    a.done(&tag);
    a.ok("LOGOUT");
}

/// The checker is not vacuous: responses that break the grammar are rejected, good ones pass.
#[test]
fn the_strict_checker_rejects_what_the_grammar_forbids() {
    let check = |raw: &[u8]| {
        let literals = frame_end(raw).map(|(_, l)| l).unwrap_or_default();
        strict_parse(raw, &literals)
    };
    for good in [
        &b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n"[..],
        b"* 1 FETCH (BODY[] {3}\r\nabc FLAGS ())\r\n",
        b"* 1 FETCH (BODY[1.MIME]<0> {0}\r\n)\r\n",
        b"* 1 FETCH (BODY (\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1))\r\n",
        b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
        b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
        b"a1 OK [APPENDUID 7 3] done\r\n",
        b"a1 OK [MODIFIED 2,4:5] conditional\r\n",
        b"* OK [CLOSED] closed\r\n",
    ] {
        assert!(
            check(good).is_ok(),
            "{}: {:?}",
            shown(good),
            check(good).err()
        );
    }
    for bad in [
        &b"* 1 FETCH (FLAGS (\\Seen)\r\n"[..],
        b"* SEARCH 1 2 x\r\n",
        b"a1 OK done\n",
        b"* 1 FETCH (ENVELOPE (\"date\" NIL))\r\n",
        b"* LIST (\\Noselect) \"/\" Sent Extra\r\n",
        b"* LIST () \"/\" \"Gr\xc3\xbc\xc3\x9fe\"\r\n",
        b"* NAMESPACE ((\"\" \"/\")) NIL\r\n",
        b"* 1 FETCH (BODY (\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1 \"md5\" (\"inline\" NIL)))\r\n",
        b"* 1 FETCH (UID 1)) \r\n",
        b"* OK [UIDNEXT 4] fine\r\n* 2 EXISTS\r\n",
        b"* OK [UIDNEXT x] next\r\n",
        b"a1 OK [MODIFIED] conditional\r\n",
        b"a1 NO [NONEXISTENT no\r\n",
    ] {
        assert!(check(bad).is_err(), "accepted: {}", shown(bad));
    }
}

/// Many sessions idle in one folder under one uid (a user's phone, laptop and tablet, or a
/// shared virtual-mail owner): every one hears of a delivery at once. They share one inotify
/// instance per process; with one each, the kernel's default of 128 per uid would leave the
/// rest polling (the server then logs "IDLE without change notification").
#[test]
fn five_hundred_idle_connections_all_hear_of_a_delivery_within_a_second() {
    const CLIENTS: usize = 500;
    let limits = "[limits]\nmax_connections = 1000\nmax_connections_per_ip = 1000\n";
    let server = server_with_inbox(&["imap"], limits);
    let maildir = server.mail_root().join("plain");
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut c = common::LineClient::connect(server.addr("imap"));
        c.until("* OK");
        c.cmd(&format!("a LOGIN plain \"{PASSWORD}\""), "a OK");
        c.cmd("b SELECT INBOX", "b OK");
        c.cmd("c IDLE", "+ ");
        clients.push(c);
    }
    deliver(
        &maildir,
        "1800000000.M9P9.mta",
        b"Subject: to all\n\nhello\n",
    );
    let start = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        let left = Duration::from_secs(1).saturating_sub(start.elapsed());
        c.set_timeout(left.max(Duration::from_millis(1)));
        let mut line = c.line();
        while !line.is_empty() && line != "* 4 EXISTS\r\n" {
            line = c.line();
        }
        assert_eq!(
            line,
            "* 4 EXISTS\r\n",
            "connection {i} heard nothing within a second of the delivery; warnings:\n{}",
            server
                .log_text()
                .lines()
                .filter(|l| l.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        !server
            .log_text()
            .contains("IDLE without change notification"),
        "every session got change notification"
    );
}
