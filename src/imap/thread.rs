//! THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over the fields [`super::sort::fields`] reads.
//!
//! Every walk over the thread forest is a loop with a heap stack, never a recursion: a chain of
//! `References:` is attacker-controlled (one message may carry thousands of ids, and a mailbox
//! may hold a reply chain thousands of messages long), and a recursion per level would let one
//! email overflow the stack of the process serving everyone. Loops that bad `References:` build
//! are cut after linking, in one pass, instead of walking up the tree for every new link.

use std::collections::HashMap;

use roost_protocol::imap::imap_types::extensions::thread::ThreadingAlgorithm;
use roost_protocol::imap::response::Response;
use roost_storage::Error as StorageError;

use super::command::Thread;
use super::context::{Cx, Step};
use super::search::{find, number};
use super::selected::Selected;
use super::sort::{fields_of, Fields};
use super::state::Account;

/// Only the last this many `References:` ids of a message are threaded: the nearest ancestors,
/// which place the message; older ones only repeat what its parent's own header says.
pub const MAX_REFERENCES: usize = 1000;

/// A thread tree node: a message index, or a placeholder for a message we don't have.
#[derive(Debug, Default)]
struct Node {
    message: Option<usize>,
    date: i64,
    children: Vec<usize>,
    parent: Option<usize>,
}

/// The thread forest: every node, and the roots in display order.
struct Forest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

/// THREAD (RFC 5256): ORDEREDSUBJECT or REFERENCES, as `* THREAD (...)`.
pub fn thread_command(
    account: &Account<'_>,
    selected: &mut Selected,
    args: &Thread,
    cx: &mut Cx<'_>,
) -> Step {
    let hits = match find(account, selected, Some(&args.charset), &args.keys, cx) {
        Ok(hits) => hits,
        Err(refused) => return Step::Reply(refused),
    };
    let numbers: Vec<u32> = (0..selected.len())
        .map(|i| number(selected, i, args.uid))
        .collect();
    Step::Reply(
        match thread(selected, &hits, &args.algorithm, |i| numbers[i]) {
            Ok(Some(threads)) => {
                cx.send(Response::Thread(&threads));
                cx.ok("Thread completed.")
            }
            Ok(None) => cx.bad("Unknown threading algorithm."),
            Err(e) => cx.failure(account.name(), &e),
        },
    )
}

/// THREAD: the nested `(a b (c)(d))` list of message numbers (`number` maps index → the number
/// the client wants: sequence number or UID).
pub fn thread(
    selected: &mut Selected,
    hits: &[usize],
    algorithm: &ThreadingAlgorithm<'_>,
    number: impl Fn(usize) -> u32,
) -> Result<Option<String>, StorageError> {
    let all = fields_of(selected, hits)?;
    let forest = match algorithm {
        ThreadingAlgorithm::OrderedSubject => ordered_subject(&all),
        ThreadingAlgorithm::References => references(&all),
        _ => return Ok(None),
    };
    Ok(Some(render(&forest, &number)))
}

