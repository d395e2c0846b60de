//! Every response roost sends, as values with an `encode` that writes the exact bytes.
//!
//! ```text
//!   session ──► Response::Exists(3) ──► encode ──► b"* 3 EXISTS\r\n"
//!           ──► Tagged { tag, Status::No, Some(Code::TryCreate), text } ──► b"a1 NO [TRYCREATE] ...\r\n"
//! ```
//!
//! Sessions build these values and never format response lines themselves, so the wire form of
//! each response is written (and tested byte for byte) in one place.

mod code;
mod date;
mod fetch;
mod mailbox;
mod search;

pub use code::Code;
pub use date::push_internal_date;
pub use fetch::{push_fetch_end, push_fetch_start, section_name, FetchItem, Literal};
pub use mailbox::{ListAttribute, ListKind, MailboxName, StatusItem};
pub use search::{AllNumbers, ContextUpdate, Esearch};

use super::strings::push_string;
use mailbox::{push_list, push_status};

/// The three possible outcomes of a tagged command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Operational failure: the command was understood but could not be carried out.
    No,
    /// Protocol error: the command was malformed or not allowed now.
    Bad,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::No => "NO",
            Self::Bad => "BAD",
        }
    }
}

/// A tagged status response, `tag OK [code] text`: how a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged<'a> {
    /// The command's tag (`*` for a line whose tag could not be read).
    pub tag: &'a str,
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<Code<'a>>,
    /// Human-readable text.
    pub text: &'a str,
}

impl Tagged<'_> {
    /// Appends the line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} {} ", self.tag, self.status.word()).as_bytes());
        push_condition_rest(out, self.code.as_ref(), self.text);
    }
}

/// `+ text\r\n`: the server waits for more from the client (a literal, SASL data, DONE).
pub fn push_continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("+ {text}\r\n").as_bytes());
}

