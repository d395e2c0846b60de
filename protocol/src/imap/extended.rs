//! Command syntax newer than `imap-codec` parses: ESEARCH/ESORT result options (RFC 4731,
//! RFC 5267: `SEARCH RETURN (MIN MAX COUNT ALL)`) and LIST-EXTENDED (RFC 5258: selection
//! options before the reference, `RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (...))` after
//! the pattern, RFC 5819 LIST-STATUS).
//!
//! The options are lifted out of the command into [`Extras`] and the rest, now plain RFC 3501
//! syntax, goes to `imap-codec` as before, so the grammar checks stay its own.

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;

/// Options lifted out of a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// `SEARCH RETURN (...)` / `SORT RETURN (...)`: the result options, upper-cased (an empty
    /// list means `ALL`, RFC 4731).
    pub search_return: Option<Vec<String>>,
    /// LIST selection options, upper-cased (`SUBSCRIBED`, `RECURSIVEMATCH`, `SPECIAL-USE`).
    pub list_select: Vec<String>,
    /// LIST return options, upper-cased; `STATUS` is followed by its items.
    pub list_return: Vec<String>,
    /// The STATUS items of `RETURN (STATUS (...))`.
    pub list_status: Vec<String>,
    /// `LIST "" ("INBOX" "Sent*")`: every pattern of a parenthesised list (RFC 5258 3); the
    /// command keeps the first one for the grammar.
    pub list_patterns: Vec<String>,
    /// MULTIAPPEND (RFC 3502): the messages after the first, which the APPEND command holds.
    pub more_messages: Vec<AppendMessage>,
    /// CATENATE (RFC 4469): per message of the APPEND (the first one first), the parts to
    /// build it from, where it has them (its literal is then empty).
    pub catenate: Vec<Option<Vec<crate::imap::multiappend::CatPart>>>,
    /// `CANCELUPDATE "tag" ...` (RFC 5267 4.3.5): the tags whose search contexts end. The
    /// command goes to the grammar as CHECK (same state, no arguments).
    pub cancel_update: Option<Vec<String>>,
}

/// One message of a MULTIAPPEND beyond the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Its flags.
    pub flags: Vec<Flag<'static>>,
    /// Its internal date, if given.
    pub date: Option<DateTime>,
    /// The message.
    pub message: LiteralOrLiteral8<'static>,
}

/// A sequence set that names no message: what `$` becomes while nothing is saved.
pub const EMPTY_SET: u32 = u32::MAX;

/// The saved search result (RFC 5182 SEARCHRES) as the two sequence sets `$` can stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// As UIDs, for UID commands.
    pub uids: String,
    /// As sequence numbers, for the others.
    pub seqs: String,
}

