//! Reading an mbox without loading it: one pass over the lines finds each message (a `From `
//! line at the start of the file or after a blank line), its status headers, its UID, and its
//! size as clients will see it (roost's bookkeeping headers hidden, mboxrd `>From ` unquoted).

use std::collections::BTreeSet;
use std::io::{self, BufRead};

use crate::mailbox::{Flags, Uid};

/// Headers that are mbox bookkeeping, hidden from clients and rewritten by roost.
pub const HIDDEN: [&str; 7] = [
    "status:",
    "x-status:",
    "x-uid:",
    "x-keywords:",
    "x-imapbase:",
    "x-imap:",
    "content-length:",
];

/// One message's place in the file and what its headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Offset of the `From ` line.
    pub from_line: u64,
    /// Offset of the first header line.
    pub start: u64,
    /// End of the message (exclusive), before the blank line that separates it from the next.
    pub end: u64,
    /// The `From ` line itself, without its line ending.
    pub envelope: String,
    /// `X-UID:`
    pub uid: Option<Uid>,
    /// From `Status:` and `X-Status:`.
    pub flags: Flags,
    /// From `X-Keywords:`.
    pub keywords: BTreeSet<String>,
    /// Size as clients see it.
    pub size: u64,
    /// CRC of the headers other programs do not rewrite (all but the bookkeeping ones): it
    /// recognises a message that has no `X-UID` yet even after a mail reader changed its
    /// `Status:` in place and moved it.
    pub digest: u32,
    /// MODSEQ, once the folder has numbered it (0 straight from a scan).
    pub modseq: u64,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The messages in file order.
    pub messages: Vec<RawMessage>,
    /// `X-IMAPbase: UIDVALIDITY UIDNEXT` of the first message.
    pub imapbase: Option<(u32, Uid)>,
    /// The file's length.
    pub len: u64,
}

/// Whether a body line is a quoted `From ` line (`>From `, `>>From `, ...).
pub fn is_quoted_from(line: &[u8]) -> bool {
    let unquoted = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
    unquoted > 0 && line[unquoted..].starts_with(b"From ")
}

/// Whether a header line is one roost hides.
pub fn is_hidden_header(line: &[u8]) -> bool {
    let lower: Vec<u8> = line.iter().take(16).map(u8::to_ascii_lowercase).collect();
    HIDDEN.iter().any(|h| lower.starts_with(h.as_bytes()))
}

/// Scans an mbox from the start.
pub fn scan(reader: &mut impl BufRead) -> io::Result<Scan> {
    let mut out = Scan::default();
    let mut line = Vec::with_capacity(256);
    let mut offset = 0u64;
    let mut prev_blank_at: Option<u64> = Some(0);
    let mut current: Option<RawMessage> = None;
    let mut in_headers = false;
    let mut digest = crc32fast::Hasher::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            break;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.starts_with(b"From ") && prev_blank_at.is_some() {
            if let Some(done) = current.take() {
                let end = prev_blank_at.unwrap_or(offset);
                out.messages
                    .push(finish(done, end, digest.clone().finalize()));
            }
            current = Some(RawMessage::starting(offset, n, content));
            digest = crc32fast::Hasher::new();
            in_headers = true;
            prev_blank_at = None;
            offset += n;
            continue;
        }
        if let Some(msg) = current.as_mut() {
            let first = out.messages.is_empty();
            let taken = Line { content, len: n };
            in_headers = msg.take_line(taken, in_headers, first, &mut digest, &mut out.imapbase);
        }
        prev_blank_at = content.is_empty().then_some(offset);
        offset += n;
    }
    if let Some(done) = current.take() {
        // The last message ends before a trailing separator line, if there is one.
        let end = prev_blank_at.filter(|at| *at + 1 == offset || *at + 2 == offset);
        out.messages
            .push(finish(done, end.unwrap_or(offset), digest.finalize()));
    }
    out.len = offset;
    Ok(out)
}

/// One line of the file: its content without the line ending, and its length with it.
struct Line<'a> {
    content: &'a [u8],
    len: u64,
}

impl RawMessage {
    /// A message whose `From ` line (`content`, `len` bytes with its ending) is at `offset`.
    fn starting(offset: u64, len: u64, content: &[u8]) -> RawMessage {
        RawMessage {
            from_line: offset,
            start: offset + len,
            end: offset + len,
            envelope: String::from_utf8_lossy(content).into_owned(),
            uid: None,
            flags: Flags::empty(),
            keywords: BTreeSet::new(),
            size: 0,
            digest: 0,
            modseq: 0,
        }
    }

