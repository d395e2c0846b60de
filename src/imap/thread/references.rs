//! THREAD=REFERENCES (RFC 5256 section 4, after JWZ): messages linked by References and
//! In-Reply-To, dummies pruned, threads of one base subject gathered, siblings by sent date.
//!
//! Every walk over the thread forest is a loop with a heap stack, never a recursion: a chain of
//! `References:` is attacker-controlled (one message may carry thousands of ids, and a mailbox
//! may hold a reply chain thousands of messages long), and a recursion per level would let one
//! email overflow the stack of the process serving everyone. Whether a link would close a loop
//! is asked when the link is made, as the RFC says, of a link-cut tree ([`super::links`]), so
//! it costs a logarithm, not a walk up the thread.

use std::collections::HashMap;

use super::super::sort::Fields;
use super::links::Links;
use super::{date_key, Forest, Node};

/// Only the last this many `References:` ids of a message are threaded: the nearest ancestors,
/// which place the message; older ones only repeat what its parent's own header says.
pub const MAX_REFERENCES: usize = 1000;

/// REFERENCES (RFC 5256 section 4, after JWZ), step by step: (1) link messages by
/// References/In-Reply-To, (2) the parentless ones are the roots, (3) prune dummies, (4) sort
/// the roots, (5) gather roots of one base subject, (6) sort every set of siblings.
pub(super) fn references(all: &[(usize, Fields)]) -> Forest {
    let mut nodes = link(all);
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .collect();
    let order = preorder(&nodes, &roots);
    let mut roots = prune(&mut nodes, &order, roots);
    sort_siblings(&mut nodes, all, &mut roots);
    let mut roots = gather_subjects(&mut nodes, all, &roots);
    sort_siblings(&mut nodes, all, &mut roots);
    Forest { nodes, roots }
}

/// Step 1: a node per message and per referenced id. Each message's references are linked
/// parent to child where the child has no parent yet (1.A); then the message goes under its
/// last reference, in place of any parent an earlier (truncated) References gave it, or under
/// none without references (1.B). A link that would make a node its own ancestor is not made,
/// at the moment it is asked for. A message whose Message-ID an earlier message has (or that
/// has none) gets a node of its own.
fn link(all: &[(usize, Fields)]) -> Vec<Node> {
    fn add(links: &mut Links, messages: &mut Vec<Option<usize>>) -> usize {
        messages.push(None);
        links.add()
    }
    let mut links = Links::default();
    let mut messages: Vec<Option<usize>> = Vec::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (at, (_, f)) in all.iter().enumerate() {
        let own = match f.message_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => match by_id.get(id) {
                Some(&n) if messages[n].is_none() => n,
                Some(_) => add(&mut links, &mut messages),
                None => {
                    let n = add(&mut links, &mut messages);
                    by_id.insert(id, n);
                    n
                }
            },
            None => add(&mut links, &mut messages),
        };
        messages[own] = Some(at);
        let nearest = &f.references[f.references.len().saturating_sub(MAX_REFERENCES)..];
        let mut last: Option<usize> = None;
        for id in nearest.iter().filter(|id| !id.is_empty()) {
            let n = match by_id.get(id.as_str()) {
                Some(&n) => n,
                None => {
                    let n = add(&mut links, &mut messages);
                    by_id.insert(id, n);
                    n
                }
            };
            if let Some(p) = last {
                if links.parent(n).is_none() {
                    links.link(n, p);
                }
            }
            last = Some(n);
        }
        if links.parent(own) != last {
            links.cut(own);
            if let Some(p) = last {
                links.link(own, p);
            }
        }
    }
    let mut nodes: Vec<Node> = (0..links.len())
        .map(|n| Node {
            message: messages[n],
            children: Vec::new(),
            parent: links.parent(n),
        })
        .collect();
    for n in 0..nodes.len() {
        if let Some(p) = nodes[n].parent {
            nodes[p].children.push(n);
        }
    }
    nodes
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

/// Step 3: a dummy without children goes; a dummy with children goes and its children take
/// its place, except that several children of a root dummy stay under it (only a single one
/// is promoted to the root). Bottom-up, so a dummy's children are settled before it is.
/// Returns the new roots.
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
    let roots = flatten(nodes, &fate, roots);
    for &r in &roots {
        nodes[r].parent = None;
    }
    roots
}

