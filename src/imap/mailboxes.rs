//! Mailbox management (RFC 3501 6.3): LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE, STATUS and NAMESPACE, with SPECIAL-USE attributes (RFC 6154) and CHILDREN
//! (RFC 3348), plus the special folders every new user gets.
//!
//! Names travel as the client sent them (modified UTF-7), and are stored that way, as Dovecot
//! does; `/` is the hierarchy separator on every format.

use std::collections::{BTreeMap, BTreeSet};

use roost_protocol::imap::imap_types::mailbox::{ListMailbox, Mailbox};
use roost_protocol::imap::imap_types::status::StatusDataItemName;
use roost_protocol::imap::mutf7;
use roost_protocol::imap::response::{
    Code, ListAttribute, ListKind, MailboxName, Response, StatusItem,
};
use roost_protocol::imap::Extras;
use roost_storage::{Error as StorageError, Flags, Store};

use super::reply::{no, ok, storage_failure, Tagged};

/// The hierarchy separator clients see.
pub const SEPARATOR: char = '/';

/// Folders a new user gets, with their RFC 6154 attribute.
pub const SPECIAL_USE: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// The stored (modified UTF-7) name a command names, `INBOX` spelled canonically and a trailing
/// separator dropped. `utf8`: the client sends UTF-8 names (UTF8=ACCEPT, IMAP4rev2). `Err`
/// holds the NO text for a name that is neither.
pub fn mailbox_name(mailbox: &Mailbox<'_>, utf8: bool) -> Result<String, &'static str> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => {
            let name =
                std::str::from_utf8(other.as_ref()).map_err(|_| "Mailbox name is not UTF-8.")?;
            let name = name.trim_end_matches(SEPARATOR);
            if name.eq_ignore_ascii_case("INBOX") {
                return Ok("INBOX".to_string());
            }
            if utf8 {
                return Ok(mutf7::encode(name));
            }
            if mutf7::decode(name).is_err() {
                return Err("Mailbox name is not valid modified UTF-7.");
            }
            Ok(name.to_string())
        }
    }
}

/// Creates (and subscribes) the special-use folders a user lacks, on the first login.
pub fn ensure_special_folders(store: &Store) -> Result<(), StorageError> {
    let existing: BTreeSet<String> = store
        .folders()
        .list()?
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut subscribed = store.subscriptions()?;
    if subscribed.is_empty() {
        store.set_subscribed("INBOX", true)?;
        subscribed.push("INBOX".into());
    }
    for (name, _) in SPECIAL_USE {
        if !existing.contains(&name.to_ascii_lowercase()) {
            match store.folders().create(name) {
                // Another session of the same user, logging in at the same moment, won.
                Ok(()) | Err(StorageError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
            store.set_subscribed(name, true)?;
        }
    }
    Ok(())
}

/// The RFC 6154 attribute of a top-level folder name.
fn special_use(name: &str) -> Option<&'static str> {
    SPECIAL_USE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, attr)| *attr)
}