/// Replaces every `$` standing as a sequence set in the command line (outside quotes, before
/// any literal) with the saved result; `None` when the line has none.
pub fn substitute_saved(message: &[u8], saved: &Saved) -> Option<Vec<u8>> {
    let line_end = message
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(message.len());
    let line = &message[..line_end];
    let upper = line.to_ascii_uppercase();
    let uid = upper.split(|&b| b == b' ').nth(1) == Some(&b"UID"[..]);
    let set = if uid { &saved.uids } else { &saved.seqs };
    let set = if set.is_empty() {
        EMPTY_SET.to_string()
    } else {
        set.clone()
    };
    let mut out = Vec::with_capacity(message.len() + set.len());
    let mut quoted = false;
    let mut found = false;
    for (i, &b) in line.iter().enumerate() {
        if b == b'"' && (i == 0 || line[i - 1] != b'\\') {
            quoted = !quoted;
        }
        let standalone = !quoted
            && b == b'$'
            && i > 0
            && matches!(line[i - 1], b' ' | b'(' | b',')
            && matches!(line.get(i + 1), None | Some(b' ' | b')' | b',' | b'\r'));
        if standalone {
            out.extend_from_slice(set.as_bytes());
            found = true;
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&message[line_end..]);
    found.then_some(out)
}

/// Rewrites a complete command message if it uses extended syntax; `None` when it does not.
pub fn extract(message: &[u8]) -> Option<(Vec<u8>, Extras)> {
    let (tag_end, _) = word(message, 0)?;
    let (kw_end, keyword) = word(message, skip_space(message, tag_end)?)?;
    let mut keyword = keyword.to_ascii_uppercase();
    let mut after_kw = kw_end;
    if keyword == b"UID" {
        let (end, next) = word(message, skip_space(message, kw_end)?)?;
        keyword = next.to_ascii_uppercase();
        after_kw = end;
    }
    match keyword.as_slice() {
        b"SEARCH" | b"SORT" => {
            let mut extras = Extras::default();
            let at = skip_space(message, after_kw)?;
            if !starts_with_ci(&message[at..], b"RETURN (") {
                return None;
            }
            let open = at + b"RETURN ".len();
            let close = matching_paren(message, open)?;
            let opts = atoms(&message[open + 1..close]);
            extras.search_return = Some(opts);
            let mut out = message[..after_kw].to_vec();
            out.extend_from_slice(&message[close + 1..]);
            Some((out, extras))
        }
        b"LIST" => extract_list(message, after_kw),
        b"CANCELUPDATE" => {
            let tags = quoted_strings(&message[after_kw..])?;
            let mut out = message[..tag_end].to_vec();
            out.extend_from_slice(b" CHECK\r\n");
            let extras = Extras {
                cancel_update: Some(tags),
                ..Extras::default()
            };
            Some((out, extras))
        }
        _ => None,
    }
}

/// LIST-EXTENDED: selection options before the reference, RETURN options after the pattern,
/// and a parenthesised pattern list, each lifted out when present.
fn extract_list(message: &[u8], after_kw: usize) -> Option<(Vec<u8>, Extras)> {
    let mut extras = Extras::default();
    let mut out = message[..after_kw].to_vec();
    let mut at = after_kw;
    let mut changed = false;
    let open = skip_space(message, after_kw)?;
    if message.get(open) == Some(&b'(') {
        let close = matching_paren(message, open)?;
        extras.list_select = atoms(&message[open + 1..close]);
        at = close + 1;
        changed = true;
    }
    let mut tail = &message[at..];
    let end = tail.len() - trailing_crlf(tail);
    if let Some(ret) = find_return(&tail[..end]) {
        let open = ret + b" RETURN ".len();
        let close = matching_paren(tail, open)?;
        parse_list_return(&tail[open + 1..close], &mut extras);
        out.extend_from_slice(&tail[..ret]);
        out.extend_from_slice(&tail[close + 1..]);
        tail = &[];
        changed = true;
    }
    out.extend_from_slice(tail);
    if let Some(rebuilt) = lift_patterns(&out, after_kw, &mut extras) {
        out = rebuilt;
        changed = true;
    }
    changed.then_some((out, extras))
}

/// Replaces a parenthesised pattern list after the LIST reference with its first pattern.
fn lift_patterns(command: &[u8], after_kw: usize, extras: &mut Extras) -> Option<Vec<u8>> {
    let start = skip_space(command, after_kw)?;
    // The reference: a quoted string or an atom.
    let ref_end = if command.get(start) == Some(&b'"') {
        let mut i = start + 1;
        while i < command.len() && command[i] != b'"' {
            i += if command[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    } else {
        start + command[start..].iter().position(|&b| b == b' ')?
    };
    let open = skip_space(command, ref_end)?;
    if command.get(open) != Some(&b'(') {
        return None;
    }
    let close = matching_paren(command, open)?;
    let inner = String::from_utf8_lossy(&command[open + 1..close]).into_owned();
    let mut patterns = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"')?;
            patterns.push(q[..end].replace("\\\"", "\"").replace("\\\\", "\\"));
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            patterns.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    let first = patterns.first()?.clone();
    let mut out = command[..open].to_vec();
    out.push(b'"');
    out.extend_from_slice(first.replace('\\', "\\\\").replace('"', "\\\"").as_bytes());
    out.push(b'"');
    out.extend_from_slice(&command[close + 1..]);
    extras.list_patterns = patterns;
    Some(out)
}

fn trailing_crlf(bytes: &[u8]) -> usize {
    if bytes.ends_with(b"\r\n") {
        2
    } else if bytes.ends_with(b"\n") {
        1
    } else {
        0
    }
}

/// The position of ` RETURN (` in the last line, when the line ends with its group.
fn find_return(line: &[u8]) -> Option<usize> {
    let upper = line.to_ascii_uppercase();
    let at = upper.windows(9).rposition(|w| w == b" RETURN (")?;
    let close = matching_paren(line, at + 8)?;
    (close + 1 == line.len()).then_some(at)
}

fn parse_list_return(inner: &[u8], extras: &mut Extras) {
    let mut at = 0;
    while at < inner.len() {
        if inner[at] == b' ' {
            at += 1;
            continue;
        }
        if inner[at] == b'(' {
            let Some(close) = matching_paren(inner, at) else {
                return;
            };
            if extras.list_return.last().map(String::as_str) == Some("STATUS") {
                extras.list_status = atoms(&inner[at + 1..close]);
            }
            at = close + 1;
            continue;
        }
        let end = inner[at..]
            .iter()
            .position(|&b| b == b' ' || b == b'(')
            .map_or(inner.len(), |p| at + p);
        extras
            .list_return
            .push(String::from_utf8_lossy(&inner[at..end]).to_ascii_uppercase());
        at = end;
    }
}

fn atoms(inner: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(inner)
        .split_ascii_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

/// `1*(SP quoted)` up to the line end: the strings, unescaped; `None` if anything else is there.
fn quoted_strings(bytes: &[u8]) -> Option<Vec<String>> {
    let line = &bytes[..bytes.len() - trailing_crlf(bytes)];
    let mut out = Vec::new();
    let mut at = 0;
    while at < line.len() {
        at = skip_space(line, at)?;
        if line.get(at) != Some(&b'"') {
            return None;
        }
        let mut text = Vec::new();
        let mut escaped = false;
        at += 1;
        loop {
            let b = *line.get(at)?;
            at += 1;
            match (escaped, b) {
                (true, _) => {
                    text.push(b);
                    escaped = false;
                }
                (false, b'\\') => escaped = true,
                (false, b'"') => break,
                (false, _) => text.push(b),
            }
        }
        out.push(String::from_utf8(text).ok()?);
    }
    (!out.is_empty()).then_some(out)
}

fn skip_space(bytes: &[u8], at: usize) -> Option<usize> {
    (bytes.get(at) == Some(&b' ')).then_some(at + 1)
}

/// The word starting at `at`: its end and its bytes.
fn word(bytes: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let len = bytes[at..]
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    (len > 0).then(|| (at + len, &bytes[at..at + len]))
}

fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The index of the `)` closing the `(` at `open` (quoted strings respected).
fn matching_paren(bytes: &[u8], open: usize) -> Option<usize> {
    if bytes.get(open) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'\r' | b'\n' => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Option<(String, Extras)> {
        extract(input.as_bytes()).map(|(b, e)| (String::from_utf8(b).unwrap(), e))
    }

    #[test]
    fn cancelupdate_becomes_check_with_its_tags() {
        let (cmd, e) = run("b4 CANCELUPDATE \"B01\" \"x\\\"y\"\r\n").unwrap();
        assert_eq!(cmd, "b4 CHECK\r\n");
        assert_eq!(e.cancel_update.unwrap(), ["B01", "x\"y"]);
        assert!(run("b4 CANCELUPDATE\r\n").is_none());
        assert!(run("b4 CANCELUPDATE B01\r\n").is_none());
        assert!(run("b4 CANCELUPDATE \"open\r\n").is_none());
    }

    #[test]
    fn search_return_options_are_lifted() {
        let saved = Saved {
            uids: "4:6".into(),
            seqs: "2,3".into(),
        };
        let sub =
            |m: &str| substitute_saved(m.as_bytes(), &saved).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(
            sub("a UID FETCH $ FLAGS\r\n").unwrap(),
            "a UID FETCH 4:6 FLAGS\r\n"
        );
        assert_eq!(sub("a FETCH $ FLAGS\r\n").unwrap(), "a FETCH 2,3 FLAGS\r\n");
        assert_eq!(
            sub("a SEARCH $ SUBJECT \"$\"\r\n").unwrap(),
            "a SEARCH 2,3 SUBJECT \"$\"\r\n"
        );
        assert!(sub("a SEARCH SUBJECT $5\r\n").is_none());
        let empty = substitute_saved(b"a FETCH $ FLAGS\r\n", &Saved::default()).unwrap();
        assert_eq!(empty, format!("a FETCH {EMPTY_SET} FLAGS\r\n").into_bytes());
        let (cmd, e) = run("a UID SEARCH RETURN (min COUNT) UNSEEN\r\n").unwrap();
        assert_eq!(cmd, "a UID SEARCH UNSEEN\r\n");
        assert_eq!(e.search_return, Some(vec!["MIN".into(), "COUNT".into()]));
        let (cmd, e) = run("b SEARCH RETURN () ALL\r\n").unwrap();
        assert_eq!(cmd, "b SEARCH ALL\r\n");
        assert_eq!(e.search_return, Some(vec![]));
        assert!(run("c SEARCH ALL\r\n").is_none());
        assert!(run("c SEARCH SUBJECT \"RETURN (x)\"\r\n").is_none());
    }

    #[test]
    fn list_extended_selection_and_return_options_are_lifted() {
        let (cmd, e) =
            run("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n")
                .unwrap();
        assert_eq!(cmd, "a LIST \"\" \"*\"\r\n");
        assert_eq!(e.list_select, vec!["SUBSCRIBED", "RECURSIVEMATCH"]);
        assert_eq!(e.list_return, vec!["CHILDREN", "STATUS"]);
        assert_eq!(e.list_status, vec!["MESSAGES", "UNSEEN"]);
        let (cmd, e) = run("b LIST \"\" % RETURN (SPECIAL-USE)\r\n").unwrap();
        assert_eq!(cmd, "b LIST \"\" %\r\n");
        assert_eq!(e.list_return, vec!["SPECIAL-USE"]);
        assert!(run("c LIST \"\" *\r\n").is_none());
        let (cmd, e) = run("d LIST \"\" (\"INBOX\" Sent*) RETURN (CHILDREN)\r\n").unwrap();
        assert_eq!(cmd, "d LIST \"\" \"INBOX\"\r\n");
        assert_eq!(e.list_patterns, vec!["INBOX", "Sent*"]);
    }
}