    /// Takes one line after the `From ` line: a bookkeeping header is read (and its bytes
    /// counted in `size`, the bytes clients will not see until the message is finished), any
    /// other header goes into the digest, a quoted `From ` in the body loses one `>` for
    /// clients. Returns whether the headers go on.
    fn take_line(
        &mut self,
        line: Line,
        in_headers: bool,
        first: bool,
        digest: &mut crc32fast::Hasher,
        imapbase: &mut Option<(u32, Uid)>,
    ) -> bool {
        let content = line.content;
        if in_headers && content.is_empty() {
            return false;
        }
        if in_headers && is_hidden_header(content) {
            self.size += line.len;
            read_header(self, content, first, imapbase);
        } else if in_headers {
            digest.update(content);
        } else if is_quoted_from(content) {
            self.size += 1;
        }
        in_headers
    }
}

/// Closes a message at `end`; its size becomes what clients see.
fn finish(mut msg: RawMessage, end: u64, digest: u32) -> RawMessage {
    msg.digest = digest;
    msg.end = end.max(msg.start);
    msg.size = (msg.end - msg.start).saturating_sub(msg.size);
    msg
}

fn read_header(msg: &mut RawMessage, line: &[u8], first: bool, imapbase: &mut Option<(u32, Uid)>) {
    let text = String::from_utf8_lossy(line);
    let Some((name, value)) = text.split_once(':') else {
        return;
    };
    let value = value.trim();
    match name.to_ascii_lowercase().as_str() {
        "status" if value.contains('R') => msg.flags = msg.flags.union(Flags::SEEN),
        "x-status" => {
            for (c, f) in [
                ('A', Flags::ANSWERED),
                ('F', Flags::FLAGGED),
                ('T', Flags::DRAFT),
                ('D', Flags::DELETED),
            ] {
                if value.contains(c) {
                    msg.flags = msg.flags.union(f);
                }
            }
        }
        // The first X-UID counts (roost writes its own before any other header); numbering
        // decides whether to trust it.
        "x-uid" if msg.uid.is_none() => msg.uid = value.parse().ok().filter(|u| *u > 0),
        "x-keywords" => msg.keywords.extend(
            value
                .split([' ', ','])
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        ),
        "x-imapbase" if first && imapbase.is_none() => {
            let mut parts = value.split_whitespace();
            if let (Some(v), Some(n)) = (parts.next(), parts.next()) {
                if let (Ok(v), Ok(n)) = (v.parse::<u32>(), n.parse::<Uid>()) {
                    *imapbase = (v > 0 && n > 0).then_some((v, n));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &[u8] = b"From a@b Mon Jan  1 00:00:00 2024\nX-IMAPbase: 1700000000 5\nX-UID: 3\nStatus: RO\nX-Status: AF\nSubject: one\n\nhello\n>From the past\n\nFrom c@d Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody\n\n";

    #[test]
    fn messages_flags_uids_and_sizes() {
        let scan = scan(&mut &MBOX[..]).unwrap();
        assert_eq!(scan.imapbase, Some((1700000000, 5)));
        assert_eq!(scan.messages.len(), 2);
        let one = &scan.messages[0];
        assert_eq!(one.uid, Some(3));
        assert_eq!(
            one.flags,
            Flags::SEEN.union(Flags::ANSWERED).union(Flags::FLAGGED)
        );
        assert_eq!(&MBOX[one.start as usize..one.end as usize], &b"X-IMAPbase: 1700000000 5\nX-UID: 3\nStatus: RO\nX-Status: AF\nSubject: one\n\nhello\n>From the past\n"[..]);
        assert_eq!(
            one.size,
            "Subject: one\n\nhello\nFrom the past\n".len() as u64
        );
        let two = &scan.messages[1];
        assert_eq!(
            &MBOX[two.start as usize..two.end as usize],
            b"Subject: two\n\nbody\n"
        );
        assert_eq!(two.size, 19);
        assert_eq!(two.uid, None);
    }

    #[test]
    fn from_inside_a_body_without_blank_line_is_not_a_new_message_and_garbage_does_not_panic() {
        let text = b"From x\nSubject: a\n\nline\nFrom not a separator\n";
        assert_eq!(scan(&mut &text[..]).unwrap().messages.len(), 1);
        for junk in [
            &b""[..],
            b"\n\n\n",
            b"no from line at all\n",
            b"From ",
            b"From x\n\xff\xfe\n",
        ] {
            let _ = scan(&mut &junk[..]).unwrap();
        }
    }
}
