//! The tags many tests share: `:comparator`, the match types (`:is` `:contains` `:matches`
//! `:regex` `:value` `:count`), address parts, `:index`/`:last` and the date zone tags.

use super::super::ir::{AddrPart, Comparator, Index, MatchKind, Matcher, Rel, ZoneOpt};
use super::super::CompileError;
use super::args::{err, Tag};
use super::Ctx;

/// Which of the shared tags a test accepts.
#[derive(Clone, Copy, Default)]
pub(crate) struct Allow {
    pub(crate) address_part: bool,
    pub(crate) index: bool,
    pub(crate) zone: bool,
}

/// The shared tags seen so far.
#[derive(Default)]
pub(crate) struct MatchOpts {
    comparator: Option<Comparator>,
    kind: Option<(MatchKind, u32)>,
    pub(crate) part: Option<AddrPart>,
    index: Option<u64>,
    last: Option<u32>,
    pub(crate) zone: Option<ZoneOpt>,
}

fn once<T>(slot: &mut Option<T>, value: T, tag: &Tag, what: &str) -> Result<(), CompileError> {
    if slot.is_some() {
        return Err(err(
            tag.line,
            format!("more than one {what} (:{})", tag.name),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn relation(tag: &Tag) -> Result<Rel, CompileError> {
    Ok(match tag.string()?.to_ascii_lowercase().as_str() {
        "gt" => Rel::Gt,
        "ge" => Rel::Ge,
        "lt" => Rel::Lt,
        "le" => Rel::Le,
        "eq" => Rel::Eq,
        "ne" => Rel::Ne,
        other => {
            return Err(err(
                tag.line,
                format!("unknown relational operator \"{other}\" (gt ge lt le eq ne)"),
            ))
        }
    })
}

fn comparator(ctx: &Ctx, tag: &Tag) -> Result<Comparator, CompileError> {
    match tag.string()?.to_ascii_lowercase().as_str() {
        "i;octet" => Ok(Comparator::Octet),
        "i;ascii-casemap" => Ok(Comparator::AsciiCasemap),
        "i;ascii-numeric" => {
            ctx.need(
                "comparator-i;ascii-numeric",
                "the i;ascii-numeric comparator",
                tag.line,
            )?;
            Ok(Comparator::AsciiNumeric)
        }
        other => Err(err(tag.line, format!("unknown comparator \"{other}\""))),
    }
}

impl MatchOpts {
    /// Takes `tag` if it is one of the shared tags `allow` permits; `Ok(false)` if not one.
    pub(crate) fn take(
        &mut self,
        ctx: &Ctx,
        tag: &Tag,
        allow: Allow,
    ) -> Result<bool, CompileError> {
        let kind = match tag.name.as_str() {
            "comparator" => {
                once(
                    &mut self.comparator,
                    comparator(ctx, tag)?,
                    tag,
                    "comparator",
                )?;
                return Ok(true);
            }
            "is" => MatchKind::Is,
            "contains" => MatchKind::Contains,
            "matches" => MatchKind::Matches,
            "regex" => {
                ctx.need("regex", ":regex", tag.line)?;
                MatchKind::Regex
            }
            "value" | "count" => {
                ctx.need("relational", &format!(":{}", tag.name), tag.line)?;
                let rel = relation(tag)?;
                if tag.name == "value" {
                    MatchKind::Value(rel)
                } else {
                    MatchKind::Count(rel)
                }
            }
            _ => return self.take_other(ctx, tag, allow),
        };
        once(&mut self.kind, (kind, tag.line), tag, "match type")?;
        Ok(true)
    }

    fn take_other(&mut self, ctx: &Ctx, tag: &Tag, allow: Allow) -> Result<bool, CompileError> {
        let part = match tag.name.as_str() {
            "all" => AddrPart::All,
            "localpart" => AddrPart::LocalPart,
            "domain" => AddrPart::Domain,
            "user" | "detail" => {
                ctx.need("subaddress", &format!(":{}", tag.name), tag.line)?;
                if tag.name == "user" {
                    AddrPart::User
                } else {
                    AddrPart::Detail
                }
            }
            _ => return self.take_index_zone(ctx, tag, allow),
        };
        if !allow.address_part {
            return Ok(false);
        }
        once(&mut self.part, part, tag, "address part")?;
        Ok(true)
    }

    fn take_index_zone(
        &mut self,
        ctx: &Ctx,
        tag: &Tag,
        allow: Allow,
    ) -> Result<bool, CompileError> {
        match tag.name.as_str() {
            "index" if allow.index => {
                ctx.need("index", ":index", tag.line)?;
                let n = tag.number()?;
                if n == 0 {
                    return Err(err(tag.line, ":index counts from 1"));
                }
                once(&mut self.index, n, tag, ":index")?;
            }
            "last" if allow.index => {
                ctx.need("index", ":last", tag.line)?;
                once(&mut self.last, tag.line, tag, ":last")?;
            }
            "zone" if allow.zone => {
                let zone = tag.string()?;
                if !zone.contains("${") && super::super::date::parse_zone(&zone).is_none() {
                    return Err(err(
                        tag.line,
                        format!("\"{zone}\" is not a zone like +0100"),
                    ));
                }
                once(&mut self.zone, ZoneOpt::Fixed(zone), tag, "zone")?;
            }
            "originalzone" if allow.zone => {
                once(&mut self.zone, ZoneOpt::Original, tag, "zone")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The `:index`/`:last` pair as given.
    pub(crate) fn index(&self) -> Result<Option<Index>, CompileError> {
        match (self.index, self.last) {
            (Some(n), last) => Ok(Some(Index {
                n,
                last: last.is_some(),
            })),
            (None, Some(line)) => Err(err(line, ":last needs :index")),
            (None, None) => Ok(None),
        }
    }

    /// The matcher, after checking the comparator supports the match type.
    pub(crate) fn matcher(
        &self,
        keys: &[String],
        variables: bool,
    ) -> Result<Matcher, CompileError> {
        let comparator = self.comparator.unwrap_or(Comparator::AsciiCasemap);
        let (kind, line) = self.kind.unwrap_or((MatchKind::Is, 0));
        let substring = matches!(
            kind,
            MatchKind::Contains | MatchKind::Matches | MatchKind::Regex
        );
        if comparator == Comparator::AsciiNumeric && substring {
            return Err(err(
                line,
                "i;ascii-numeric supports only :is, :value and :count",
            ));
        }
        if kind == MatchKind::Regex {
            for key in keys {
                if variables && key.contains("${") {
                    continue;
                }
                if let Err(e) = super::super::match_type::build_regex(key, comparator) {
                    return Err(err(line, format!("bad :regex \"{key}\": {e}")));
                }
            }
        }
        Ok(Matcher { comparator, kind })
    }
}
