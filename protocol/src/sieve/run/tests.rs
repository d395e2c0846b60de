//! Evaluating tests against the message, the envelope, the clock and the variables.

use super::super::date::{self, When};
use super::super::ir::{AddrPart, BodyTransform, Index, MatchKind, Matcher, Test, ZoneOpt};
use super::super::variables::Frame;
use super::super::{address, body, match_type, RuntimeError};
use super::{split_flags, Run};

/// Keeps only the occurrence `:index` names (counted from the end with `:last`).
fn select<T>(mut values: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(Index { n, last }) = index else {
        return values;
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let at = if last {
        values.len().checked_sub(n)
    } else {
        n.checked_sub(1)
    };
    match at {
        Some(i) if i < values.len() => vec![values.swap_remove(i)],
        _ => Vec::new(),
    }
}

/// The date of a `Received` field: what follows its last `;` (RFC 5260 §4).
fn after_semicolon(raw: &[u8]) -> &[u8] {
    match raw.iter().rposition(|&b| b == b';') {
        Some(i) => raw.get(i + 1..).unwrap_or_default(),
        None => raw,
    }
}

impl Run<'_, '_> {
    /// Evaluates a test.
    pub(super) fn test(&mut self, test: &Test, frame: &mut Frame) -> Result<bool, RuntimeError> {
        let (m, values, keys) = match test {
            Test::True => return Ok(true),
            Test::False => return Ok(false),
            Test::Not(t) => return Ok(!self.test(t, frame)?),
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, frame)? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, frame)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            Test::Exists(names) => {
                return Ok(names.iter().all(|n| self.mail.has(&self.expand(frame, n))));
            }
            Test::Size { over, limit } => {
                let size = self.mail.size();
                return Ok(if *over { size > *limit } else { size < *limit });
            }
            _ => self.values(test, frame)?,
        };
        let mut keys: Vec<String> = keys.iter().map(|k| self.expand(frame, k)).collect();
        if matches!(test, Test::HasFlag { .. }) {
            keys = split_flags(keys.iter().map(String::as_str));
        }
        let mut groups = Vec::new();
        let want = frame.enabled.then_some(&mut groups);
        let found = match_type::matches(&m, &values, &keys, want)
            .map_err(|e| RuntimeError(e.to_string()))?;
        if found && !groups.is_empty() {
            frame.groups = groups;
        }
        Ok(found)
    }

    /// The values a matching test compares, with its matcher and keys.
    fn values<'t>(
        &self,
        test: &'t Test,
        frame: &Frame,
    ) -> Result<(Matcher, Vec<String>, &'t [String]), RuntimeError> {
        let names = |list: &[String]| -> Vec<String> {
            list.iter().map(|n| self.expand(frame, n)).collect()
        };
        Ok(match test {
            Test::Address {
                m,
                part,
                headers,
                keys,
                index,
            } => {
                let mut values = Vec::new();
                for name in names(headers) {
                    let raws = select(self.mail.raw_values(&name), *index);
                    for raw in raws {
                        values.extend(
                            address::in_header(raw)
                                .iter()
                                .filter_map(|a| address::part(a, *part)),
                        );
                    }
                }
                (*m, values, keys)
            }
            Test::Envelope {
                m,
                part,
                fields,
                keys,
            } => (*m, self.envelope(&names(fields), *part), keys),
            Test::Header {
                m,
                headers,
                keys,
                index,
            } => {
                let mut values = Vec::new();
                for name in names(headers) {
                    values.extend(select(self.mail.values(&name), *index));
                }
                (*m, values, keys)
            }
            Test::Body { m, transform, keys } => {
                let transform = match transform {
                    BodyTransform::Content(types) => BodyTransform::Content(names(types)),
                    other => other.clone(),
                };
                (*m, body::values(&self.mail, &transform), keys)
            }
            Test::Date { .. } | Test::CurrentDate { .. } => self.dates(test, frame)?,
            Test::Str { m, sources, keys } => {
                let mut values = names(sources);
                if matches!(m.kind, MatchKind::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                (*m, values, keys)
            }
            Test::HasFlag { m, vars, keys } => (*m, self.has_flag_values(frame, vars), keys),
            _ => return Err(RuntimeError("internal: not a matching test".into())),
        })
    }

    fn envelope(&self, fields: &[String], part: AddrPart) -> Vec<String> {
        let mut values = Vec::new();
        for field in fields {
            let addr = match field.to_ascii_lowercase().as_str() {
                "from" => self.input.envelope.from,
                "to" => self.input.envelope.to,
                _ => continue,
            };
            if addr.is_empty() {
                values.push(String::new());
            } else if let Some(v) = address::part(addr, part) {
                values.push(v);
            }
        }
        values
    }

    fn has_flag_values(&self, frame: &Frame, vars: &[String]) -> Vec<String> {
        if vars.is_empty() {
            return self.flags.clone();
        }
        let texts: Vec<String> = vars
            .iter()
            .map(|v| frame.get(&self.globals, v).to_string())
            .collect();
        split_flags(texts.iter().map(String::as_str))
    }

    fn zone(&self, frame: &Frame, zone: &ZoneOpt) -> Result<Option<i32>, RuntimeError> {
        Ok(match zone {
            ZoneOpt::Local => Some(self.input.zone_minutes),
            ZoneOpt::Original => None,
            ZoneOpt::Fixed(text) => {
                let text = self.expand(frame, text);
                Some(
                    date::parse_zone(&text)
                        .ok_or_else(|| RuntimeError(format!("\"{text}\" is not a zone")))?,
                )
            }
        })
    }

    fn dates<'t>(
        &self,
        test: &'t Test,
        frame: &Frame,
    ) -> Result<(Matcher, Vec<String>, &'t [String]), RuntimeError> {
        let (m, zone, part, keys, whens) = match test {
            Test::Date {
                m,
                zone,
                header,
                part,
                keys,
                index,
            } => {
                let name = self.expand(frame, header);
                let raws = select(self.mail.raw_values(&name), *index);
                let received = name.eq_ignore_ascii_case("received");
                let whens: Vec<When> = raws
                    .into_iter()
                    .map(|raw| if received { after_semicolon(raw) } else { raw })
                    .filter_map(date::from_header)
                    .collect();
                (m, zone, part, keys, whens)
            }
            Test::CurrentDate {
                m,
                zone,
                part,
                keys,
            } => {
                let now = When {
                    utc: self.input.now,
                    zone: 0,
                };
                (m, zone, part, keys, vec![now])
            }
            _ => return Err(RuntimeError("internal: not a date test".into())),
        };
        let shift = self.zone(frame, zone)?;
        let part = self.expand(frame, part);
        let values = whens
            .into_iter()
            .map(|w| When {
                utc: w.utc,
                zone: shift.unwrap_or(w.zone),
            })
            .filter_map(|w| date::part(w, &part))
            .collect();
        Ok((*m, values, keys))
    }
}
