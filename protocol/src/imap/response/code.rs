//! Response codes (RFC 3501 7.1 and the extensions roost speaks): the bracketed word after
//! `OK`, `NO`, `BAD` or `BYE` that tells a client what happened without parsing the text.

use super::{compact_set, push_flag_list, push_number_set};

/// One response code, written between `[` and `]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code<'a> {
    /// `ALERT`: the text must be shown to the user (a `nologin` reason).
    Alert,
    /// `ALREADYEXISTS` (RFC 5530).
    AlreadyExists,
    /// `APPENDUID uidvalidity uid` (RFC 4315).
    AppendUid {
        /// The target mailbox's UIDVALIDITY.
        uidvalidity: u32,
        /// The UIDs the messages got (one, or several for MULTIAPPEND).
        uids: Vec<u32>,
    },
    /// `AUTHENTICATIONFAILED` (RFC 5530).
    AuthenticationFailed,
    /// `BADCHARSET (names)`: the charsets a search may use.
    BadCharset(&'a [&'a str]),
    /// `BADURL "url"` (RFC 4469): a CATENATE URL that names nothing readable.
    BadUrl(&'a str),
    /// `TOOBIG` (RFC 4469, RFC 5530): the message would be too large.
    TooBig,
    /// `CANNOT` (RFC 5530).
    Cannot,
    /// `CAPABILITY names`, so a client need not ask.
    Capability(&'a str),
    /// `CLOSED` (RFC 7162): the previous mailbox is no longer selected.
    Closed,
    /// `COMPRESSIONACTIVE` (RFC 4978).
    CompressionActive,
    /// `COPYUID uidvalidity source destination` (RFC 4315), sets in the order given.
    CopyUid {
        /// The destination's UIDVALIDITY.
        uidvalidity: u32,
        /// The source UIDs.
        source: Vec<u32>,
        /// The UIDs they got, pair by pair.
        destination: Vec<u32>,
    },
    /// `EXPUNGEISSUED` (RFC 5530).
    ExpungeIssued,
    /// `HIGHESTMODSEQ n` (RFC 7162).
    HighestModSeq(u64),
    /// `INUSE` (RFC 5530).
    InUse,
    /// `LIMIT` (RFC 5530).
    Limit,
    /// `MODIFIED set` (RFC 7162): what a conditional STORE left alone.
    Modified(Vec<u32>),
    /// `NONEXISTENT` (RFC 5530).
    Nonexistent,
    /// `NOPERM` (RFC 5530).
    NoPerm,
    /// `NOUPDATE "tag"` (RFC 5267 4.3.1): no live updates for that search.
    NoUpdate(&'a str),
    /// `OVERQUOTA` (RFC 9208 4.3): the user's quota has no room for it.
    OverQuota,
    /// `PERMANENTFLAGS (flags)`: what STORE keeps (`\*` included by the caller when it applies).
    PermanentFlags(&'a [&'a str]),
    /// `PRIVACYREQUIRED` (RFC 5530).
    PrivacyRequired,
    /// `READ-ONLY`.
    ReadOnly,
    /// `READ-WRITE`.
    ReadWrite,
    /// `SERVERBUG` (RFC 5530).
    ServerBug,
    /// `TRYCREATE`: the target mailbox is missing and may be created.
    TryCreate,
    /// `UIDNEXT n`.
    UidNext(u32),
    /// `UIDVALIDITY n`.
    UidValidity(u32),
    /// `UIDVALIDITY` alone: the mailbox's UIDs changed under the session.
    UidValidityChanged,
    /// `UNAVAILABLE` (RFC 5530).
    Unavailable,
    /// `UNKNOWN-CTE` (RFC 3516).
    UnknownCte,
    /// `UNSEEN n`: the first unseen message's sequence number.
    Unseen(u32),
}

impl Code<'_> {
    /// Appends `[code]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        self.encode_inner(out);
        out.push(b']');
    }

    fn encode_inner(&self, out: &mut Vec<u8>) {
        match self {
            Self::Alert => put(out, "ALERT"),
            Self::AlreadyExists => put(out, "ALREADYEXISTS"),
            Self::AppendUid { uidvalidity, uids } => put(
                out,
                &format!(
                    "APPENDUID {uidvalidity} {}",
                    compact_set(uids.iter().copied())
                ),
            ),
            Self::AuthenticationFailed => put(out, "AUTHENTICATIONFAILED"),
            Self::BadCharset(names) => put(out, &format!("BADCHARSET ({})", names.join(" "))),
            Self::BadUrl(url) => {
                let mut quoted = Vec::new();
                crate::imap::strings::push_string(&mut quoted, url.as_bytes());
                put(out, &format!("BADURL {}", String::from_utf8_lossy(&quoted)))
            }
            Self::TooBig => put(out, "TOOBIG"),
            Self::Cannot => put(out, "CANNOT"),
            Self::Capability(names) => put(out, &format!("CAPABILITY {names}")),
            Self::Closed => put(out, "CLOSED"),
            Self::CompressionActive => put(out, "COMPRESSIONACTIVE"),
            Self::CopyUid {
                uidvalidity,
                source,
                destination,
            } => copy_uid(*uidvalidity, source, destination, out),
            Self::ExpungeIssued => put(out, "EXPUNGEISSUED"),
            Self::HighestModSeq(n) => put(out, &format!("HIGHESTMODSEQ {n}")),
            Self::InUse => put(out, "INUSE"),
            Self::Limit => put(out, "LIMIT"),
            Self::Modified(set) => {
                put(out, "MODIFIED ");
                push_number_set(out, set);
            }
            Self::Nonexistent => put(out, "NONEXISTENT"),
            Self::NoPerm => put(out, "NOPERM"),
            Self::NoUpdate(tag) => {
                let mut quoted = Vec::new();
                crate::imap::strings::push_string(&mut quoted, tag.as_bytes());
                put(
                    out,
                    &format!("NOUPDATE {}", String::from_utf8_lossy(&quoted)),
                )
            }
            Self::OverQuota => put(out, "OVERQUOTA"),
            Self::PermanentFlags(flags) => {
                put(out, "PERMANENTFLAGS ");
                push_flag_list(out, flags.iter().copied());
            }
            Self::PrivacyRequired => put(out, "PRIVACYREQUIRED"),
            Self::ReadOnly => put(out, "READ-ONLY"),
            Self::ReadWrite => put(out, "READ-WRITE"),
            Self::ServerBug => put(out, "SERVERBUG"),
            Self::TryCreate => put(out, "TRYCREATE"),
            Self::UidNext(n) => put(out, &format!("UIDNEXT {n}")),
            Self::UidValidity(n) => put(out, &format!("UIDVALIDITY {n}")),
            Self::UidValidityChanged => put(out, "UIDVALIDITY"),
            Self::Unavailable => put(out, "UNAVAILABLE"),
            Self::UnknownCte => put(out, "UNKNOWN-CTE"),
            Self::Unseen(n) => put(out, &format!("UNSEEN {n}")),
        }
    }
}

