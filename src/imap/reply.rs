//! Small pieces of IMAP responses the commands share: flag lists, dates, UID sets, and how a
//! storage failure reads to a client.

use std::collections::BTreeSet;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use roost_protocol::imap::imap_types::flag::Flag;
use roost_protocol::imap::{self as wire, Status};
use roost_storage::{Error as StorageError, Flags, MessageInfo, Uid};

/// The outcome of one command: its tagged line (untagged data went to the output already).
pub type Tagged = Vec<u8>;

/// `tag OK text`.
pub fn ok(tag: &str, text: &str) -> Tagged {
    wire::tagged(tag, Status::Ok, None, text)
}

/// `tag OK [code] text`.
pub fn ok_code(tag: &str, code: &str, text: &str) -> Tagged {
    wire::tagged(tag, Status::Ok, Some(code), text)
}

/// `tag NO [code] text`.
pub fn no(tag: &str, code: Option<&str>, text: &str) -> Tagged {
    wire::tagged(tag, Status::No, code, text)
}

/// `tag BAD text`.
pub fn bad(tag: &str, text: &str) -> Tagged {
    wire::tagged(tag, Status::Bad, None, text)
}

/// A storage failure as the client sees it; the details go to the log, not the wire.
pub fn storage_failure(tag: &str, user: &str, e: &StorageError) -> Tagged {
    match e {
        StorageError::NoSuchMailbox(_) => no(tag, Some("NONEXISTENT"), "Mailbox doesn't exist."),
        StorageError::AlreadyExists(_) => no(tag, Some("ALREADYEXISTS"), "Mailbox already exists."),
        StorageError::InvalidName(_, why) => no(
            tag,
            Some("CANNOT"),
            &format!("Invalid mailbox name: {why}."),
        ),
        StorageError::Busy(_) => no(
            tag,
            Some("INUSE"),
            "Mailbox is locked by another process; try again.",
        ),
        StorageError::NotOwner(_) => no(
            tag,
            Some("NOPERM"),
            "The mailbox file is not yours; refusing to use it.",
        ),
        StorageError::Changed(_) => no(
            tag,
            Some("UNAVAILABLE"),
            "The mailbox was changed by another program; try again.",
        ),
        StorageError::NoSuchMessage(_) => no(
            tag,
            Some("EXPUNGEISSUED"),
            "Some of the requested messages no longer exist.",
        ),
        other => {
            tracing::error!("imap({user}): storage error: {other}");
            no(
                tag,
                Some("SERVERBUG"),
                "Internal error; the details are logged.",
            )
        }
    }
}

/// `(\Seen \Flagged $Label1)`.
pub fn flag_list(flags: Flags, keywords: &BTreeSet<String>) -> String {
    let mut out = String::from("(");
    for name in flags.imap_names() {
        if out.len() > 1 {
            out.push(' ');
        }
        out.push_str(name);
    }
    for keyword in keywords {
        if out.len() > 1 {
            out.push(' ');
        }
        out.push_str(keyword);
    }
    out.push(')');
    out
}

/// The flags of a message, `FLAGS (...)`.
pub fn flags_item(m: &MessageInfo) -> String {
    format!("FLAGS {}", flag_list(m.flags, &m.keywords))
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

/// INTERNALDATE's form: `"23-Nov-2026 10:00:00 +0000"`.
pub fn internal_date(time: SystemTime) -> String {
    let utc: DateTime<Utc> = time.into();
    format!("\"{}\"", utc.format("%d-%b-%Y %H:%M:%S +0000"))
}

/// A UID set in IMAP's compact form: `1:3,7,9:10`.
pub fn uid_set(uids: impl IntoIterator<Item = Uid>) -> String {
    let mut out = String::new();
    let mut run: Option<(Uid, Uid)> = None;
    let flush = |out: &mut String, (a, b): (Uid, Uid)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            out.push_str(&a.to_string());
        } else {
            out.push_str(&format!("{a}:{b}"));
        }
    };
    for uid in uids {
        run = match run {
            Some((a, b)) if uid == b + 1 => Some((a, uid)),
            Some(r) => {
                flush(&mut out, r);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn pieces_have_imap_form() {
        assert_eq!(uid_set([1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set([5]), "5");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_428_000);
        assert_eq!(internal_date(t), "\"23-Nov-2026 10:00:00 +0000\"");
        let kw: BTreeSet<String> = ["$Junk".to_string()].into();
        assert_eq!(
            flag_list(Flags::SEEN.union(Flags::FLAGGED), &kw),
            "(\\Flagged \\Seen $Junk)"
        );
        assert_eq!(flag_list(Flags::empty(), &BTreeSet::new()), "()");
    }
}