fn pattern_text(pattern: &ListMailbox<'_>) -> String {
    let bytes: &[u8] = match pattern {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    };
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `name` matches a LIST pattern: `*` matches anything, `%` anything but the separator.
///
/// The pattern runs as a set of positions advanced over the name together (an NFA), so the
/// cost is at most `name × pattern` steps and the stack stays flat, whatever the client sends:
/// a recursion per wildcard let one `LIST "" "***…"` overflow the stack of the whole server.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // `alive[i]`: the first `i` pattern bytes can match the name read so far.
    let mut alive = vec![false; pattern.len() + 1];
    alive[0] = true;
    close_over_wildcards(pattern, &mut alive);
    let mut next = vec![false; pattern.len() + 1];
    for &c in name {
        next.iter_mut().for_each(|n| *n = false);
        for (i, &p) in pattern.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            match p {
                b'*' => next[i] = true,
                b'%' if c != SEPARATOR as u8 => next[i] = true,
                b'%' => {}
                _ if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        close_over_wildcards(pattern, &mut next);
        std::mem::swap(&mut alive, &mut next);
        if !alive.contains(&true) {
            return false;
        }
    }
    alive[pattern.len()]
}

/// A wildcard may match nothing: whoever reaches it also reaches the position after it.
fn close_over_wildcards(pattern: &[u8], alive: &mut [bool]) {
    for (i, &p) in pattern.iter().enumerate() {
        if alive[i] && (p == b'*' || p == b'%') {
            alive[i + 1] = true;
        }
    }
}

/// A LIST pattern longer than this is refused (Dovecot's longest mailbox name).
pub const MAX_LIST_PATTERN_BYTES: usize = 4096;
/// A LIST pattern with more wildcards than this (after runs are collapsed) is refused.
pub const MAX_LIST_WILDCARDS: usize = 100;

/// A run of wildcards matches what one does: `*` if the run has one, else `%`.
fn collapse_wildcards(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut run: Option<char> = None;
    for c in pattern.chars() {
        match (c, run) {
            ('*' | '%', None) => run = Some(c),
            ('*', Some(_)) => run = Some('*'),
            ('%', Some(_)) => {}
            (_, _) => {
                out.extend(run.take());
                out.push(c);
            }
        }
    }
    out.extend(run);
    out
}

/// Why a (collapsed) pattern is refused, if it is.
fn pattern_over_limits(pattern: &str) -> Option<&'static str> {
    if pattern.len() > MAX_LIST_PATTERN_BYTES {
        return Some("LIST pattern too long.");
    }
    let wildcards = pattern.bytes().filter(|b| matches!(b, b'*' | b'%')).count();
    (wildcards > MAX_LIST_WILDCARDS).then_some("Too many wildcards in the LIST pattern.")
}

/// The full pattern for a LIST reference and mailbox argument (RFC 3501 6.3.8).
fn full_pattern(reference: &str, pattern: &str) -> String {
    if reference.is_empty() || pattern.starts_with(SEPARATOR) {
        return pattern.to_string();
    }
    if reference.ends_with(SEPARATOR) {
        format!("{reference}{pattern}")
    } else {
        format!("{reference}{SEPARATOR}{pattern}")
    }
}

/// Matches a name case-insensitively when it is INBOX (RFC 3501: INBOX is case-insensitive).
fn name_matches(pattern: &str, name: &str) -> bool {
    if name == "INBOX" {
        return matches(pattern.to_ascii_uppercase().as_bytes(), b"INBOX");
    }
    matches(pattern.as_bytes(), name.as_bytes())
}

