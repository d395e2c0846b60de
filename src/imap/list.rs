//! LIST and LSUB (RFC 3501 6.3.8–9), with LIST-EXTENDED selection and return options
//! (RFC 5258: SUBSCRIBED, SPECIAL-USE, CHILDREN, several patterns), LIST-STATUS (RFC 5819),
//! and the pattern matching they share, which holds its ground against hostile patterns.

use std::collections::{BTreeMap, BTreeSet};

use roost_protocol::imap::imap_types::mailbox::{ListMailbox, Mailbox};
use roost_protocol::imap::imap_types::status::StatusDataItemName;
use roost_protocol::imap::mutf7;
use roost_protocol::imap::response::{Code, ListAttribute, ListKind, MailboxName, Response};
use roost_protocol::imap::Extras;
use roost_storage::Error as StorageError;

use super::command::List;
use super::context::{Cx, Step};
use super::mailboxes::{special_use, status_response, SEPARATOR};
use super::state::Account;

/// LIST or LSUB.
pub fn list(account: &Account<'_>, args: &List, cx: &mut Cx<'_>) -> Step {
    let (word, kind) = if args.lsub {
        ("LSUB", ListKind::Lsub)
    } else {
        ("LIST", ListKind::List)
    };
    // LSUB has no extended syntax.
    let extras = match args.lsub {
        true => Extras::default(),
        false => std::mem::take(&mut cx.extras),
    };
    if let Some(refusal) = options_refused(&extras) {
        return Step::Reply(cx.bad(refusal));
    }
    let utf8 = account.enabled.utf8;
    let Some(patterns) = patterns(&args.reference, &args.pattern, &extras, utf8) else {
        // An empty pattern asks for the hierarchy separator (RFC 3501 6.3.8).
        if !args.lsub {
            cx.send(Response::List {
                kind,
                attributes: &[ListAttribute::Noselect],
                separator: SEPARATOR,
                mailbox: MailboxName { name: "", utf8 },
                subscribed_children: false,
            });
        }
        return Step::Reply(cx.ok(&format!("{word} completed.")));
    };
    if let Some(refusal) = patterns.iter().find_map(|p| pattern_over_limits(p)) {
        return Step::Reply(cx.no(Some(Code::Limit), refusal));
    }
    let query = Query::new(kind, patterns, &extras, utf8);
    match query.run(account) {
        Ok(lines) => {
            lines.into_iter().for_each(|line| cx.out.extend(line));
            Step::Reply(cx.ok(&format!("{word} completed.")))
        }
        Err(e) => Step::Reply(cx.failure(account.name(), &e)),
    }
}

/// The full, collapsed patterns a LIST asks for (LIST-EXTENDED may give several; a name
/// matching any of them is listed once); `None` for the empty pattern.
fn patterns(
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    extras: &Extras,
    utf8: bool,
) -> Option<Vec<String>> {
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    };
    let stored = |name: &str| match utf8 {
        true => mutf7::encode(name),
        false => name.to_string(),
    };
    let pattern = stored(&pattern_text(pattern));
    if pattern.is_empty() {
        return None;
    }
    let reference = stored(&reference);
    let given: Vec<String> = if extras.list_patterns.is_empty() {
        vec![pattern]
    } else {
        extras.list_patterns.iter().map(|p| stored(p)).collect()
    };
    let full = |p: &String| collapse_wildcards(&full_pattern(&reference, p));
    Some(given.iter().map(full).collect())
}

/// The LIST-EXTENDED selection options roost knows (RFC 5258 3.1, RFC 6154 SPECIAL-USE);
/// REMOTE is accepted and changes nothing, as there are no remote mailboxes.
const SELECTION_OPTIONS: [&str; 4] = ["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"];
/// The LIST-EXTENDED return options roost knows (RFC 5258 3.2, RFC 5819, RFC 6154).
const RETURN_OPTIONS: [&str; 4] = ["SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"];

/// Why a LIST's options are a BAD command (RFC 5258 3): an option roost does not know, or
/// RECURSIVEMATCH without a selection option it could apply to (alone or with REMOTE only).
fn options_refused(extras: &Extras) -> Option<&'static str> {
    let known = |known: &[&str], given: &[String]| given.iter().all(|o| known.contains(&&o[..]));
    if !known(&SELECTION_OPTIONS, &extras.list_select) {
        return Some("Unknown LIST selection option.");
    }
    if !known(&RETURN_OPTIONS, &extras.list_return) {
        return Some("Unknown LIST return option.");
    }
    let select = &extras.list_select;
    let recursive = select.iter().any(|o| o == "RECURSIVEMATCH");
    let other = select
        .iter()
        .any(|o| o != "RECURSIVEMATCH" && o != "REMOTE");
    (recursive && !other).then_some("RECURSIVEMATCH needs another selection option.")
}

/// What one LIST command asks for, worked out from its options.
struct Query {
    kind: ListKind,
    patterns: Vec<String>,
    /// Only subscribed names are candidates (LSUB, `(SUBSCRIBED)`).
    only_subscribed: bool,
    /// `\Subscribed` is shown.
    show_subscribed: bool,
    /// LIST-EXTENDED syntax was used: names that don't exist are `\NonExistent`.
    extended: bool,
    /// `(SPECIAL-USE)`: only special-use folders.
    special_use_only: bool,
    /// `(SUBSCRIBED RECURSIVEMATCH)`: an unsubscribed parent of a subscribed name is listed,
    /// and any name with subscribed descendants gets `CHILDINFO ("SUBSCRIBED")` (RFC 5258 3.5).
    recursive_match: bool,
    /// LIST-STATUS items, when asked for (even if none is known).
    status: Option<Vec<StatusDataItemName>>,
    utf8: bool,
}

