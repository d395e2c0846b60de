//! ESEARCH (RFC 4731) and ESORT (RFC 5267) results.

use super::compact_set;
use crate::imap::strings::push_string;

/// The numbers of an ESEARCH `ALL`: a compact set, or a list in a given order (ESORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllNumbers<'a> {
    /// Ascending numbers, written as a set with ranges (`1:3,7`).
    Set(&'a [u32]),
    /// Numbers in the order given (RFC 5267's sorted result): a run of consecutive ascending
    /// numbers is still written as a range (`3:5,1:2` for 3 4 5 1 2), which reads back in the
    /// same order; anything else stays a comma-separated list.
    Ordered(&'a [u32]),
}

/// `* ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9 MODSEQ 7` (RFC 4731, RFC 5267);
/// absent parts are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Esearch<'a> {
    /// The tag of the command answered.
    pub tag: &'a str,
    /// The numbers are UIDs.
    pub uid: bool,
    /// `MIN`.
    pub min: Option<u32>,
    /// `MAX`.
    pub max: Option<u32>,
    /// `COUNT`.
    pub count: Option<usize>,
    /// `ALL`.
    pub all: Option<AllNumbers<'a>>,
    /// `MODSEQ` (RFC 7162).
    pub modseq: Option<u64>,
    /// `PARTIAL (range numbers)` (RFC 9394): the range as the client asked for it, and the
    /// results at those positions (none: `NIL`).
    pub partial: Option<(&'a str, AllNumbers<'a>)>,
}

/// `* ESEARCH (TAG "a")` and ` UID` when the numbers are UIDs: how every ESEARCH starts.
fn push_correlator(out: &mut Vec<u8>, tag: &str, uid: bool) {
    out.extend_from_slice(b"* ESEARCH (TAG ");
    push_string(out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
}

impl Esearch<'_> {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        push_correlator(out, self.tag, self.uid);
        let mut part = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.extend_from_slice(format!(" {name} {value}").as_bytes());
            }
        };
        part("MIN", self.min.map(|n| n.to_string()));
        part("MAX", self.max.map(|n| n.to_string()));
        part("COUNT", self.count.map(|n| n.to_string()));
        part("ALL", self.all.map(|all| all.text()));
        part("MODSEQ", self.modseq.map(|n| n.to_string()));
        part(
            "PARTIAL",
            self.partial.map(|(range, numbers)| {
                let listed = match numbers.is_empty() {
                    true => "NIL".to_string(),
                    false => numbers.text(),
                };
                format!("({range} {listed})")
            }),
        );
        out.extend_from_slice(b"\r\n");
    }
}

impl AllNumbers<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Self::Set(numbers) | Self::Ordered(numbers) => numbers.is_empty(),
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Set(numbers) | Self::Ordered(numbers) => compact_set(numbers.iter().copied()),
        }
    }
}

/// `* ESEARCH (TAG "a") UID ADDTO (0 7:9)` or `REMOVEFROM (...)` (RFC 5267 4.3): how a live
/// search result (`RETURN (UPDATE)`) changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextUpdate<'a> {
    /// The tag of the command that asked for updates.
    pub tag: &'a str,
    /// The numbers are UIDs.
    pub uid: bool,
    /// `ADDTO` (else `REMOVEFROM`).
    pub added: bool,
    /// `(context position, numbers)` pairs, processed in order; position 0 for SEARCH.
    pub pairs: &'a [(u32, Vec<u32>)],
}

impl ContextUpdate<'_> {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        push_correlator(out, self.tag, self.uid);
        out.extend_from_slice(if self.added {
            b" ADDTO ("
        } else {
            b" REMOVEFROM ("
        });
        for (i, (position, numbers)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let numbers = AllNumbers::Ordered(numbers).text();
            out.extend_from_slice(format!("{position} {numbers}").as_bytes());
        }
        out.extend_from_slice(b")\r\n");
    }
}
