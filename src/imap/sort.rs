//! SORT and THREAD (RFC 5256: ORDEREDSUBJECT and REFERENCES), on the header block the field
//! cache keeps, so the second SORT of a big folder opens no message file.

use std::cmp::Ordering;
use std::collections::HashMap;

use roost_protocol::imap::imap_types::extensions::sort::{SortCriterion, SortKey};
use roost_protocol::imap::imap_types::extensions::thread::ThreadingAlgorithm;
use roost_protocol::imap::message::header_fields;
use roost_protocol::mail_parser::{Address, HeaderValue, MessageParser};
use roost_storage::Error as StorageError;

use super::fetch::header_of;
use super::selected::Selected;

/// What sorting and threading need of one message, read from its cached header.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// RFC 5256 base subject.
    pub subject: String,
    /// Sent date (Date header, else the internal date), seconds since the epoch.
    pub date: i64,
    /// First From / To / Cc mailbox, lowercased.
    pub from: String,
    /// First To mailbox.
    pub to: String,
    /// First Cc mailbox.
    pub cc: String,
    /// Display name of the first From (or its mailbox), lowercased.
    pub display_from: String,
    /// Display name of the first To (or its mailbox).
    pub display_to: String,
    /// Message-ID without brackets.
    pub message_id: Option<String>,
    /// References (or In-Reply-To) ids, oldest first.
    pub references: Vec<String>,
}

/// Reads the sort fields of message `i`.
pub fn fields(selected: &mut Selected, i: usize) -> Result<Fields, StorageError> {
    let info = selected.messages[i].clone();
    // Only the fields sorting and threading use are parsed (never the Received chain).
    let header = header_fields(
        &header_of(selected.mailbox.as_mut(), info.uid)?,
        &[
            b"subject",
            b"date",
            b"from",
            b"to",
            b"cc",
            b"message-id",
            b"references",
            b"in-reply-to",
        ],
        false,
    );
    let internal = info
        .internal_date
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut f = Fields {
        date: internal,
        ..Fields::default()
    };
    let Some(message) = MessageParser::default().parse_headers(&header[..]) else {
        return Ok(f);
    };
    f.subject = base_subject(message.subject().unwrap_or(""));
    if let Some(d) = message.date() {
        f.date = d.to_timestamp();
    }
    let first = |a: Option<&Address<'_>>| {
        a.and_then(|a| a.first()).map(|addr| {
            let mailbox = addr.address.as_deref().unwrap_or("").to_lowercase();
            let display = addr
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(str::to_lowercase)
                .unwrap_or_else(|| mailbox.clone());
            (mailbox.split('@').next().unwrap_or("").to_string(), display)
        })
    };
    if let Some((m, d)) = first(message.from()) {
        f.from = m;
        f.display_from = d;
    }
    if let Some((m, d)) = first(message.to()) {
        f.to = m;
        f.display_to = d;
    }
    if let Some((m, _)) = first(message.cc()) {
        f.cc = m;
    }
    f.message_id = message.message_id().map(str::to_string);
    let ids = |v: &HeaderValue<'_>| -> Vec<String> {
        match v {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    f.references = ids(message.references());
    if f.references.is_empty() {
        f.references = ids(message.in_reply_to()).into_iter().take(1).collect();
    }
    Ok(f)
}

/// RFC 5256 2.1 base subject: no `Re:`/`Fwd:`/`[list]` prefixes, no `(fwd)` trailer, one space
/// between words, lowercased for comparison.
pub fn base_subject(subject: &str) -> String {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = s.clone();
        while let Some(stripped) = s.strip_suffix("(fwd)") {
            s = stripped.trim_end().to_string();
        }
        loop {
            let lower = s.to_lowercase();
            let mut rest = s.as_str();
            let mut changed = false;
            if lower.starts_with('[') {
                if let Some(end) = s.find(']') {
                    let after = s[end + 1..].trim_start();
                    if !after.is_empty() {
                        rest = after;
                        changed = true;
                    }
                }
            }
            for prefix in ["re", "fwd", "fw"] {
                if lower.starts_with(prefix) {
                    let after = &s[prefix.len()..];
                    let after = after.trim_start();
                    let after = match after.strip_prefix('[') {
                        Some(a) => a.find(']').map_or(after, |e| a[e + 1..].trim_start()),
                        None => after,
                    };
                    if let Some(a) = after.strip_prefix(':') {
                        rest = a.trim_start();
                        changed = true;
                        break;
                    }
                }
            }
            if !changed {
                break;
            }
            s = rest.to_string();
        }
        let lower = s.to_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].trim().to_string();
        }
        if s == before {
            return s.to_lowercase();
        }
    }
}

