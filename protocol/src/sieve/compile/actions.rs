//! Compiling the commands that are not control structure: keep, discard, stop, fileinto,
//! redirect, reject/ereject, the imap4flags actions, set, include/return/global, vacation.

use super::super::ir::{Cmd, FlagOp, Modifier};
use super::super::parse::CommandNode;
use super::super::{address, CompileError, Location};
use super::args::{err, Args, Tag};
use super::Ctx;

/// Longest variable name.
const MAX_NAME: usize = 64;

/// Compiles one command other than if/elsif/else/require.
pub(crate) fn command(ctx: &Ctx, node: CommandNode) -> Result<Cmd, CompileError> {
    if node.block.is_some() || !node.tests.is_empty() {
        return Err(err(
            node.line,
            format!("'{}' takes no test or block", node.name),
        ));
    }
    let mut args = Args::new(&node.name, node.line, node.args)?;
    let cmd = match node.name.as_str() {
        "keep" | "fileinto" => store(ctx, &mut args)?,
        "discard" | "stop" | "return" => bare(ctx, &mut args)?,
        "redirect" => redirect(ctx, &mut args)?,
        "reject" | "ereject" => {
            ctx.need(&node.name, &format!("'{}'", node.name), node.line)?;
            no_tags(&mut args)?;
            Cmd::Reject {
                reason: args.string("reason")?,
                extended: node.name == "ereject",
            }
        }
        "setflag" | "addflag" | "removeflag" => flags(ctx, &mut args)?,
        "set" => set(ctx, &mut args)?,
        "include" => include(ctx, &mut args)?,
        "global" => {
            ctx.need("include", "'global'", node.line)?;
            ctx.need("variables", "'global'", node.line)?;
            no_tags(&mut args)?;
            let names = args.list("variable names")?;
            for n in &names {
                check_name(n, node.line)?;
            }
            Cmd::Global(names)
        }
        "vacation" => super::super::vacation::compile(ctx, &mut args)?,
        other => return Err(err(node.line, format!("unknown command '{other}'"))),
    };
    args.finish()?;
    Ok(cmd)
}

fn no_tags(args: &mut Args) -> Result<(), CompileError> {
    match args.take_tags().first() {
        Some(t) => Err(t.unknown(&args.command)),
        None => Ok(()),
    }
}

fn bare(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    no_tags(args)?;
    Ok(match args.command.as_str() {
        "discard" => Cmd::Discard,
        "stop" => Cmd::Stop,
        _ => {
            ctx.need("include", "'return'", args.line)?;
            Cmd::Return
        }
    })
}

/// Checks a flag list tag (`:flags`) needs imap4flags.
fn flags_tag(ctx: &Ctx, tag: &Tag) -> Result<Vec<String>, CompileError> {
    ctx.need("imap4flags", ":flags", tag.line)?;
    tag.list()
}

fn store(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    let keep = args.command == "keep";
    if !keep {
        ctx.need("fileinto", "'fileinto'", args.line)?;
    }
    let (mut copy, mut create, mut flags) = (false, false, None);
    for tag in args.take_tags() {
        match tag.name.as_str() {
            "flags" => flags = Some(flags_tag(ctx, &tag)?),
            "copy" if !keep => {
                ctx.need("copy", ":copy", tag.line)?;
                copy = true;
            }
            "create" if !keep => {
                ctx.need("mailbox", ":create", tag.line)?;
                create = true;
            }
            _ => return Err(tag.unknown(&args.command)),
        }
    }
    if keep {
        return Ok(Cmd::Keep { flags });
    }
    let mailbox = args.string("mailbox")?;
    if mailbox.is_empty() {
        return Err(err(args.line, "fileinto needs a mailbox name"));
    }
    Ok(Cmd::FileInto {
        mailbox,
        copy,
        create,
        flags,
    })
}

fn redirect(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    let mut copy = false;
    for tag in args.take_tags() {
        if tag.name != "copy" {
            return Err(tag.unknown("redirect"));
        }
        ctx.need("copy", ":copy", tag.line)?;
        copy = true;
    }
    let address = args.string("address")?;
    let constant = !(ctx.has("variables") && address.contains("${"));
    if constant && address::mailbox(&address).is_none() {
        return Err(err(
            args.line,
            format!("redirect: \"{address}\" is not a mail address"),
        ));
    }
    Ok(Cmd::Redirect { address, copy })
}

fn flags(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    ctx.need("imap4flags", &format!("'{}'", args.command), args.line)?;
    no_tags(args)?;
    let op = match args.command.as_str() {
        "setflag" => FlagOp::Set,
        "addflag" => FlagOp::Add,
        _ => FlagOp::Remove,
    };
    let first = args.list("flag list")?;
    let (var, flags) = if args.remaining() > 0 {
        ctx.need("variables", "a flag variable", args.line)?;
        let mut names = first.into_iter();
        let (Some(name), None) = (names.next(), names.next()) else {
            return Err(err(args.line, "the flag variable must be one name"));
        };
        check_name(&name, args.line)?;
        (Some(name), args.list("flag list")?)
    } else {
        (None, first)
    };
    Ok(Cmd::Flag { op, var, flags })
}

/// Checks a variable name (RFC 5229 §3: identifier, or `global.` + identifier).
pub(crate) fn check_name(name: &str, line: u32) -> Result<(), CompileError> {
    let bare = name.strip_prefix("global.").unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= MAX_NAME
        && !bare.starts_with(|c: char| c.is_ascii_digit())
        && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err(line, format!("\"{name}\" is not a variable name")))
    }
}

fn modifier(tag: &Tag) -> Option<Modifier> {
    Some(match tag.name.as_str() {
        "lower" => Modifier::Lower,
        "upper" => Modifier::Upper,
        "lowerfirst" => Modifier::LowerFirst,
        "upperfirst" => Modifier::UpperFirst,
        "quotewildcard" => Modifier::QuoteWildcard,
        "quoteregex" => Modifier::QuoteRegex,
        "length" => Modifier::Length,
        _ => return None,
    })
}

fn set(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    ctx.need("variables", "'set'", args.line)?;
    let mut mods: Vec<Modifier> = Vec::new();
    for tag in args.take_tags() {
        let Some(m) = modifier(&tag) else {
            return Err(tag.unknown("set"));
        };
        if m == Modifier::QuoteRegex {
            ctx.need("regex", ":quoteregex", tag.line)?;
        }
        if mods.iter().any(|o| o.precedence() == m.precedence()) {
            return Err(err(
                tag.line,
                format!("set: :{} clashes with another modifier", tag.name),
            ));
        }
        mods.push(m);
    }
    mods.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
    let name = args.string("variable name")?;
    check_name(&name, args.line)?;
    let value = args.string("value")?;
    Ok(Cmd::Set { name, value, mods })
}

fn include(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    ctx.need("include", "'include'", args.line)?;
    let (mut location, mut once, mut optional) = (None, false, false);
    for tag in args.take_tags() {
        let loc = match tag.name.as_str() {
            "personal" => Location::Personal,
            "global" => Location::Global,
            "once" => {
                once = true;
                continue;
            }
            "optional" => {
                optional = true;
                continue;
            }
            _ => return Err(tag.unknown("include")),
        };
        if location.replace(loc).is_some() {
            return Err(err(tag.line, "include takes one of :personal or :global"));
        }
    }
    let name = args.string("script name")?;
    if name.is_empty() || name.contains('/') || name.len() > 255 {
        return Err(err(args.line, format!("\"{name}\" is not a script name")));
    }
    Ok(Cmd::Include {
        location: location.unwrap_or(Location::Personal),
        name,
        once,
        optional,
    })
}