/// An untagged response (RFC 3501 7 and the extensions roost speaks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `* OK [code] text`.
    Ok {
        /// The response code.
        code: Option<Code<'a>>,
        /// Human-readable text.
        text: &'a str,
    },
    /// `* NO [code] text`: a warning while a command goes on (RFC 5267 NOUPDATE).
    No {
        /// The response code.
        code: Option<Code<'a>>,
        /// Human-readable text.
        text: &'a str,
    },
    /// `* BAD text`: a line that could not be read as a command (its tag included).
    Bad {
        /// Why.
        text: &'a str,
    },
    /// `* BYE [code] text`: the server closes the connection.
    Bye {
        /// The response code.
        code: Option<Code<'a>>,
        /// Why.
        text: &'a str,
    },
    /// `* CAPABILITY names`.
    Capability(&'a str),
    /// `* ENABLED names` (RFC 5161); nothing after the keyword when nothing was enabled.
    Enabled(&'a [&'a str]),
    /// `* ID ("name" "value" ...)` (RFC 2971).
    Id(&'a [(&'a str, &'a str)]),
    /// `* NAMESPACE (("" "/")) NIL NIL` (RFC 2342): one personal namespace without a prefix.
    Namespace {
        /// The hierarchy separator.
        separator: char,
    },
    /// `* LIST (attributes) "/" name` or `* LSUB ...`.
    List {
        /// LIST or LSUB.
        kind: ListKind,
        /// The name attributes.
        attributes: &'a [ListAttribute<'a>],
        /// The hierarchy separator.
        separator: char,
        /// The mailbox.
        mailbox: MailboxName<'a>,
        /// `(CHILDINFO ("SUBSCRIBED"))` after the name: a LIST with RECURSIVEMATCH names a
        /// mailbox with subscribed descendants (RFC 5258 3.5).
        subscribed_children: bool,
    },
    /// `* STATUS name (items)`.
    Status {
        /// The mailbox.
        mailbox: MailboxName<'a>,
        /// Its items, in the order asked.
        items: &'a [StatusItem],
    },
    /// `* FLAGS (flags)`.
    Flags(&'a [&'a str]),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT`.
    Recent(u32),
    /// `* n EXPUNGE`.
    Expunge(u32),
    /// `* VANISHED uids` or `* VANISHED (EARLIER) uids` (RFC 7162); UIDs ascending.
    Vanished {
        /// Reported for a client resynchronizing, not as news.
        earlier: bool,
        /// The UIDs.
        uids: &'a [u32],
    },
    /// `* SEARCH n...` with `(MODSEQ n)` when a MODSEQ key was used (RFC 7162 3.1.5).
    Search {
        /// Sequence numbers or UIDs.
        numbers: &'a [u32],
        /// The highest mod-sequence of the messages found.
        modseq: Option<u64>,
    },
    /// `* ESEARCH ...`.
    Esearch(Esearch<'a>),
    /// `* ESEARCH (TAG "a") ADDTO (...)` / `REMOVEFROM (...)` (RFC 5267 CONTEXT).
    SearchUpdate(ContextUpdate<'a>),
    /// `* SORT n...` (RFC 5256) with `(MODSEQ n)` when a MODSEQ key was used (RFC 7162 3.1.5).
    Sort {
        /// Sequence numbers or UIDs, in the sorted order.
        numbers: &'a [u32],
        /// The highest mod-sequence of the messages found.
        modseq: Option<u64>,
    },
    /// `* THREAD (...)` (RFC 5256), the thread list already written; empty for none.
    Thread(&'a str),
    /// `* QUOTAROOT mailbox root...` (RFC 9208 5.2): the quota roots a mailbox is under.
    QuotaRoot {
        /// The mailbox asked about.
        mailbox: MailboxName<'a>,
        /// Its roots (none when it has no quota).
        roots: &'a [&'a str],
    },
    /// `* QUOTA root (RESOURCE usage limit ...)` (RFC 9208 5.1).
    Quota {
        /// The quota root.
        root: &'a str,
        /// `(resource name, usage, limit)`, STORAGE in units of 1024 octets.
        resources: &'a [(&'a str, u64, u64)],
    },
    /// `* n FETCH (items)`.
    Fetch {
        /// The message's sequence number.
        seq: u32,
        /// The items.
        items: &'a [FetchItem<'a>],
    },
}

impl Response<'_> {
    /// Appends the response, CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Ok { code, text } => push_condition(out, "OK", code.as_ref(), text),
            Self::No { code, text } => push_condition(out, "NO", code.as_ref(), text),
            Self::Bad { text } => push_condition(out, "BAD", None, text),
            Self::Bye { code, text } => push_condition(out, "BYE", code.as_ref(), text),
            Self::Capability(names) => push_line(out, &format!("CAPABILITY {names}")),
            Self::Enabled(names) => push_words(out, "ENABLED", names.iter().copied()),
            Self::Id(fields) => push_id(out, fields),
            Self::Namespace { separator } => {
                push_line(out, &format!("NAMESPACE ((\"\" \"{separator}\")) NIL NIL"));
            }
            Self::List {
                kind,
                attributes,
                separator,
                mailbox,
                subscribed_children,
            } => {
                let extended = match subscribed_children {
                    true => " (CHILDINFO (\"SUBSCRIBED\"))",
                    false => "",
                };
                push_list(out, *kind, attributes, *separator, mailbox, extended)
            }
            Self::Status { mailbox, items } => push_status(out, mailbox, items),
            Self::Flags(flags) => {
                out.extend_from_slice(b"* FLAGS ");
                push_flag_list(out, flags.iter().copied());
                out.extend_from_slice(b"\r\n");
            }
            Self::Exists(n) => push_line(out, &format!("{n} EXISTS")),
            Self::Recent(n) => push_line(out, &format!("{n} RECENT")),
            Self::Expunge(n) => push_line(out, &format!("{n} EXPUNGE")),
            Self::Vanished { earlier, uids } => push_vanished(out, *earlier, uids),
            Self::Search { numbers, modseq } => push_search(out, "SEARCH", numbers, *modseq),
            Self::Esearch(esearch) => esearch.encode(out),
            Self::SearchUpdate(update) => update.encode(out),
            Self::Sort { numbers, modseq } => push_search(out, "SORT", numbers, *modseq),
            Self::Thread(threads) => {
                push_words(out, "THREAD", Some(*threads).filter(|t| !t.is_empty()))
            }
            Self::Fetch { seq, items } => push_fetch(out, *seq, items),
            Self::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"* QUOTAROOT ");
                mailbox.encode(out);
                for root in *roots {
                    out.push(b' ');
                    push_quoted(out, root);
                }
                out.extend_from_slice(b"\r\n");
            }
            Self::Quota { root, resources } => {
                out.extend_from_slice(b"* QUOTA ");
                push_quoted(out, root);
                let listed: Vec<String> = resources
                    .iter()
                    .map(|(name, usage, limit)| format!("{name} {usage} {limit}"))
                    .collect();
                out.extend_from_slice(format!(" ({})\r\n", listed.join(" ")).as_bytes());
            }
        }
    }
}

/// `* text\r\n`.
fn push_line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("* {text}\r\n").as_bytes());
}

/// `* KEYWORD a b c\r\n` (just `* KEYWORD\r\n` without words).
fn push_words<T: AsRef<str>>(out: &mut Vec<u8>, keyword: &str, words: impl IntoIterator<Item = T>) {
    out.extend_from_slice(format!("* {keyword}").as_bytes());
    for word in words {
        out.push(b' ');
        out.extend_from_slice(word.as_ref().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* OK [code] text\r\n` and its BAD and BYE siblings.
