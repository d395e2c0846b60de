//! THREAD (RFC 5256): ORDEREDSUBJECT here, REFERENCES in [`references`], over the fields
//! [`super::sort::fields`] reads, and the thread lists both are written as. Walks over the
//! forest (rendering included) are loops with a heap stack: its depth is the senders' to choose.

mod links;
mod references;

use roost_protocol::imap::imap_types::extensions::thread::ThreadingAlgorithm;
use roost_protocol::imap::response::Response;
use roost_storage::Error as StorageError;

use super::command::Thread;
use super::context::{Cx, Step};
use super::search::{find, number};
use super::selected::Selected;
use super::sort::{fields_of, Fields};
use super::state::Account;
use references::references;

/// A thread tree node: a message (its position in the threaded list), or a dummy standing for
/// a message we don't have (or, after step 5 of REFERENCES, for a subject).
#[derive(Debug, Default)]
struct Node {
    message: Option<usize>,
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
    Ok(Some(render(&forest, &|at| number(all[at].0))))
}

/// Writes the forest as RFC 5256 thread lists, depth-first with an explicit stack: a single
/// child follows its parent after a space, several children are each parenthesised.
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

/// The sent-date order of RFC 5256: the sent date, then the sequence number.
fn date_key(all: &[(usize, Fields)], at: usize) -> (i64, usize) {
    (all[at].1.date, all[at].0)
}

/// ORDEREDSUBJECT: the messages sorted by base subject, then sent date; each run of one base
/// subject is a thread whose first message is the parent of all the others (so there are no
/// grandchildren); threads ordered by the sent date of their first message.
fn ordered_subject(all: &[(usize, Fields)]) -> Forest {
    let mut sorted: Vec<usize> = (0..all.len()).collect();
    sorted.sort_by(|&a, &b| {
        (&all[a].1.subject, date_key(all, a)).cmp(&(&all[b].1.subject, date_key(all, b)))
    });
    let mut nodes: Vec<Node> = (0..all.len())
        .map(|at| Node {
            message: Some(at),
            ..Node::default()
        })
        .collect();
    let mut roots: Vec<usize> = Vec::new();
    let mut current: Option<usize> = None;
    for at in sorted {
        match current {
            Some(first) if all[first].1.subject == all[at].1.subject => {
                nodes[first].children.push(at);
                nodes[at].parent = Some(first);
            }
            _ => {
                roots.push(at);
                current = Some(at);
            }
        }
    }
    roots.sort_by_key(|&r| date_key(all, r));
    Forest { nodes, roots }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn f(subject: &str, date: i64, id: &str, refs: &[&str]) -> Fields {
        let mut f = Fields {
            date,
            message_id: Some(id.into()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..Fields::default()
        };
        f.set_subject(subject);
        f
    }

    pub(super) fn show(forest: Forest) -> String {
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
    fn equal_dates_keep_sequence_order() {
        let all = vec![
            (0, f("a", 5, "1@x", &[])),
            (1, f("Re: a", 7, "2@x", &["1@x"])),
            (2, f("Re: a", 7, "3@x", &["1@x"])),
            (3, f("b", 5, "4@x", &[])),
            (4, f("Re: a", 6, "5@x", &["1@x"])),
        ];
        assert_eq!(show(references(&all)), "(1 (5)(2)(3))(4)");
        assert_eq!(show(ordered_subject(&all)), "(1 (5)(2)(3))(4)");
    }
}