/// Writes the forest as RFC 5256 thread lists, depth-first with an explicit stack.
fn render(forest: &Forest, number: &impl Fn(usize) -> u32) -> String {
    enum Step {
        Node(usize),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack: Vec<Step> = Vec::new();
    for &root in forest.roots.iter().rev() {
        stack.extend([Step::Text(")"), Step::Node(root), Step::Text("(")]);
    }
    while let Some(step) = stack.pop() {
        let at = match step {
            Step::Text(text) => {
                out.push_str(text);
                continue;
            }
            Step::Node(at) => at,
        };
        let node = &forest.nodes[at];
        if let Some(m) = node.message {
            out.push_str(&number(m).to_string());
        }
        let space = node.message.is_some() && !node.children.is_empty();
        match node.children.as_slice() {
            [] => {}
            [only] => stack.push(Step::Node(*only)),
            children => {
                for &c in children.iter().rev() {
                    stack.extend([Step::Text(")"), Step::Node(c), Step::Text("(")]);
                }
            }
        }
        if space {
            stack.push(Step::Text(" "));
        }
    }
    out
}

/// ORDEREDSUBJECT: one thread per base subject, oldest first; the rest are the first's children.
fn ordered_subject(all: &[(usize, Fields)]) -> Forest {
    let mut sorted: Vec<&(usize, Fields)> = all.iter().collect();
    sorted.sort_by(|a, b| {
        (a.1.subject.as_str(), a.1.date, a.0).cmp(&(b.1.subject.as_str(), b.1.date, b.0))
    });
    let mut nodes: Vec<Node> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    for (i, f) in sorted {
        let id = nodes.len();
        nodes.push(Node {
            message: Some(*i),
            date: f.date,
            ..Node::default()
        });
        match current {
            Some((subject, root)) if subject == f.subject => {
                nodes[root].children.push(id);
                nodes[id].parent = Some(root);
            }
            _ => {
                roots.push(id);
                current = Some((f.subject.as_str(), id));
            }
        }
    }
    roots.sort_by_key(|&r| (nodes[r].date, nodes[r].message));
    Forest { nodes, roots }
}

/// REFERENCES (RFC 5256 / JWZ): parents from References/In-Reply-To, placeholders for missing
/// messages pruned, siblings by date.
fn references(all: &[(usize, Fields)]) -> Forest {
    let mut nodes = link(all);
    cut_loops(&mut nodes);
    for n in 0..nodes.len() {
        if let Some(p) = nodes[n].parent {
            nodes[p].children.push(n);
        }
    }
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .collect();
    let preorder = preorder(&nodes, &roots);
    settle_placeholder_dates(&mut nodes, &preorder);
    let mut roots = prune(&mut nodes, &preorder, roots);
    let by_date = |nodes: &[Node], list: &mut Vec<usize>| {
        list.sort_by_key(|&n| (nodes[n].date, nodes[n].message));
    };
    for n in 0..nodes.len() {
        let mut children = std::mem::take(&mut nodes[n].children);
        by_date(&nodes, &mut children);
        nodes[n].children = children;
    }
    by_date(&nodes, &mut roots);
    Forest { nodes, roots }
}

/// RFC 5256 step 1: a node per message and per referenced id, each reference chain linked
/// parent to child (an existing link is kept), each message under its last reference.
fn link<'a>(all: &'a [(usize, Fields)]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut node_for = |nodes: &mut Vec<Node>, id: &'a str| -> usize {
        *by_id.entry(id).or_insert_with(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        })
    };
    for (i, f) in all {
        let own = match &f.message_id {
            Some(id) => {
                let n = node_for(&mut nodes, id);
                if nodes[n].message.is_some() {
                    // A second message with the same Message-ID gets a node of its own.
                    nodes.push(Node::default());
                    nodes.len() - 1
                } else {
                    n
                }
            }
            None => {
                nodes.push(Node::default());
                nodes.len() - 1
            }
        };
        nodes[own].message = Some(*i);
        nodes[own].date = f.date;
        let nearest = &f.references[f.references.len().saturating_sub(MAX_REFERENCES)..];
        let mut prev: Option<usize> = None;
        for r in nearest {
            let n = node_for(&mut nodes, r);
            if let Some(p) = prev {
                if nodes[n].parent.is_none() && n != p {
                    nodes[n].parent = Some(p);
                }
            }
            prev = Some(n);
        }
        if let Some(p) = prev.filter(|&p| p != own) {
            nodes[own].parent = Some(p);
        }
    }
    nodes
}

/// Every node has at most one parent, so a loop is a cycle of parent links: follow each chain
/// once (nodes on the current chain are marked), and cut the link that closes a cycle.
fn cut_loops(nodes: &mut [Node]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnChain,
        Done,
    }
    let mut mark = vec![Mark::New; nodes.len()];
    let mut chain = Vec::new();
    for start in 0..nodes.len() {
        let mut at = start;
        while mark[at] == Mark::New {
            mark[at] = Mark::OnChain;
            chain.push(at);
            match nodes[at].parent {
                Some(p) if mark[p] == Mark::OnChain => {
                    nodes[at].parent = None;
                    break;
                }
                Some(p) => at = p,
                None => break,
            }
        }
        for n in chain.drain(..) {
            mark[n] = Mark::Done;
        }
    }
}