/// Steps 4 and 6: every set of siblings, and the roots, in sent-date order; a dummy sorts as
/// its first child (after its own children are sorted), so keys are settled bottom-up.
fn sort_siblings(nodes: &mut [Node], all: &[(usize, Fields)], roots: &mut [usize]) {
    let order = preorder(nodes, roots);
    let mut key = vec![(i64::MAX, usize::MAX); nodes.len()];
    for &n in order.iter().rev() {
        let mut children = std::mem::take(&mut nodes[n].children);
        children.sort_by_key(|&c| key[c]);
        key[n] = match (nodes[n].message, children.first()) {
            (Some(at), _) => date_key(all, at),
            (None, Some(&first)) => key[first],
            (None, None) => (i64::MAX, usize::MAX),
        };
        nodes[n].children = children;
    }
    roots.sort_by_key(|&r| key[r]);
}

/// Step 5: roots whose threads share a base subject are gathered, in root order: each joins
/// the root [`subject_table`] keeps for its subject. A dummy's children join a dummy; a message
/// goes under a dummy, or under a non-reply when it is a reply; two messages otherwise become
/// the children of a new dummy, which takes the table's place. Empty subjects stay apart.
fn gather_subjects(nodes: &mut Vec<Node>, all: &[(usize, Fields)], roots: &[usize]) -> Vec<usize> {
    // A root's subject: its message's, or its first child's for a dummy.
    let subjects: Vec<&str> = roots
        .iter()
        .map(|&r| {
            let message = nodes[r]
                .message
                .or_else(|| nodes[r].children.first().and_then(|&c| nodes[c].message));
            message.map_or("", |at| all[at].1.subject.as_str())
        })
        .collect();
    let mut table = subject_table(nodes, all, roots, &subjects);
    let mut gone = vec![false; nodes.len()];
    let mut added = Vec::new();
    for (&r, &subject) in roots.iter().zip(&subjects) {
        let Some(&held) = table.get(subject) else {
            continue;
        };
        if held == r || gone[r] {
            continue;
        }
        gone[r] = true;
        let is_reply = |n: usize| is_reply(nodes, all, n);
        match (nodes[held].message, nodes[r].message) {
            (None, None) => {
                let children = std::mem::take(&mut nodes[r].children);
                for &c in &children {
                    adopt(nodes, held, c);
                }
            }
            (None, Some(_)) => adopt(nodes, held, r),
            (Some(_), Some(_)) if is_reply(r) && !is_reply(held) => adopt(nodes, held, r),
            _ => {
                let joint = nodes.len();
                nodes.push(Node::default());
                gone.push(false);
                adopt(nodes, joint, held);
                adopt(nodes, joint, r);
                gone[held] = true;
                added.push(joint);
                table.insert(subject, joint);
            }
        }
    }
    let kept = roots.iter().copied().filter(|&r| !gone[r]);
    kept.chain(added).collect()
}

/// Step 5.B: for each non-empty subject, the root the others join: the first dummy if there
/// is one, else the first message that is not a reply or forward if there is one, else the
/// first message.
fn subject_table<'a>(
    nodes: &[Node],
    all: &[(usize, Fields)],
    roots: &[usize],
    subjects: &[&'a str],
) -> HashMap<&'a str, usize> {
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (&r, &subject) in roots.iter().zip(subjects) {
        if subject.is_empty() {
            continue;
        }
        let held = *table.entry(subject).or_insert(r);
        let dummy = |n: usize| nodes[n].message.is_none();
        let reply = |n: usize| is_reply(nodes, all, n);
        if !dummy(held) && (dummy(r) || reply(held) && !reply(r)) {
            table.insert(subject, r);
        }
    }
    table
}

/// Whether node `n` is a message whose subject marked it a reply or forward.
fn is_reply(nodes: &[Node], all: &[(usize, Fields)], n: usize) -> bool {
    nodes[n]
        .message
        .is_some_and(|at| all[at].1.reply_or_forward)
}