/// Appends `text`.
fn put(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

fn copy_uid(uidvalidity: u32, source: &[u32], destination: &[u32], out: &mut Vec<u8>) {
    out.extend(format!("COPYUID {uidvalidity} ").as_bytes());
    push_number_set(out, source);
    out.push(b' ');
    push_number_set(out, destination);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(code: Code<'_>) -> String {
        let mut out = Vec::new();
        code.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn codes_have_their_rfc_spelling() {
        let cases: Vec<(Code<'_>, &str)> = vec![
            (Code::Alert, "[ALERT]"),
            (Code::AlreadyExists, "[ALREADYEXISTS]"),
            (
                Code::AppendUid {
                    uidvalidity: 1_700_000_000,
                    uids: vec![7],
                },
                "[APPENDUID 1700000000 7]",
            ),
            (
                Code::AppendUid {
                    uidvalidity: 1_700_000_000,
                    uids: vec![7, 8, 9, 12],
                },
                "[APPENDUID 1700000000 7:9,12]",
            ),
            (Code::AuthenticationFailed, "[AUTHENTICATIONFAILED]"),
            (
                Code::BadCharset(&["UTF-8", "US-ASCII"]),
                "[BADCHARSET (UTF-8 US-ASCII)]",
            ),
            (Code::Cannot, "[CANNOT]"),
            (
                Code::Capability("IMAP4rev1 IDLE"),
                "[CAPABILITY IMAP4rev1 IDLE]",
            ),
            (Code::Closed, "[CLOSED]"),
            (Code::CompressionActive, "[COMPRESSIONACTIVE]"),
            (
                Code::CopyUid {
                    uidvalidity: 9,
                    source: vec![1, 2, 3, 7],
                    destination: vec![10, 11, 12, 13],
                },
                "[COPYUID 9 1:3,7 10:13]",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(text(code), want);
        }
    }

    #[test]
    fn more_codes_have_their_rfc_spelling() {
        let cases: Vec<(Code<'_>, &str)> = vec![
            (Code::ExpungeIssued, "[EXPUNGEISSUED]"),
            (
                Code::HighestModSeq(1_796_183_871_166_051),
                "[HIGHESTMODSEQ 1796183871166051]",
            ),
            (Code::InUse, "[INUSE]"),
            (Code::Limit, "[LIMIT]"),
            (Code::Modified(vec![1, 2, 3, 4]), "[MODIFIED 1:4]"),
            (Code::Nonexistent, "[NONEXISTENT]"),
            (Code::NoPerm, "[NOPERM]"),
            (Code::PermanentFlags(&[]), "[PERMANENTFLAGS ()]"),
            (
                Code::PermanentFlags(&["\\Seen", "$Junk", "\\*"]),
                "[PERMANENTFLAGS (\\Seen $Junk \\*)]",
            ),
            (Code::PrivacyRequired, "[PRIVACYREQUIRED]"),
            (Code::ReadOnly, "[READ-ONLY]"),
            (Code::ReadWrite, "[READ-WRITE]"),
            (Code::ServerBug, "[SERVERBUG]"),
            (Code::TryCreate, "[TRYCREATE]"),
            (Code::UidNext(5), "[UIDNEXT 5]"),
            (Code::UidValidity(1_700_000_000), "[UIDVALIDITY 1700000000]"),
            (Code::UidValidityChanged, "[UIDVALIDITY]"),
            (Code::Unavailable, "[UNAVAILABLE]"),
            (Code::UnknownCte, "[UNKNOWN-CTE]"),
            (Code::Unseen(2), "[UNSEEN 2]"),
        ];
        for (code, want) in cases {
            assert_eq!(text(code), want);
        }
    }
}