/// The nodes of the forest, each before its descendants.
fn preorder(nodes: &[Node], roots: &[usize]) -> Vec<usize> {
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(nodes[n].children.iter().rev());
    }
    order
}

/// A placeholder's date is its earliest descendant's (children are settled before parents).
fn settle_placeholder_dates(nodes: &mut [Node], preorder: &[usize]) {
    for &n in preorder.iter().rev() {
        if nodes[n].message.is_some() {
            continue;
        }
        let earliest = nodes[n]
            .children
            .iter()
            .map(|&c| nodes[c].date)
            .min()
            .unwrap_or(i64::MAX);
        nodes[n].date = earliest;
    }
}

/// Prunes placeholders (RFC 5256 step 4): a childless one goes; a non-root one, or a root one
/// with a single child, is replaced by its children. Returns the new roots.
fn prune(nodes: &mut [Node], preorder: &[usize], roots: Vec<usize>) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Fate {
        Keep,
        Drop,
        Promote,
    }
    let mut fate = vec![Fate::Keep; nodes.len()];
    let flatten = |nodes: &mut [Node], fate: &[Fate], list: Vec<usize>| -> Vec<usize> {
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            match fate[c] {
                Fate::Keep => out.push(c),
                Fate::Drop => {}
                Fate::Promote => out.append(&mut nodes[c].children),
            }
        }
        out
    };
    for &n in preorder.iter().rev() {
        let children = std::mem::take(&mut nodes[n].children);
        nodes[n].children = flatten(nodes, &fate, children);
        let is_root = nodes[n].parent.is_none();
        fate[n] = match (nodes[n].message, nodes[n].children.len()) {
            (Some(_), _) => Fate::Keep,
            (None, 0) => Fate::Drop,
            (None, 1) => Fate::Promote,
            (None, _) if is_root => Fate::Keep,
            (None, _) => Fate::Promote,
        };
    }
    flatten(nodes, &fate, roots)
}

#[cfg(test)]
mod tests {
    use super::super::sort::base_subject;
    use super::*;

    fn f(subject: &str, date: i64, id: &str, refs: &[&str]) -> Fields {
        Fields {
            subject: base_subject(subject),
            date,
            message_id: Some(id.into()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..Fields::default()
        }
    }

    fn show(forest: Forest) -> String {
        render(&forest, &|i| i as u32 + 1)
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

    #[test]
    fn placeholders_are_pruned_and_loops_cut() {
        let all = vec![
            // Two replies to a message we don't have: a placeholder root with two children.
            (0, f("x", 1, "1@x", &["gone@x"])),
            (1, f("x", 2, "2@x", &["gone@x"])),
            // Each claims the other as its parent.
            (2, f("y", 3, "3@x", &["4@x"])),
            (3, f("y", 4, "4@x", &["3@x"])),
        ];
        let shown = show(references(&all));
        assert!(shown.starts_with("((1)(2))"), "{shown}");
        assert!(shown.contains('3') && shown.contains('4'), "{shown}");
    }

    #[test]
    fn a_long_reply_chain_threads_without_deep_recursion() {
        // 200,000 messages each replying to the previous one: one thread, on a small stack.
        let joined = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let n: usize = 200_000;
                let all: Vec<(usize, Fields)> = (0..n)
                    .map(|i| {
                        let refs: Vec<String> =
                            (i.saturating_sub(3)..i).map(|r| format!("{r}@x")).collect();
                        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                        (i, f("chain", i as i64, &format!("{i}@x"), &refs))
                    })
                    .collect();
                let shown = show(references(&all));
                assert!(shown.starts_with("(1 2 3 "), "{}", &shown[..20]);
                assert_eq!(shown.matches('(').count(), 1);
            })
            .expect("thread starts")
            .join();
        assert!(joined.is_ok());
    }

    #[test]
    fn one_message_with_thousands_of_references_is_threaded() {
        let refs: Vec<String> = (0..100_000).map(|r| format!("{r}@x")).collect();
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let all = vec![(0, f("big", 1, "me@x", &refs))];
        assert_eq!(show(references(&all)), "(1)");
    }
}