impl Query {
    fn new(kind: ListKind, patterns: Vec<String>, extras: &Extras, utf8: bool) -> Self {
        let lsub = kind == ListKind::Lsub;
        let select = |o: &str| extras.list_select.iter().any(|x| x == o);
        let returns = |o: &str| extras.list_return.iter().any(|x| x == o);
        Self {
            kind,
            patterns,
            only_subscribed: lsub || select("SUBSCRIBED"),
            show_subscribed: !lsub && (select("SUBSCRIBED") || returns("SUBSCRIBED")),
            extended: !extras.list_select.is_empty() || !extras.list_return.is_empty(),
            special_use_only: select("SPECIAL-USE"),
            recursive_match: !lsub && select("SUBSCRIBED") && select("RECURSIVEMATCH"),
            status: (!extras.list_status.is_empty()).then(|| {
                extras
                    .list_status
                    .iter()
                    .filter_map(|i| status_item(i))
                    .collect()
            }),
            utf8,
        }
    }

    fn lsub(&self) -> bool {
        self.kind == ListKind::Lsub
    }

    /// The response lines, INBOX first.
    fn run(&self, account: &Account<'_>) -> Result<Vec<Vec<u8>>, StorageError> {
        let store = &account.store;
        let existing: BTreeSet<String> = store.folders().list()?.into_iter().collect();
        let subscribed: BTreeSet<String> = store.subscriptions()?.into_iter().collect();
        let names = self.candidates(&existing, &subscribed);
        let mut lines = Vec::new();
        for (name, real) in &names {
            if !self.patterns.iter().any(|p| name_matches(p, name)) {
                continue;
            }
            let exists = existing.contains(name);
            let children = has_children(&names, name);
            let is_subscribed = subscribed.contains(name);
            let Some(attributes) = self.attributes(name, *real, exists, children, is_subscribed)
            else {
                continue;
            };
            let child_info = self.recursive_match && has_children_in(&subscribed, name);
            let line = self.line(account, name, &attributes, exists, child_info);
            if name == "INBOX" {
                lines.insert(0, line);
            } else {
                lines.push(line);
            }
        }
        Ok(lines)
    }

    /// Every name to consider, and whether it is real (not just a parent on a path): parents
    /// that only exist as a path are listed `\Noselect`.
    fn candidates(
        &self,
        existing: &BTreeSet<String>,
        subscribed: &BTreeSet<String>,
    ) -> BTreeMap<String, bool> {
        let shown = if self.only_subscribed {
            subscribed
        } else {
            existing
        };
        // LSUB shows an unsubscribed parent only where `%` stops at it (RFC 3501 6.3.9); LIST
        // (SUBSCRIBED) lists subscribed names alone, unless RECURSIVEMATCH asks for parents of
        // subscribed children (RFC 5258 3); a plain LIST shows a missing parent as such.
        let implied_parents = if self.lsub() {
            self.patterns.iter().any(|p| p.contains('%'))
        } else if self.only_subscribed {
            self.recursive_match
        } else {
            true
        };
        let mut names = BTreeMap::new();
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
        names
    }

    /// A name's attributes; `None` when `(SPECIAL-USE)` leaves it out.
    fn attributes(
        &self,
        name: &str,
        real: bool,
        exists: bool,
        children: bool,
        subscribed: bool,
    ) -> Option<Vec<ListAttribute<'static>>> {
        let mut attrs = Vec::new();
        if !real || (!self.lsub() && !exists) {
            match (self.extended && !exists, self.recursive_match) {
                (true, _) => attrs.push(ListAttribute::NonExistent),
                // An existing parent listed only for its subscribed children can be selected.
                (false, true) => {}
                (false, false) => attrs.push(ListAttribute::Noselect),
            }
        }
        if self.lsub() {
            return Some(attrs);
        }
        attrs.push(match children {
            true => ListAttribute::HasChildren,
            false => ListAttribute::HasNoChildren,
        });
        if self.show_subscribed && subscribed {
            attrs.push(ListAttribute::Subscribed);
        }
        match special_use(name).filter(|_| !name.contains(SEPARATOR)) {
            Some(special) => attrs.push(ListAttribute::SpecialUse(special)),
            None if self.special_use_only => return None,
            None => {}
        }
        Some(attrs)
    }

    /// The LIST line, and the mailbox's STATUS line when LIST-STATUS asked for one.
    fn line(
        &self,
        account: &Account<'_>,
        name: &str,
        attributes: &[ListAttribute<'_>],
        exists: bool,
        subscribed_children: bool,
    ) -> Vec<u8> {
        let mut line = Vec::new();
        Response::List {
            kind: self.kind,
            attributes,
            separator: SEPARATOR,
            mailbox: MailboxName {
                name,
                utf8: self.utf8,
            },
            subscribed_children,
        }
        .encode(&mut line);
        if let Some(items) = self.status.as_ref().filter(|_| exists) {
            let mut status_line = Vec::new();
            // A mailbox that cannot be opened just gets no STATUS line (RFC 5819 3).
            if status_response(&account.store, name, items, self.utf8, &mut status_line).is_ok() {
                line.extend(status_line);
            }
        }
        line
    }
}

/// Whether any other candidate lies below `name`.
fn has_children(names: &BTreeMap<String, bool>, name: &str) -> bool {
    let prefix = format!("{name}{SEPARATOR}");
    names.keys().any(|other| other.starts_with(&prefix))
}

/// Whether any name of the set lies below `name` (CHILDINFO: a subscribed descendant).
fn has_children_in(names: &BTreeSet<String>, name: &str) -> bool {
    let prefix = format!("{name}{SEPARATOR}");
    names
        .range(prefix.clone()..)
        .next()
        .is_some_and(|next| next.starts_with(&prefix))
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