fn push_condition(out: &mut Vec<u8>, word: &str, code: Option<&Code<'_>>, text: &str) {
    out.extend_from_slice(format!("* {word} ").as_bytes());
    push_condition_rest(out, code, text);
}

/// `[code] text\r\n` or `text\r\n`.
fn push_condition_rest(out: &mut Vec<u8>, code: Option<&Code<'_>>, text: &str) {
    if let Some(code) = code {
        code.encode(out);
        out.push(b' ');
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_id(out: &mut Vec<u8>, fields: &[(&str, &str)]) {
    out.extend_from_slice(b"* ID ");
    if fields.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            push_string(out, name.as_bytes());
            out.push(b' ');
            push_string(out, value.as_bytes());
        }
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

fn push_vanished(out: &mut Vec<u8>, earlier: bool, uids: &[u32]) {
    out.extend_from_slice(b"* VANISHED ");
    if earlier {
        out.extend_from_slice(b"(EARLIER) ");
    }
    push_number_set(out, uids);
    out.extend_from_slice(b"\r\n");
}

/// `* SEARCH 1 2 (MODSEQ 9)` and `* SORT 2 1 (MODSEQ 9)`.
fn push_search(out: &mut Vec<u8>, keyword: &str, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(format!("* {keyword}").as_bytes());
    for n in numbers {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let Some(modseq) = modseq {
        out.extend_from_slice(format!(" (MODSEQ {modseq})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn push_fetch(out: &mut Vec<u8>, seq: u32, items: &[FetchItem<'_>]) {
    push_fetch_start(out, seq);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        item.encode(out);
    }
    push_fetch_end(out);
}

/// `(\Seen \Flagged $Label1)`.
pub fn push_flag_list<'f>(out: &mut Vec<u8>, flags: impl IntoIterator<Item = &'f str>) {
    out.push(b'(');
    for (i, flag) in flags.into_iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(flag.as_bytes());
    }
    out.push(b')');
}

/// A set of numbers in IMAP's compact form, runs of consecutive numbers as ranges, in the
/// order given: `1:3,7,9:10`.
pub fn push_number_set(out: &mut Vec<u8>, numbers: &[u32]) {
    out.extend_from_slice(compact_set(numbers.iter().copied()).as_bytes());
}

/// Appends `text` as a quoted string (backslash and quote escaped).
fn push_quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    out.extend_from_slice(text.replace('\\', "\\\\").replace('"', "\\\"").as_bytes());
    out.push(b'"');
}

/// The compact form of a set of numbers (see [`push_number_set`]), for sequence-set text
/// such as the saved search result.
pub fn compact_set(numbers: impl IntoIterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            out.push_str(&a.to_string());
        } else {
            out.push_str(&format!("{a}:{b}"));
        }
    };
    for n in numbers {
        run = match run {
            Some((a, b)) if Some(n) == b.checked_add(1) => Some((a, n)),
            Some(r) => {
                flush(&mut out, r);
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests;