/// LIST and LSUB, with LIST-EXTENDED selection and return options (RFC 5258: SUBSCRIBED,
/// SPECIAL-USE, CHILDREN) and LIST-STATUS (RFC 5819).
#[allow(clippy::too_many_arguments)]
pub fn list(
    store: &Store,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    lsub: bool,
    extras: &Extras,
    utf8: bool,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    let (command, kind) = if lsub {
        ("LSUB", ListKind::Lsub)
    } else {
        ("LIST", ListKind::List)
    };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    };
    let mut pattern = pattern_text(pattern);
    let reference = if utf8 {
        pattern = mutf7::encode(&pattern);
        mutf7::encode(&reference)
    } else {
        reference
    };
    if pattern.is_empty() {
        if !lsub {
            Response::List {
                kind,
                attributes: &[ListAttribute::Noselect],
                separator: SEPARATOR,
                mailbox: MailboxName { name: "", utf8 },
            }
            .encode(out);
        }
        return ok(tag, &format!("{command} completed."));
    }
    // LIST-EXTENDED may give several patterns; a name matching any of them is listed once.
    let given: Vec<String> = if extras.list_patterns.is_empty() {
        vec![pattern]
    } else if utf8 {
        extras
            .list_patterns
            .iter()
            .map(|p| mutf7::encode(p))
            .collect()
    } else {
        extras.list_patterns.clone()
    };
    let patterns: Vec<String> = given
        .iter()
        .map(|p| collapse_wildcards(&full_pattern(&reference, p)))
        .collect();
    if let Some(refusal) = patterns.iter().find_map(|p| pattern_over_limits(p)) {
        return no(tag, Some(Code::Limit), refusal);
    }
    let existing = match store.folders().list() {
        Ok(names) => names,
        Err(e) => return storage_failure(tag, user, &e),
    };
    let subscribed: BTreeSet<String> = match store.subscriptions() {
        Ok(names) => names.into_iter().collect(),
        Err(e) => return storage_failure(tag, user, &e),
    };
    // Every name with its attributes; parents that only exist as a path get \Noselect.
    let mut names: BTreeMap<String, bool> = BTreeMap::new();
    let select = |o: &str| extras.list_select.iter().any(|x| x == o);
    let only_subscribed = lsub || select("SUBSCRIBED");
    let show_subscribed =
        !lsub && (select("SUBSCRIBED") || extras.list_return.iter().any(|x| x == "SUBSCRIBED"));
    let extended = !extras.list_select.is_empty() || !extras.list_return.is_empty();
    let shown: Vec<&String> = if only_subscribed {
        subscribed.iter().collect()
    } else {
        existing.iter().collect()
    };
    // LSUB shows an unsubscribed parent only where `%` stops at it (RFC 3501 6.3.9).
    let implied_parents = !lsub || patterns.iter().any(|p| p.contains('%'));
    for name in shown {
        names.insert(name.clone(), true);
        if !implied_parents {
            continue;
        }
        let mut parent = name.as_str();
        while let Some((p, _)) = parent.rsplit_once(SEPARATOR) {
            names.entry(p.to_string()).or_insert(false);
            parent = p;
        }
    }
    let exists: BTreeSet<&String> = existing.iter().collect();
    let all: Vec<&String> = names.keys().collect();
    let mut lines = Vec::new();
    for (name, real) in &names {
        if !patterns.iter().any(|p| name_matches(p, name)) {
            continue;
        }
        let mut attrs: Vec<ListAttribute<'_>> = Vec::new();
        if !real || (!lsub && !exists.contains(name)) {
            attrs.push(if extended && !exists.contains(name) {
                ListAttribute::NonExistent
            } else {
                ListAttribute::Noselect
            });
        }
        let prefix = format!("{name}{SEPARATOR}");
        let children = all.iter().any(|other| other.starts_with(&prefix));
        if !lsub {
            attrs.push(if children {
                ListAttribute::HasChildren
            } else {
                ListAttribute::HasNoChildren
            });
            if show_subscribed && subscribed.contains(name) {
                attrs.push(ListAttribute::Subscribed);
            }
            let special = special_use(name).filter(|_| !name.contains(SEPARATOR));
            if let Some(special) = special {
                attrs.push(ListAttribute::SpecialUse(special));
            } else if select("SPECIAL-USE") {
                continue;
            }
        }
        let mut line = Vec::new();
        Response::List {
            kind,
            attributes: &attrs,
            separator: SEPARATOR,
            mailbox: MailboxName { name, utf8 },
        }
        .encode(&mut line);
        if !extras.list_status.is_empty() && exists.contains(name) {
            let items: Vec<StatusDataItemName> = extras
                .list_status
                .iter()
                .filter_map(|i| status_item(i))
                .collect();
            let mut status_line = Vec::new();
            // A mailbox that cannot be opened just gets no STATUS line (RFC 5819 3).
            if status(store, name, &items, utf8, &mut status_line).is_ok() {
                line.extend(status_line);
            }
        }
        if name == "INBOX" {
            lines.insert(0, line);
        } else {
            lines.push(line);
        }
    }
    for line in lines {
        out.extend(line);
    }
    ok(tag, &format!("{command} completed."))
}

/// A STATUS item by name, for LIST-STATUS.
fn status_item(name: &str) -> Option<StatusDataItemName> {
    Some(match name {
        "MESSAGES" => StatusDataItemName::Messages,
        "RECENT" => StatusDataItemName::Recent,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        "SIZE" => StatusDataItemName::Size,
        _ => return None,
    })
}