/// Makes root `child` the last child of `parent`.
fn adopt(nodes: &mut [Node], parent: usize, child: usize) {
    nodes[child].parent = Some(parent);
    nodes[parent].children.push(child);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{f, show};
    use super::*;

    #[test]
    fn placeholders_are_pruned_and_loops_cut() {
        let all = vec![
            // Two replies to a message we don't have: a placeholder root with two children.
            (0, f("x", 1, "1@x", &["gone@x"])),
            (1, f("x", 2, "2@x", &["gone@x"])),
            // Each claims the other as its parent: the second link would close the loop, so
            // it is not made, and 4 stays the parent of 3.
            (2, f("y", 3, "3@x", &["4@x"])),
            (3, f("y", 4, "4@x", &["3@x"])),
        ];
        assert_eq!(show(references(&all)), "((1)(2))(4 3)");
    }

    #[test]
    fn dummies_go_or_give_way_to_their_children() {
        let all = vec![
            // A chain of missing ancestors above one message: all of them pruned.
            (0, f("a", 1, "1@x", &["g1@x", "g2@x", "g3@x"])),
            // A missing message between 2 and its two replies: they move up to 2.
            (1, f("b", 2, "2@x", &[])),
            (2, f("Re: b", 4, "3@x", &["2@x", "g4@x"])),
            (3, f("Re: b", 3, "4@x", &["2@x", "g4@x"])),
            // A reference nobody else makes: no trace of it.
            (4, f("c", 5, "5@x", &["g5@x"])),
        ];
        assert_eq!(show(references(&all)), "(1)(2 (4)(3))(5)");
    }

    #[test]
    fn a_message_keeps_its_own_last_reference_as_parent() {
        let all = vec![
            // 1 says p > q > 1 (its References may be truncated)...
            (0, f("Re: q", 3, "1@x", &["p@x", "q@x"])),
            // ...but q itself says its parent is r: q moves under r, and p is left alone.
            (1, f("q", 2, "q@x", &["r@x"])),
            (2, f("p", 1, "p@x", &[])),
        ];
        assert_eq!(show(references(&all)), "(3)(2 1)");
        // A message naming only itself, and one naming itself last, has no parent.
        let own = vec![
            (0, f("s", 1, "s@x", &["s@x"])),
            (1, f("t", 2, "t@x", &["s@x", "t@x"])),
        ];
        assert_eq!(show(references(&own)), "(1)(2)");
    }

    #[test]
    fn duplicate_and_missing_message_ids_get_nodes_of_their_own() {
        let mut none = f("z", 4, "", &["1@x"]);
        none.message_id = None;
        let all = vec![
            (0, f("x", 1, "1@x", &[])),
            (1, f("y", 2, "1@x", &[])),
            (2, f("Re: x", 3, "2@x", &["1@x"])),
            (3, none),
        ];
        // The reply goes to the first message with the id; the message without one is placed
        // by its References all the same.
        assert_eq!(show(references(&all)), "(1 (3)(4))(2)");
    }

    #[test]
    fn step_five_gathers_threads_of_one_subject() {
        let all = vec![
            // A reply without references goes under the non-reply, whichever came first.
            (0, f("Re: a", 1, "1@x", &[])),
            (1, f("a", 2, "2@x", &[])),
            // Two non-replies (or two replies) meet under a new dummy.
            (2, f("b", 3, "3@x", &[])),
            (3, f("B", 4, "4@x", &[])),
            (4, f("Re: c", 5, "5@x", &[])),
            (5, f("c (fwd)", 6, "6@x", &[])),
            // A dummy thread (two replies to a missing message) takes in a message of its
            // subject, and another dummy's children.
            (6, f("Re: d", 7, "7@x", &["gone@x"])),
            (7, f("Re: d", 8, "8@x", &["gone@x"])),
            (8, f("d", 9, "9@x", &[])),
            (9, f("Re: d", 10, "10@x", &["lost@x"])),
            (10, f("Re: d", 11, "11@x", &["lost@x"])),
            // Empty subjects are never gathered.
            (11, f("", 12, "12@x", &[])),
            (12, f("Re:", 13, "13@x", &[])),
        ];
        assert_eq!(
            show(references(&all)),
            "(2 1)((3)(4))((5)(6))((7)(8)(9)(10)(11))(12)(13)"
        );
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
