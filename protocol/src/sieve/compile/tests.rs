//! Compiling tests: `address`, `envelope`, `header`, `exists`, `size`, `true`, `false`,
//! `not`, `allof`, `anyof`, `body`, `date`, `currentdate`, `string`, `hasflag`.

use super::super::ir::{AddrPart, BodyTransform, Test, ZoneOpt};
use super::super::parse::TestNode;
use super::super::CompileError;
use super::args::{err, Args};
use super::matching::{Allow, MatchOpts};
use super::Ctx;

/// The date parts RFC 5260 §4.2 names.
const DATE_PARTS: &[&str] = &[
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
];

/// Compiles one test.
pub(crate) fn test(ctx: &Ctx, node: TestNode) -> Result<Test, CompileError> {
    let name = node.name.clone();
    match name.as_str() {
        "not" | "allof" | "anyof" => return logic(ctx, node),
        _ => {}
    }
    if !node.tests.is_empty() {
        return Err(err(node.line, format!("'{name}' takes no tests")));
    }
    let mut args = Args::new(&name, node.line, node.args)?;
    let test = match name.as_str() {
        "true" | "false" => {
            if let Some(t) = args.take_tags().first() {
                return Err(t.unknown(&name));
            }
            if name == "true" {
                Test::True
            } else {
                Test::False
            }
        }
        "address" | "envelope" | "header" => address_or_header(ctx, &mut args)?,
        "exists" => exists(&mut args)?,
        "size" => size(&mut args)?,
        "body" => body(ctx, &mut args)?,
        "date" | "currentdate" => date(ctx, &mut args)?,
        "string" | "hasflag" => string_or_flag(ctx, &mut args)?,
        "mailboxexists" | "metadataexists" | "servermetadataexists" => {
            return Err(err(
                node.line,
                format!("the '{name}' test is not supported here"),
            ))
        }
        _ => return Err(err(node.line, format!("unknown test '{name}'"))),
    };
    args.finish()?;
    Ok(test)
}

fn logic(ctx: &Ctx, node: TestNode) -> Result<Test, CompileError> {
    if !node.args.is_empty() {
        return Err(err(node.line, format!("'{}' takes only tests", node.name)));
    }
    let mut tests = node
        .tests
        .into_iter()
        .map(|t| test(ctx, t))
        .collect::<Result<Vec<_>, _>>()?;
    match node.name.as_str() {
        "not" => match (tests.pop(), tests.is_empty()) {
            (Some(t), true) => Ok(Test::Not(Box::new(t))),
            _ => Err(err(node.line, "'not' needs exactly one test")),
        },
        _ if tests.is_empty() => Err(err(node.line, format!("'{}' needs tests", node.name))),
        "allof" => Ok(Test::AllOf(tests)),
        _ => Ok(Test::AnyOf(tests)),
    }
}

/// Reads the tags of a test into shared options; other tags go to `own`.
fn opts(
    ctx: &Ctx,
    args: &mut Args,
    allow: Allow,
    mut own: impl FnMut(&super::args::Tag) -> Result<bool, CompileError>,
) -> Result<MatchOpts, CompileError> {
    let mut o = MatchOpts::default();
    for tag in args.take_tags() {
        if !o.take(ctx, &tag, allow)? && !own(&tag)? {
            return Err(tag.unknown(&args.command));
        }
    }
    Ok(o)
}

fn address_or_header(ctx: &Ctx, args: &mut Args) -> Result<Test, CompileError> {
    let name = args.command.clone();
    let allow = Allow {
        address_part: name != "header",
        index: name != "envelope",
        zone: false,
    };
    let o = opts(ctx, args, allow, |_| Ok(false))?;
    let headers = args.list("header list")?;
    let keys = args.list("key list")?;
    let m = o.matcher(&keys, ctx.has("variables"))?;
    let part = o.part.unwrap_or(AddrPart::All);
    Ok(match name.as_str() {
        "header" => Test::Header {
            m,
            headers,
            keys,
            index: o.index()?,
        },
        "address" => Test::Address {
            m,
            part,
            headers,
            keys,
            index: o.index()?,
        },
        _ => {
            ctx.need("envelope", "the envelope test", args.line)?;
            for field in &headers {
                let known = ["from", "to"].contains(&field.to_ascii_lowercase().as_str());
                if !known && !field.contains("${") {
                    return Err(err(args.line, format!("unknown envelope part \"{field}\"")));
                }
            }
            Test::Envelope {
                m,
                part,
                fields: headers,
                keys,
            }
        }
    })
}

