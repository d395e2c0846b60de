//! Small pieces of IMAP responses the commands share: tagged lines, flag lists, and how a
//! storage failure reads to a client.

use std::collections::BTreeSet;

use roost_protocol::imap::imap_types::flag::Flag;
use roost_protocol::imap::response::{Code, Status, Tagged as TaggedLine};
use roost_storage::{Error as StorageError, Flags, MessageInfo};

/// The outcome of one command: its tagged line (untagged data went to the output already).
pub type Tagged = Vec<u8>;

fn tagged(tag: &str, status: Status, code: Option<Code<'_>>, text: &str) -> Tagged {
    let mut out = Vec::new();
    TaggedLine {
        tag,
        status,
        code,
        text,
    }
    .encode(&mut out);
    out
}

/// `tag OK text`.
pub fn ok(tag: &str, text: &str) -> Tagged {
    tagged(tag, Status::Ok, None, text)
}

/// `tag OK [code] text`.
pub fn ok_code(tag: &str, code: Code<'_>, text: &str) -> Tagged {
    tagged(tag, Status::Ok, Some(code), text)
}

/// `tag NO [code] text`.
pub fn no(tag: &str, code: Option<Code<'_>>, text: &str) -> Tagged {
    tagged(tag, Status::No, code, text)
}

/// `tag BAD text`.
pub fn bad(tag: &str, text: &str) -> Tagged {
    tagged(tag, Status::Bad, None, text)
}

/// A storage failure as the client sees it; the details go to the log, not the wire.
pub fn storage_failure(tag: &str, user: &str, e: &StorageError) -> Tagged {
    let (code, text) = match e {
        StorageError::NoSuchMailbox(_) => (Code::Nonexistent, "Mailbox doesn't exist."),
        StorageError::AlreadyExists(_) => (Code::AlreadyExists, "Mailbox already exists."),
        StorageError::InvalidName(_, why) => {
            return no(
                tag,
                Some(Code::Cannot),
                &format!("Invalid mailbox name: {why}."),
            )
        }
        StorageError::Busy(_) => (
            Code::InUse,
            "Mailbox is locked by another process; try again.",
        ),
        StorageError::NotOwner(_) => (
            Code::NoPerm,
            "The mailbox file is not yours; refusing to use it.",
        ),
        StorageError::Changed(_) => (
            Code::Unavailable,
            "The mailbox was changed by another program; try again.",
        ),
        StorageError::OverQuota => (
            Code::OverQuota,
            "Quota exceeded (mailbox for user is full).",
        ),
        StorageError::NoSuchMessage(_) => (
            Code::ExpungeIssued,
            "Some of the requested messages no longer exist.",
        ),
        other => {
            tracing::error!("imap({user}): storage error: {other}");
            (Code::ServerBug, "Internal error; the details are logged.")
        }
    };
    no(tag, Some(code), text)
}

/// The names of a message's flags and keywords, as a FLAGS list shows them.
pub fn flag_names(flags: Flags, keywords: &BTreeSet<String>) -> Vec<&str> {
    let mut names: Vec<&str> = flags.imap_names().collect();
    names.extend(keywords.iter().map(String::as_str));
    names
}

/// The flag names of a message (see [`flag_names`]).
pub fn message_flags(m: &MessageInfo) -> Vec<&str> {
    flag_names(m.flags, &m.keywords)
}

/// Splits client flags into system flags and keywords; `\Recent` and other `\` extensions are
/// not storable and are ignored.
pub fn parse_flags(flags: &[Flag<'_>]) -> (Flags, BTreeSet<String>) {
    let mut system = Flags::empty();
    let mut keywords = BTreeSet::new();
    for flag in flags {
        match flag {
            Flag::Answered => system = system.union(Flags::ANSWERED),
            Flag::Deleted => system = system.union(Flags::DELETED),
            Flag::Draft => system = system.union(Flags::DRAFT),
            Flag::Flagged => system = system.union(Flags::FLAGGED),
            Flag::Seen => system = system.union(Flags::SEEN),
            Flag::Keyword(atom) => {
                keywords.insert(atom.as_ref().to_string());
            }
            Flag::Extension(_) => {}
        }
    }
    (system, keywords)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn flag_lists_name_system_flags_then_keywords() {
        let kw: BTreeSet<String> = ["$Junk".to_string()].into();
        assert_eq!(
            flag_names(Flags::SEEN.union(Flags::FLAGGED), &kw),
            ["\\Flagged", "\\Seen", "$Junk"]
        );
        assert!(flag_names(Flags::empty(), &BTreeSet::new()).is_empty());
    }

    #[test]
    fn internal_dates_read_as_chrono_writes_them() {
        use chrono::{DateTime, Utc};
        use roost_protocol::imap::response::push_internal_date;
        let mut seconds: u64 = 1;
        while seconds < 400_000_000_000 {
            let after = UNIX_EPOCH + Duration::from_secs(seconds);
            let before = UNIX_EPOCH - Duration::from_millis(seconds * 7 / 3);
            for t in [after, before] {
                let utc: DateTime<Utc> = t.into();
                let want = format!("\"{}\"", utc.format("%d-%b-%Y %H:%M:%S +0000"));
                let mut got = Vec::new();
                push_internal_date(&mut got, t);
                assert_eq!(String::from_utf8(got).unwrap(), want, "{t:?}");
            }
            seconds = seconds * 3 + 17;
        }
    }
}
