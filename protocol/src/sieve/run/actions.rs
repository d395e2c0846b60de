//! The actions a run collects: implicit keep, duplicates merged (RFC 5228 §2.10.3), the
//! caps on actions and redirects, and the reject rules of RFC 5429.

use super::super::{Action, Outcome, RuntimeError};

/// Most actions one run may take.
pub(crate) const MAX_ACTIONS: usize = 32;
/// Most redirects one run may take (like Pigeonhole's `sieve_max_redirects`).
pub(crate) const MAX_REDIRECTS: usize = 4;

/// The actions so far.
#[derive(Debug)]
pub(crate) struct Actions {
    list: Vec<Action>,
    implicit_keep: bool,
    redirects: usize,
}

fn merge_flags(into: &mut Vec<String>, flags: Vec<String>) {
    for f in flags {
        if !into.iter().any(|g| g.eq_ignore_ascii_case(&f)) {
            into.push(f);
        }
    }
}

fn error(message: impl Into<String>) -> RuntimeError {
    RuntimeError(message.into())
}

impl Actions {
    /// No actions yet; the implicit keep in force.
    pub(crate) fn new() -> Actions {
        Actions {
            list: Vec::new(),
            implicit_keep: true,
            redirects: 0,
        }
    }

    fn rejected(&self) -> bool {
        self.list.iter().any(|a| matches!(a, Action::Reject { .. }))
    }

    fn push(&mut self, action: Action) -> Result<(), RuntimeError> {
        if self.list.len() >= MAX_ACTIONS {
            return Err(error(format!("more than {MAX_ACTIONS} actions")));
        }
        let storing = !matches!(action, Action::Discard | Action::Reject { .. });
        if storing && self.rejected() {
            return Err(error(
                "reject cannot be combined with keep, fileinto, redirect or vacation",
            ));
        }
        self.list.push(action);
        Ok(())
    }

    /// `keep`, with the flags it stores.
    pub(crate) fn keep(&mut self, flags: Vec<String>) -> Result<(), RuntimeError> {
        self.implicit_keep = false;
        for a in &mut self.list {
            if let Action::Keep { flags: old } = a {
                merge_flags(old, flags);
                return Ok(());
            }
        }
        self.push(Action::Keep { flags })
    }

    /// `fileinto` (`copy`: the implicit keep stays).
    pub(crate) fn file_into(
        &mut self,
        mailbox: String,
        flags: Vec<String>,
        create: bool,
        copy: bool,
    ) -> Result<(), RuntimeError> {
        if !copy {
            self.implicit_keep = false;
        }
        for a in &mut self.list {
            if let Action::FileInto {
                mailbox: m,
                flags: old,
                create: c,
            } = a
            {
                if *m == mailbox {
                    merge_flags(old, flags);
                    *c |= create;
                    return Ok(());
                }
            }
        }
        self.push(Action::FileInto {
            mailbox,
            flags,
            create,
        })
    }

    /// `redirect` (`copy`: the implicit keep stays).
    pub(crate) fn redirect(&mut self, address: String, copy: bool) -> Result<(), RuntimeError> {
        if !copy {
            self.implicit_keep = false;
        }
        let same = |a: &Action| matches!(a, Action::Redirect { address: b } if b.eq_ignore_ascii_case(&address));
        if self.list.iter().any(same) {
            return Ok(());
        }
        if self.redirects >= MAX_REDIRECTS {
            return Err(error(format!("more than {MAX_REDIRECTS} redirects")));
        }
        self.redirects += 1;
        self.push(Action::Redirect { address })
    }

    /// `reject`/`ereject`: refuses anything that stores or forwards the message.
    pub(crate) fn reject(&mut self, reason: String, extended: bool) -> Result<(), RuntimeError> {
        let incompatible = self.list.iter().any(|a| {
            matches!(
                a,
                Action::Keep { .. }
                    | Action::FileInto { .. }
                    | Action::Redirect { .. }
                    | Action::Vacation { .. }
            )
        });
        if incompatible {
            return Err(error(
                "reject cannot be combined with keep, fileinto, redirect or vacation",
            ));
        }
        if self.rejected() {
            return Err(error("the message is rejected twice"));
        }
        self.implicit_keep = false;
        self.push(Action::Reject { reason, extended })
    }

    /// `discard`.
    pub(crate) fn discard(&mut self) -> Result<(), RuntimeError> {
        self.implicit_keep = false;
        if self.list.contains(&Action::Discard) {
            return Ok(());
        }
        self.push(Action::Discard)
    }

    /// A vacation reply that passed the message checks; one per run.
    pub(crate) fn vacation(&mut self, action: Action) -> Result<(), RuntimeError> {
        if self
            .list
            .iter()
            .any(|a| matches!(a, Action::Vacation { .. }))
        {
            return Err(error("more than one vacation action"));
        }
        self.push(action)
    }

    /// The outcome: the implicit keep (with `flags`) added if still in force.
    pub(crate) fn finish(mut self, flags: Vec<String>) -> Result<Outcome, RuntimeError> {
        if self.implicit_keep {
            let has_keep = self.list.iter().any(|a| matches!(a, Action::Keep { .. }));
            if !has_keep {
                self.list.push(Action::Keep { flags });
            }
        }
        Ok(Outcome { actions: self.list })
    }
}