/// Sorts the indexes `hits` by the criteria (ties by sequence number, RFC 5256).
pub fn sort(
    selected: &mut Selected,
    hits: &[usize],
    criteria: &[SortCriterion],
) -> Result<Vec<usize>, StorageError> {
    let mut keyed = Vec::with_capacity(hits.len());
    for &i in hits {
        let needs_header = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let f = if needs_header {
            fields(selected, i)?
        } else {
            Fields::default()
        };
        let size = if criteria.iter().any(|c| matches!(c.key, SortKey::Size)) {
            selected.mailbox.crlf_size(selected.messages[i].uid)?
        } else {
            0
        };
        keyed.push((i, f, size));
    }
    keyed.sort_by(|a, b| {
        for c in criteria {
            let ord = match c.key {
                SortKey::Arrival => selected.messages[a.0]
                    .internal_date
                    .cmp(&selected.messages[b.0].internal_date),
                SortKey::Size => a.2.cmp(&b.2),
                SortKey::Date => a.1.date.cmp(&b.1.date),
                SortKey::Subject => a.1.subject.cmp(&b.1.subject),
                SortKey::From => a.1.from.cmp(&b.1.from),
                SortKey::To => a.1.to.cmp(&b.1.to),
                SortKey::Cc => a.1.cc.cmp(&b.1.cc),
                SortKey::DisplayFrom => a.1.display_from.cmp(&b.1.display_from),
                SortKey::DisplayTo => a.1.display_to.cmp(&b.1.display_to),
            };
            let ord = if c.reverse { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.0.cmp(&b.0)
    });
    Ok(keyed.into_iter().map(|(i, _, _)| i).collect())
}

/// A thread tree node: a message index, or a placeholder for a message we don't have.
#[derive(Debug, Default)]
struct Node {
    message: Option<usize>,
    date: i64,
    children: Vec<usize>,
    parent: Option<usize>,
}

/// THREAD: the nested `(a b (c)(d))` list of message numbers (`number` maps index → the number
/// the client wants: sequence number or UID).
pub fn thread(
    selected: &mut Selected,
    hits: &[usize],
    algorithm: &ThreadingAlgorithm<'_>,
    number: impl Fn(usize) -> u32,
) -> Result<Option<String>, StorageError> {
    let mut all = Vec::with_capacity(hits.len());
    for &i in hits {
        all.push((i, fields(selected, i)?));
    }
    let roots = match algorithm {
        ThreadingAlgorithm::OrderedSubject => ordered_subject(&all),
        ThreadingAlgorithm::References => references(&all),
        _ => return Ok(None),
    };
    let (nodes, roots) = roots;
    let mut out = String::new();
    for root in roots {
        out.push('(');
        render(&nodes, root, &number, &mut out);
        out.push(')');
    }
    Ok(Some(out))
}

fn render(nodes: &[Node], at: usize, number: &impl Fn(usize) -> u32, out: &mut String) {
    let node = &nodes[at];
    let mut first = true;
    if let Some(m) = node.message {
        out.push_str(&number(m).to_string());
        first = false;
    }
    match node.children.len() {
        0 => {}
        1 => {
            if !first {
                out.push(' ');
            }
            render(nodes, node.children[0], number, out);
        }
        _ => {
            if !first {
                out.push(' ');
            }
            for &c in &node.children {
                out.push('(');
                render(nodes, c, number, out);
                out.push(')');
            }
        }
    }
}

/// ORDEREDSUBJECT: one thread per base subject, oldest first; the rest are the first's children.
fn ordered_subject(all: &[(usize, Fields)]) -> (Vec<Node>, Vec<usize>) {
    let mut sorted: Vec<&(usize, Fields)> = all.iter().collect();
    sorted.sort_by(|a, b| {
        (a.1.subject.as_str(), a.1.date, a.0).cmp(&(b.1.subject.as_str(), b.1.date, b.0))
    });
    let mut nodes: Vec<Node> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for (i, f) in sorted {
        let id = nodes.len();
        nodes.push(Node {
            message: Some(*i),
            date: f.date,
            ..Node::default()
        });
        match &current {
            Some((subject, root)) if *subject == f.subject => {
                let root = *root;
                nodes[root].children.push(id);
                nodes[id].parent = Some(root);
            }
            _ => {
                roots.push(id);
                current = Some((f.subject.clone(), id));
            }
        }
    }
    roots.sort_by_key(|&r| (nodes[r].date, nodes[r].message));
    (nodes, roots)
}

/// REFERENCES (RFC 5256 / JWZ): parents from References/In-Reply-To, placeholders for missing
/// messages pruned, roots with the same base subject gathered, siblings by date.
fn references(all: &[(usize, Fields)]) -> (Vec<Node>, Vec<usize>) {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    fn node_for(by_id: &mut HashMap<String, usize>, id: &str, nodes: &mut Vec<Node>) -> usize {
        *by_id.entry(id.to_string()).or_insert_with(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        })
    }
    let is_ancestor = |nodes: &[Node], ancestor: usize, mut of: usize| loop {
        if of == ancestor {
            return true;
        }
        match nodes[of].parent {
            Some(p) => of = p,
            None => return false,
        }
    };
    for (i, f) in all {
        let own = match &f.message_id {
            Some(id) if by_id.get(id).is_none_or(|&n| nodes[n].message.is_none()) => {
                node_for(&mut by_id, id, &mut nodes)
            }
            _ => {
                nodes.push(Node::default());
                nodes.len() - 1
            }
        };
        nodes[own].message = Some(*i);
        nodes[own].date = f.date;
        let mut prev: Option<usize> = None;
        for r in &f.references {
            let n = node_for(&mut by_id, r, &mut nodes);
            if let Some(p) = prev {
                if nodes[n].parent.is_none() && !is_ancestor(&nodes, n, p) && n != p {
                    nodes[n].parent = Some(p);
                }
            }
            prev = Some(n);
        }
        if let Some(p) = prev {
            if p != own && !is_ancestor(&nodes, own, p) {
                nodes[own].parent = Some(p);
            }
        }
    }
    for n in 0..nodes.len() {
        if let Some(p) = nodes[n].parent {
            nodes[p].children.push(n);
        }
    }
    // A placeholder's date is its earliest descendant's.
    fn settle(nodes: &mut [Node], at: usize) -> i64 {
        let children = nodes[at].children.clone();
        let mut earliest = if nodes[at].message.is_some() {
            nodes[at].date
        } else {
            i64::MAX
        };
        for c in children {
            earliest = earliest.min(settle(nodes, c));
        }
        if nodes[at].message.is_none() {
            nodes[at].date = earliest;
        }
        earliest
    }
    let mut roots: Vec<usize> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .collect();
    for &r in &roots {
        settle(&mut nodes, r);
    }
    // Prune placeholders: drop childless ones, let their children take their place.
    fn prune(nodes: &mut Vec<Node>, list: Vec<usize>, at_root: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for n in list {
            let children = std::mem::take(&mut nodes[n].children);
            let children = prune(nodes, children, false);
            if nodes[n].message.is_none() {
                if children.is_empty() {
                    continue;
                }
                if !at_root || children.len() == 1 {
                    out.extend(children);
                    continue;
                }
            }
            nodes[n].children = children;
            out.push(n);
        }
        out
    }
    roots = prune(&mut nodes, roots, true);
    fn order(nodes: &mut Vec<Node>, list: &mut [usize]) {
        list.sort_by_key(|&n| (nodes[n].date, nodes[n].message));
        for &n in list.iter() {
            let mut children = std::mem::take(&mut nodes[n].children);
            order(nodes, &mut children);
            nodes[n].children = children;
        }
    }
    order(&mut nodes, &mut roots);
    (nodes, roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_drop_reply_and_list_prefixes() {
        assert_eq!(
            base_subject("Re: Fwd: [list] Hello  world (fwd)"),
            "hello world"
        );
        assert_eq!(base_subject("RE[2]: hi"), "hi");
        assert_eq!(base_subject("[Fwd: report]"), "report");
        assert_eq!(base_subject("[only]"), "[only]");
        assert_eq!(base_subject("Plain"), "plain");
    }

    fn f(subject: &str, date: i64, id: &str, refs: &[&str]) -> Fields {
        Fields {
            subject: base_subject(subject),
            date,
            message_id: Some(id.into()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..Fields::default()
        }
    }

    fn show(pair: (Vec<Node>, Vec<usize>)) -> String {
        let (nodes, roots) = pair;
        let mut out = String::new();
        for r in roots {
            out.push('(');
            render(&nodes, r, &|i| i as u32 + 1, &mut out);
            out.push(')');
        }
        out
    }

    #[test]
    fn references_threads_replies_under_their_parents() {
        let all = vec![
            (0, f("a", 1, "1@x", &[])),
            (1, f("Re: a", 2, "2@x", &["1@x"])),
            (2, f("b", 3, "3@x", &[])),
            (3, f("Re: a", 4, "4@x", &["1@x"])),
            (4, f("Re: a", 5, "5@x", &["1@x", "2@x"])),
            (5, f("orphan", 6, "6@x", &["missing@x"])),
        ];
        assert_eq!(show(references(&all)), "(1 (2 5)(4))(3)(6)");
        assert_eq!(show(ordered_subject(&all)), "(1 (2)(4)(5))(3)(6)");
    }
}
