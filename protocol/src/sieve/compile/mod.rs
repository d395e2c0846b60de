//! Validation (RFC 5228 §2-§5 and each extension's rules): the generic parse tree becomes a
//! typed [`Program`]; unknown commands, tests, tags, comparators and extensions, missing
//! `require`s and wrong argument counts or types are compile errors here.

mod actions;
pub(crate) mod args;
mod matching;
mod tests;

use std::collections::HashSet;

use super::ir::{Cmd, Program};
use super::parse::{Arg, CommandNode, TestNode};
use super::{CompileError, EXTENSIONS};
pub(crate) use args::err;
use args::Args;

/// What the script required, as compilation goes on.
pub(crate) struct Ctx {
    required: HashSet<String>,
}

impl Ctx {
    /// Whether the script required `ext`.
    pub(crate) fn has(&self, ext: &str) -> bool {
        self.required.contains(ext)
    }

    /// An error unless the script required `ext` (to use `what`).
    pub(crate) fn need(&self, ext: &str, what: &str, line: u32) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(err(
                line,
                format!("{what} needs require \"{ext}\" at the start of the script"),
            ))
        }
    }
}

/// Compiles a parsed script.
pub(crate) fn program(nodes: Vec<CommandNode>) -> Result<Program, CompileError> {
    let mut ctx = Ctx {
        required: HashSet::new(),
    };
    let mut rest = Vec::new();
    for node in nodes {
        if node.name == "require" {
            if !rest.is_empty() {
                return Err(err(
                    node.line,
                    "require must come before every other command",
                ));
            }
            require(&mut ctx, node)?;
        } else {
            rest.push(node);
        }
    }
    if ctx.has("encoded-character") {
        for node in &mut rest {
            decode_command(node)?;
        }
    }
    let commands = block(&ctx, rest)?;
    Ok(Program {
        commands,
        variables: ctx.has("variables"),
    })
}

/// Decodes `encoded-character` sequences in every string of a command (depth is capped by
/// the parser).
fn decode_command(node: &mut CommandNode) -> Result<(), CompileError> {
    decode_args(&mut node.args)?;
    for test in &mut node.tests {
        decode_test(test)?;
    }
    for child in node.block.iter_mut().flatten() {
        decode_command(child)?;
    }
    Ok(())
}

fn decode_test(node: &mut TestNode) -> Result<(), CompileError> {
    decode_args(&mut node.args)?;
    for test in &mut node.tests {
        decode_test(test)?;
    }
    Ok(())
}

fn decode_args(args: &mut [(Arg, u32)]) -> Result<(), CompileError> {
    for (arg, line) in args {
        let strings: &mut [String] = match arg {
            Arg::Str(s) => std::slice::from_mut(s),
            Arg::List(l) => l,
            _ => continue,
        };
        for s in strings {
            *s = super::encoded::decode(s).map_err(|m| err(*line, m))?;
        }
    }
    Ok(())
}

fn require(ctx: &mut Ctx, node: CommandNode) -> Result<(), CompileError> {
    if node.block.is_some() || !node.tests.is_empty() {
        return Err(err(node.line, "require takes only a string list"));
    }
    let mut args = Args::new("require", node.line, node.args)?;
    if let Some(tag) = args.take_tags().first() {
        return Err(tag.unknown("require"));
    }
    let list = args.list("extension list")?;
    args.finish()?;
    for ext in list {
        let known = EXTENSIONS.contains(&ext.as_str())
            || ext == "comparator-i;octet"
            || ext == "comparator-i;ascii-casemap";
        if !known {
            return Err(err(node.line, format!("unknown extension \"{ext}\"")));
        }
        ctx.required.insert(ext);
    }
    Ok(())
}

/// Compiles a block (or the script's top level).
pub(crate) fn block(ctx: &Ctx, nodes: Vec<CommandNode>) -> Result<Vec<Cmd>, CompileError> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut open_if = false;
    let mut conflicts = Conflicts::default();
    for node in nodes {
        match node.name.as_str() {
            "if" => {
                let (test, body) = branch(ctx, node)?;
                out.push(Cmd::If(vec![(test, body)], None));
                open_if = true;
            }
            "elsif" | "else" => {
                let Some(Cmd::If(branches, otherwise)) = out.last_mut().filter(|_| open_if) else {
                    return Err(err(
                        node.line,
                        format!("'{}' without an 'if' before it", node.name),
                    ));
                };
                if node.name == "elsif" {
                    branches.push(branch(ctx, node)?);
                } else {
                    *otherwise = Some(else_block(ctx, node)?);
                    open_if = false;
                }
            }
            "require" => {
                return Err(err(
                    node.line,
                    "require must come before every other command",
                ))
            }
            _ => {
                open_if = false;
                let line = node.line;
                let cmd = actions::command(ctx, node)?;
                conflicts.see(&cmd, line)?;
                out.push(cmd);
            }
        }
    }
    Ok(out)
}

/// RFC 5429 §2.1's rule where it is certain at compile time: a `reject` and a `keep`,
/// `fileinto`, `redirect` or `vacation` side by side in one block (before any stop/return).
#[derive(Default)]
struct Conflicts {
    reject: Option<u32>,
    store: Option<u32>,
    ended: bool,
}

impl Conflicts {
    fn see(&mut self, cmd: &Cmd, line: u32) -> Result<(), CompileError> {
        match cmd {
            Cmd::Stop | Cmd::Return => self.ended = true,
            _ if self.ended => {}
            Cmd::Reject { .. } => self.reject = self.reject.or(Some(line)),
            Cmd::Keep { .. } | Cmd::FileInto { .. } | Cmd::Redirect { .. } | Cmd::Vacation(_) => {
                self.store = self.store.or(Some(line))
            }
            _ => {}
        }
        match (self.reject, self.store) {
            (Some(_), Some(_)) => Err(err(
                line,
                "reject cannot be combined with keep, fileinto, redirect or vacation",
            )),
            _ => Ok(()),
        }
    }
}

fn branch(ctx: &Ctx, node: CommandNode) -> Result<(super::ir::Test, Vec<Cmd>), CompileError> {
    if !node.args.is_empty() {
        return Err(err(node.line, format!("'{}' takes only a test", node.name)));
    }
    let mut tests_in = node.tests;
    if tests_in.len() != 1 {
        return Err(err(
            node.line,
            format!("'{}' needs exactly one test", node.name),
        ));
    }
    let Some(body) = node.block else {
        return Err(err(node.line, format!("'{}' needs a block", node.name)));
    };
    let Some(first) = tests_in.pop() else {
        return Err(err(node.line, "a test is missing"));
    };
    let test = tests::test(ctx, first)?;
    Ok((test, block(ctx, body)?))
}

fn else_block(ctx: &Ctx, node: CommandNode) -> Result<Vec<Cmd>, CompileError> {
    if !node.args.is_empty() || !node.tests.is_empty() {
        return Err(err(node.line, "'else' takes no arguments"));
    }
    let Some(body) = node.block else {
        return Err(err(node.line, "'else' needs a block"));
    };
    block(ctx, body)
}