fn exists(args: &mut Args) -> Result<Test, CompileError> {
    if let Some(t) = args.take_tags().first() {
        return Err(t.unknown("exists"));
    }
    Ok(Test::Exists(args.list("header list")?))
}

fn size(args: &mut Args) -> Result<Test, CompileError> {
    let mut over = None;
    for tag in args.take_tags() {
        let value = match tag.name.as_str() {
            "over" => true,
            "under" => false,
            _ => return Err(tag.unknown("size")),
        };
        if over.replace(value).is_some() {
            return Err(err(tag.line, "size takes one of :over or :under"));
        }
    }
    let Some(over) = over else {
        return Err(err(args.line, "size needs :over or :under"));
    };
    let limit = args.number("limit")?;
    Ok(Test::Size { over, limit })
}

fn body(ctx: &Ctx, args: &mut Args) -> Result<Test, CompileError> {
    ctx.need("body", "the body test", args.line)?;
    let mut transform = None;
    let o = opts(ctx, args, Allow::default(), |tag| {
        let t = match tag.name.as_str() {
            "raw" => BodyTransform::Raw,
            "text" => BodyTransform::Text,
            "content" => BodyTransform::Content(tag.list()?),
            _ => return Ok(false),
        };
        if transform.replace(t).is_some() {
            return Err(err(tag.line, "body takes one of :raw, :text, :content"));
        }
        Ok(true)
    })?;
    let keys = args.list("key list")?;
    Ok(Test::Body {
        m: o.matcher(&keys, ctx.has("variables"))?,
        transform: transform.unwrap_or(BodyTransform::Text),
        keys,
    })
}

fn date(ctx: &Ctx, args: &mut Args) -> Result<Test, CompileError> {
    let current = args.command == "currentdate";
    ctx.need("date", &format!("the {} test", args.command), args.line)?;
    let allow = Allow {
        address_part: false,
        index: !current,
        zone: true,
    };
    let o = opts(ctx, args, allow, |_| Ok(false))?;
    if current && o.zone == Some(ZoneOpt::Original) {
        return Err(err(args.line, "currentdate has no :originalzone"));
    }
    let header = if current {
        String::new()
    } else {
        args.string("header name")?
    };
    let part = args.string("date part")?.to_ascii_lowercase();
    if !DATE_PARTS.contains(&part.as_str()) && !part.contains("${") {
        return Err(err(args.line, format!("unknown date part \"{part}\"")));
    }
    let keys = args.list("key list")?;
    let m = o.matcher(&keys, ctx.has("variables"))?;
    let zone = o.zone.clone().unwrap_or(ZoneOpt::Local);
    Ok(if current {
        Test::CurrentDate {
            m,
            zone,
            part,
            keys,
        }
    } else {
        Test::Date {
            m,
            zone,
            header,
            part,
            keys,
            index: o.index()?,
        }
    })
}

fn string_or_flag(ctx: &Ctx, args: &mut Args) -> Result<Test, CompileError> {
    let flag = args.command == "hasflag";
    if flag {
        ctx.need("imap4flags", "the hasflag test", args.line)?;
    } else {
        ctx.need("variables", "the string test", args.line)?;
    }
    let o = opts(ctx, args, Allow::default(), |_| Ok(false))?;
    let first = args.list("source list")?;
    let (sources, keys) = if args.remaining() > 0 {
        (first, args.list("key list")?)
    } else if flag {
        (Vec::new(), first)
    } else {
        return Err(err(args.line, "'string' is missing its key list"));
    };
    let m = o.matcher(&keys, ctx.has("variables"))?;
    Ok(if flag {
        Test::HasFlag {
            m,
            vars: sources,
            keys,
        }
    } else {
        Test::Str { m, sources, keys }
    })
}
