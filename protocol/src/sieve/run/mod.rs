//! The interpreter: runs compiled scripts in sequence against one message, following
//! `include`s through the caller's [`Includes`], and collects the actions.

mod actions;
mod tests;

use std::collections::HashSet;

use super::ir::{Cmd, FlagOp, Program};
use super::message::Mail;
use super::variables::{Frame, Globals};
use super::{address, vacation, Includes, Input, Location, Outcome, RuntimeError, Script};
pub(crate) use actions::{Actions, MAX_ACTIONS, MAX_REDIRECTS};

/// Deepest chain of includes.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 8;
/// Most scripts one run may include in all.
pub(crate) const MAX_INCLUDED: usize = 32;
/// Most flags one flag variable holds.
const MAX_FLAGS: usize = 64;

/// How a command leaves control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
    Return,
}

/// The state of one run.
pub(crate) struct Run<'a, 'i> {
    pub(crate) input: &'a Input<'a>,
    pub(crate) mail: Mail<'a>,
    includes: &'i mut dyn Includes,
    globals: Globals,
    actions: Actions,
    /// The imap4flags internal variable.
    flags: Vec<String>,
    once: HashSet<(bool, String)>,
    included: usize,
}

/// Runs the scripts in order; `stop` ends the sequence.
pub(crate) fn execute(
    scripts: &[&Script],
    input: &Input<'_>,
    includes: &mut dyn Includes,
) -> Result<Outcome, RuntimeError> {
    let mut run = Run {
        input,
        mail: Mail::new(input.message),
        includes,
        globals: Globals::new(),
        actions: Actions::new(),
        flags: Vec::new(),
        once: HashSet::new(),
        included: 0,
    };
    for script in scripts {
        if run.script(&script.program, 0)? != Flow::Next {
            break;
        }
    }
    let flags = std::mem::take(&mut run.flags);
    run.actions.finish(flags)
}

/// Splits flag strings into single flags, without duplicates (case-insensitive).
pub(crate) fn split_flags<'s>(lists: impl IntoIterator<Item = &'s str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for flag in lists.into_iter().flat_map(str::split_whitespace) {
        if out.len() < MAX_FLAGS && !out.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            out.push(flag.to_string());
        }
    }
    out
}

impl Run<'_, '_> {
    /// The variables shared by every script of the run.
    pub(crate) fn globals(&self) -> &Globals {
        &self.globals
    }

    fn script(&mut self, program: &Program, depth: usize) -> Result<Flow, RuntimeError> {
        let mut frame = Frame::new(program.variables);
        self.block(&program.commands, &mut frame, depth)
    }

    fn block(
        &mut self,
        cmds: &[Cmd],
        frame: &mut Frame,
        depth: usize,
    ) -> Result<Flow, RuntimeError> {
        for cmd in cmds {
            let flow = self.command(cmd, frame, depth)?;
            if flow != Flow::Next {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn expand(&self, frame: &Frame, text: &str) -> String {
        frame.expand(&self.globals, text)
    }

    fn command(
        &mut self,
        cmd: &Cmd,
        frame: &mut Frame,
        depth: usize,
    ) -> Result<Flow, RuntimeError> {
        match cmd {
            Cmd::If(branches, otherwise) => {
                for (test, body) in branches {
                    if self.test(test, frame)? {
                        return self.block(body, frame, depth);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, frame, depth);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Return => return Ok(Flow::Return),
            Cmd::Discard => self.actions.discard()?,
            Cmd::Keep { flags } => {
                let flags = self.flags_for(frame, flags.as_deref());
                self.actions.keep(flags)?;
            }
            Cmd::FileInto {
                mailbox,
                copy,
                create,
                flags,
            } => {
                let mailbox = self.expand(frame, mailbox);
                if mailbox.is_empty() {
                    return Err(RuntimeError("fileinto: the mailbox name is empty".into()));
                }
                let flags = self.flags_for(frame, flags.as_deref());
                self.actions.file_into(mailbox, flags, *create, *copy)?;
            }
            Cmd::Redirect { address, copy } => {
                let target = self.expand(frame, address);
                let Some((local, domain)) = address::mailbox(&target) else {
                    return Err(RuntimeError(format!(
                        "redirect: \"{target}\" is not a mail address"
                    )));
                };
                self.actions.redirect(format!("{local}@{domain}"), *copy)?;
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.expand(frame, reason);
                self.actions.reject(reason, *extended)?;
            }
            Cmd::Include {
                location,
                name,
                once,
                optional,
            } => return self.include(*location, name, *once, *optional, depth),
            _ => self.variable_command(cmd, frame)?,
        }
        Ok(Flow::Next)
    }

    fn variable_command(&mut self, cmd: &Cmd, frame: &mut Frame) -> Result<(), RuntimeError> {
        match cmd {
            Cmd::Flag { op, var, flags } => {
                let given: Vec<String> = flags.iter().map(|f| self.expand(frame, f)).collect();
                let given = split_flags(given.iter().map(String::as_str));
                let current = match var {
                    Some(name) => split_flags([frame.get(&self.globals, name)]),
                    None => self.flags.clone(),
                };
                let new = match op {
                    FlagOp::Set => given,
                    FlagOp::Add => split_flags(current.iter().chain(&given).map(String::as_str)),
                    FlagOp::Remove => current
                        .into_iter()
                        .filter(|f| !given.iter().any(|g| g.eq_ignore_ascii_case(f)))
                        .collect(),
                };
                match var {
                    Some(name) => frame
                        .set(&mut self.globals, name, new.join(" "))
                        .map_err(RuntimeError)?,
                    None => self.flags = new,
                }
            }
            Cmd::Set { name, value, mods } => {
                let value = super::variables::modify(mods, self.expand(frame, value));
                frame
                    .set(&mut self.globals, name, value)
                    .map_err(RuntimeError)?;
            }
            Cmd::Global(names) => names.iter().for_each(|n| frame.declare_global(n)),
            Cmd::Vacation(v) => {
                if let Some(action) = vacation::run(self, v, frame) {
                    self.actions.vacation(action)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The flags a keep/fileinto stores: its `:flags`, else the internal variable.
    fn flags_for(&self, frame: &Frame, given: Option<&[String]>) -> Vec<String> {
        match given {
            Some(list) => {
                let expanded: Vec<String> = list.iter().map(|f| self.expand(frame, f)).collect();
                split_flags(expanded.iter().map(String::as_str))
            }
            None => self.flags.clone(),
        }
    }

    fn include(
        &mut self,
        location: Location,
        name: &str,
        once: bool,
        optional: bool,
        depth: usize,
    ) -> Result<Flow, RuntimeError> {
        let key = (location == Location::Global, name.to_string());
        if once && self.once.contains(&key) {
            return Ok(Flow::Next);
        }
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(RuntimeError(format!(
                "includes nested more than {MAX_INCLUDE_DEPTH} deep"
            )));
        }
        if self.included >= MAX_INCLUDED {
            return Err(RuntimeError(format!(
                "more than {MAX_INCLUDED} included scripts"
            )));
        }
        let script = match self.includes.load(location, name) {
            Some(Ok(script)) => script,
            Some(Err(e)) => return Err(RuntimeError(format!("included script \"{name}\": {e}"))),
            None if optional => return Ok(Flow::Next),
            None => {
                return Err(RuntimeError(format!(
                    "included script \"{name}\" does not exist"
                )))
            }
        };
        self.included += 1;
        self.once.insert(key);
        match self.script(&script.program, depth + 1)? {
            Flow::Stop => Ok(Flow::Stop),
            _ => Ok(Flow::Next),
        }
    }
}
