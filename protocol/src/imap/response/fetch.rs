//! FETCH response items (RFC 3501 7.4.2, RFC 3516 BINARY, RFC 7162 MODSEQ).
//!
//! A FETCH response may carry a body too big to build in memory: [`Literal::Streamed`] writes
//! only the literal's `{length}` and leaves the bytes to the caller, which then writes the
//! remaining items and [`push_fetch_end`]. Everything else is written whole.

use std::time::SystemTime;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::{Part, Section};

use super::date::push_internal_date;
use super::push_flag_list;
use crate::imap::strings::push_literal_header;

/// The bytes of a body item: in memory, or streamed by the caller after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal<'a> {
    /// The whole literal, written here.
    Bytes(&'a [u8]),
    /// Only `{length}\r\n` is written; the caller sends exactly that many bytes next.
    Streamed(u64),
}

/// One item of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem<'a> {
    /// `UID n`.
    Uid(u32),
    /// `FLAGS (...)`.
    Flags(&'a [&'a str]),
    /// `INTERNALDATE "dd-Mon-yyyy hh:mm:ss +0000"`.
    InternalDate(SystemTime),
    /// `RFC822.SIZE n`.
    Rfc822Size(u64),
    /// `MODSEQ (n)`.
    ModSeq(u64),
    /// `ENVELOPE (...)`, already encoded (see [`crate::imap::message::Structure::envelope`]).
    Envelope(&'a [u8]),
    /// `BODY (...)`, the non-extensible structure, already encoded.
    Body(&'a [u8]),
    /// `BODYSTRUCTURE (...)`, already encoded.
    BodyStructure(&'a [u8]),
    /// `BODY[section]<origin> literal`.
    BodySection {
        /// The section as the client named it (`None`: the whole message).
        section: Option<&'a Section<'a>>,
        /// The partial fetch's first byte, when the client asked for a range.
        origin: Option<u32>,
        /// The bytes.
        data: Literal<'a>,
    },
    /// `RFC822 literal`: the whole message.
    Rfc822(Literal<'a>),
    /// `RFC822.HEADER literal`.
    Rfc822Header(&'a [u8]),
    /// `RFC822.TEXT literal`.
    Rfc822Text(Literal<'a>),
    /// `BINARY[part]<origin> literal`, a `literal8` (`~{n}`) when it holds NUL (RFC 3516 4.2).
    Binary {
        /// The part number path.
        section: &'a [u32],
        /// The partial fetch's first byte.
        origin: Option<u32>,
        /// The decoded bytes.
        data: &'a [u8],
    },
    /// `BINARY.SIZE[part] n`.
    BinarySize {
        /// The part number path.
        section: &'a [u32],
        /// The decoded size.
        size: u64,
    },
}

/// Appends `* n FETCH (`, the start of a FETCH response.
pub fn push_fetch_start(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
}

/// Appends `)\r\n`, the end of a FETCH response.
pub fn push_fetch_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b")\r\n");
}

impl FetchItem<'_> {
    /// Appends the item (no separator before or after it).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let put = |out: &mut Vec<u8>, text: &str| out.extend_from_slice(text.as_bytes());
        match self {
            Self::Uid(uid) => put(out, &format!("UID {uid}")),
            Self::Flags(flags) => {
                put(out, "FLAGS ");
                push_flag_list(out, flags.iter().copied());
            }
            Self::InternalDate(time) => {
                put(out, "INTERNALDATE ");
                push_internal_date(out, *time);
            }
            Self::Rfc822Size(size) => put(out, &format!("RFC822.SIZE {size}")),
            Self::ModSeq(modseq) => put(out, &format!("MODSEQ ({modseq})")),
            Self::Envelope(value) => push_raw(out, "ENVELOPE ", value),
            Self::Body(value) => push_raw(out, "BODY ", value),
            Self::BodyStructure(value) => push_raw(out, "BODYSTRUCTURE ", value),
            Self::BodySection {
                section,
                origin,
                data,
            } => {
                put(
                    out,
                    &format!("BODY[{}]{} ", section_name(*section), at(*origin)),
                );
                push_body(out, *data);
            }
            Self::Rfc822(data) => {
                put(out, "RFC822 ");
                push_body(out, *data);
            }
            Self::Rfc822Header(data) => {
                put(out, "RFC822.HEADER ");
                push_body(out, Literal::Bytes(data));
            }
            Self::Rfc822Text(data) => {
                put(out, "RFC822.TEXT ");
                push_body(out, *data);
            }
            Self::Binary {
                section,
                origin,
                data,
            } => push_binary(out, section, *origin, data),
            Self::BinarySize { section, size } => {
                put(out, &format!("BINARY.SIZE[{}] {size}", dotted(section)));
            }
        }
    }
}

fn push_raw(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
}

/// A literal as the bytes are (a body section may hold any octet but NUL's own rules).
fn push_body(out: &mut Vec<u8>, data: Literal<'_>) {
    match data {
        Literal::Bytes(bytes) => {
            push_literal_header(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Literal::Streamed(len) => push_literal_header(out, len),
    }
}

fn push_binary(out: &mut Vec<u8>, section: &[u32], origin: Option<u32>, data: &[u8]) {
    out.extend_from_slice(format!("BINARY[{}]{} ", dotted(section), at(origin)).as_bytes());
    if data.contains(&0) {
        // NUL needs a literal8 (RFC 3516 4.2).
        out.push(b'~');
    }
    push_body(out, Literal::Bytes(data));
}

/// `<origin>` of a partial fetch, or nothing.
fn at(origin: Option<u32>) -> String {
    origin.map(|o| format!("<{o}>")).unwrap_or_default()
}

/// `1.2.3`.
fn dotted(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The `[...]` text of a section, as the response repeats it (field names upper-cased).
pub fn section_name(section: Option<&Section<'_>>) -> String {
    let part = |p: &Option<Part>| match p {
        Some(p) => format!("{}.", part_path(p)),
        None => String::new(),
    };
    let fields = |names: &[AString<'_>]| {
        names
            .iter()
            .map(|n| String::from_utf8_lossy(n.as_ref()).to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match section {
        None => String::new(),
        Some(Section::Part(p)) => part_path(p),
        Some(Section::Header(p)) => format!("{}HEADER", part(p)),
        Some(Section::HeaderFields(p, names)) => {
            format!("{}HEADER.FIELDS ({})", part(p), fields(names.as_ref()))
        }
        Some(Section::HeaderFieldsNot(p, names)) => {
            format!("{}HEADER.FIELDS.NOT ({})", part(p), fields(names.as_ref()))
        }
        Some(Section::Text(p)) => format!("{}TEXT", part(p)),
        Some(Section::Mime(p)) => format!("{}.MIME", part_path(p)),
    }
}

fn part_path(part: &Part) -> String {
    part.0
        .as_ref()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::Response;
    use imap_codec::imap_types::core::Vec1;
    use std::num::NonZeroU32;
    use std::time::{Duration, UNIX_EPOCH};

    fn item(item: FetchItem<'_>) -> String {
        let mut out = Vec::new();
        item.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn part(path: &[u32]) -> Part {
        let numbers: Vec<NonZeroU32> = path.iter().filter_map(|&n| NonZeroU32::new(n)).collect();
        Part(Vec1::try_from(numbers).unwrap())
    }

    #[test]
    fn simple_items_are_exact() {
        let date = UNIX_EPOCH + Duration::from_secs(1_772_445_600);
        assert_eq!(item(FetchItem::Uid(7)), "UID 7");
        assert_eq!(
            item(FetchItem::Flags(&["\\Seen", "$Label"])),
            "FLAGS (\\Seen $Label)"
        );
        assert_eq!(item(FetchItem::Flags(&[])), "FLAGS ()");
        assert_eq!(
            item(FetchItem::InternalDate(date)),
            "INTERNALDATE \"02-Mar-2026 10:00:00 +0000\""
        );
        assert_eq!(item(FetchItem::Rfc822Size(196)), "RFC822.SIZE 196");
        assert_eq!(item(FetchItem::ModSeq(17)), "MODSEQ (17)");
        assert_eq!(item(FetchItem::Envelope(b"(NIL)")), "ENVELOPE (NIL)");
        assert_eq!(item(FetchItem::Body(b"(\"text\")")), "BODY (\"text\")");
        assert_eq!(item(FetchItem::BodyStructure(b"(x)")), "BODYSTRUCTURE (x)");
        assert_eq!(
            item(FetchItem::BinarySize {
                section: &[1, 2],
                size: 10
            }),
            "BINARY.SIZE[1.2] 10"
        );
    }

    #[test]
    fn body_items_are_literals_or_stream_headers() {
        let whole = FetchItem::BodySection {
            section: None,
            origin: Some(5),
            data: Literal::Streamed(10),
        };
        assert_eq!(item(whole), "BODY[]<5> {10}\r\n");
        let fields = Section::HeaderFields(
            Some(part(&[3])),
            Vec1::try_from(vec![AString::try_from("subject").unwrap()]).unwrap(),
        );
        let header = FetchItem::BodySection {
            section: Some(&fields),
            origin: None,
            data: Literal::Bytes(b"Subject: x\r\n\r\n"),
        };
        assert_eq!(
            item(header),
            "BODY[3.HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: x\r\n\r\n"
        );
        assert_eq!(
            item(FetchItem::Rfc822(Literal::Bytes(b"abc"))),
            "RFC822 {3}\r\nabc"
        );
        assert_eq!(
            item(FetchItem::Rfc822Header(b"A: b\r\n\r\n")),
            "RFC822.HEADER {8}\r\nA: b\r\n\r\n"
        );
        assert_eq!(
            item(FetchItem::Rfc822Text(Literal::Streamed(7))),
            "RFC822.TEXT {7}\r\n"
        );
        let binary = FetchItem::Binary {
            section: &[2],
            origin: None,
            data: b"\0\x01\x02",
        };
        assert_eq!(item(binary), "BINARY[2] ~{3}\r\n\0\x01\x02");
        let partial = FetchItem::Binary {
            section: &[1],
            origin: Some(1),
            data: b"af",
        };
        assert_eq!(item(partial), "BINARY[1]<1> {2}\r\naf");
    }

    #[test]
    fn section_names_repeat_the_request() {
        let mime = Section::Mime(part(&[1, 2]));
        let text = Section::Text(None);
        let sub_text = Section::Text(Some(part(&[3])));
        let header = Section::Header(None);
        let not = Section::HeaderFieldsNot(
            None,
            Vec1::try_from(vec![AString::try_from("From").unwrap()]).unwrap(),
        );
        assert_eq!(section_name(None), "");
        assert_eq!(section_name(Some(&Section::Part(part(&[4])))), "4");
        assert_eq!(section_name(Some(&mime)), "1.2.MIME");
        assert_eq!(section_name(Some(&text)), "TEXT");
        assert_eq!(section_name(Some(&sub_text)), "3.TEXT");
        assert_eq!(section_name(Some(&header)), "HEADER");
        assert_eq!(section_name(Some(&not)), "HEADER.FIELDS.NOT (FROM)");
    }

    #[test]
    fn a_fetch_response_joins_its_items() {
        let mut out = Vec::new();
        Response::Fetch {
            seq: 1,
            items: &[
                FetchItem::Uid(5),
                FetchItem::Flags(&["\\Flagged", "\\Seen", "NewKeyword"]),
                FetchItem::ModSeq(9),
            ],
        }
        .encode(&mut out);
        assert_eq!(
            out,
            b"* 1 FETCH (UID 5 FLAGS (\\Flagged \\Seen NewKeyword) MODSEQ (9))\r\n"
        );
    }
}