/// STATUS of a mailbox; `selected` lets the selected mailbox answer from its open view.
pub fn status(
    store: &Store,
    name: &str,
    items: &[StatusDataItemName],
    utf8: bool,
    out: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let mut mailbox = store.folders().open(name)?;
    let snapshot = mailbox.sync()?;
    let count = |flag: Flags, set: bool| {
        let n = snapshot
            .messages
            .iter()
            .filter(|m| m.flags.contains(flag) == set)
            .count();
        n as u32
    };
    let mut parts = Vec::new();
    for item in items {
        let value = match item {
            StatusDataItemName::Messages => StatusItem::Messages(snapshot.messages.len() as u32),
            StatusDataItemName::Recent => StatusItem::Recent(0),
            StatusDataItemName::UidNext => StatusItem::UidNext(snapshot.uidnext),
            StatusDataItemName::UidValidity => StatusItem::UidValidity(snapshot.uidvalidity),
            StatusDataItemName::Unseen => StatusItem::Unseen(count(Flags::SEEN, false)),
            StatusDataItemName::Deleted => StatusItem::Deleted(count(Flags::DELETED, true)),
            StatusDataItemName::HighestModSeq => {
                StatusItem::HighestModSeq(snapshot.highestmodseq.max(1))
            }
            StatusDataItemName::Size => {
                let mut total = 0;
                for m in &snapshot.messages {
                    total += mailbox.crlf_size(m.uid)?;
                }
                StatusItem::Size(total)
            }
            StatusDataItemName::DeletedStorage => continue,
        };
        parts.push(value);
    }
    Response::Status {
        mailbox: MailboxName { name, utf8 },
        items: &parts,
    }
    .encode(out);
    Ok(())
}

/// RENAME, with RFC 3501's INBOX rule: renaming INBOX moves its messages into a new folder
/// and leaves INBOX empty.
pub fn rename(store: &mut Store, from: &str, to: &str) -> Result<(), StorageError> {
    if to == "INBOX" {
        return Err(StorageError::AlreadyExists(to.to_string()));
    }
    if from != "INBOX" {
        return store.folders().rename(from, to);
    }
    store.folders().create(to)?;
    let mut dest = store.folders().open(to)?;
    let inbox = store.inbox();
    let uids: Vec<u32> = inbox.sync()?.messages.iter().map(|m| m.uid).collect();
    if !uids.is_empty() {
        inbox.move_to(&uids, dest.as_mut())?;
    }
    Ok(())
}

/// NAMESPACE (RFC 2342): one personal namespace, no prefix.
pub fn namespace(tag: &str, out: &mut Vec<u8>) -> Tagged {
    Response::Namespace {
        separator: SEPARATOR,
    }
    .encode(out);
    ok(tag, "Namespace completed.")
}

/// The NO for DELETE INBOX.
pub fn cannot_delete_inbox(tag: &str) -> Tagged {
    no(tag, Some(Code::Cannot), "INBOX can't be deleted.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(matches(b"*", b"a/b/c"));
        assert!(matches(b"%", b"Sent"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(!matches(b"a/%", b"a/b/c"));
        assert!(matches(b"a*c", b"a/b/c"));
        assert!(matches(b"S%t", b"Sent"));
        assert!(!matches(b"Sent", b"Sent2"));
        assert_eq!(full_pattern("a", "%"), "a/%");
        assert_eq!(full_pattern("a/", "%"), "a/%");
        assert_eq!(full_pattern("", "*"), "*");
        assert!(name_matches("inbox", "INBOX"));
        assert!(matches(b"%/%", b"a/b"));
        assert!(!matches(b"%/%", b"a/b/c"));
        assert!(matches(b"*%*b", b"a/b"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(!matches(b"a", b""));
    }

    #[test]
    fn wildcard_runs_collapse_and_limits_hold() {
        assert_eq!(collapse_wildcards("a**%b%%c*"), "a*b%c*");
        assert_eq!(collapse_wildcards(&"*".repeat(60_000)), "*");
        assert!(pattern_over_limits(&"%a".repeat(MAX_LIST_WILDCARDS)).is_none());
        assert!(pattern_over_limits(&"%a".repeat(MAX_LIST_WILDCARDS + 1)).is_some());
        assert!(pattern_over_limits(&"a".repeat(MAX_LIST_PATTERN_BYTES + 1)).is_some());
    }

    #[test]
    fn many_wildcards_match_in_bounded_time_and_stack() {
        // 60,000 `*` overflowed the stack; `*a*a*a…b` against `aaaa…` was exponential.
        let stars = vec![b'*'; 60_000];
        assert!(matches(&stars, b"Sent/2026/December"));
        let alternating = b"*a".repeat(200);
        assert!(!matches(
            &[alternating.as_slice(), b"*b"].concat(),
            &[b'a'; 300]
        ));
        assert!(matches(&b"%a".repeat(100), &[b'a'; 150]));
    }
}
