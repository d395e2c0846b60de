//! Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and match types
//! (RFC 5228 §2.7: :is :contains :matches; :regex; RFC 5231 :value :count), with the match
//! groups `${0}`..`${9}` that :matches and :regex leave for the variables extension.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};

use super::ir::{Comparator, MatchKind, Matcher, Rel};

/// How many match groups are kept (`${0}` to `${9}`).
pub(crate) const MAX_GROUPS: usize = 10;

/// Builds a `:regex` key (linear time; size-capped).
pub(crate) fn build_regex(pattern: &str, c: Comparator) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(c == Comparator::AsciiCasemap)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
}

/// Compares two values under a comparator.
pub(crate) fn order(c: Comparator, a: &str, b: &str) -> Ordering {
    match c {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        Comparator::AsciiCasemap => a
            .bytes()
            .map(|x| x.to_ascii_uppercase())
            .cmp(b.bytes().map(|x| x.to_ascii_uppercase())),
        Comparator::AsciiNumeric => numeric(a, b),
    }
}

/// i;ascii-numeric: the leading digits as a number; no leading digit is positive infinity.
fn numeric(a: &str, b: &str) -> Ordering {
    fn digits(s: &str) -> Option<&str> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let d = s.get(..end)?;
        if d.is_empty() {
            return None;
        }
        Some(d.trim_start_matches('0'))
    }
    match (digits(a), digits(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
    }
}

fn relation(rel: Rel, o: Ordering) -> bool {
    match rel {
        Rel::Gt => o == Ordering::Greater,
        Rel::Ge => o != Ordering::Less,
        Rel::Lt => o == Ordering::Less,
        Rel::Le => o != Ordering::Greater,
        Rel::Eq => o == Ordering::Equal,
        Rel::Ne => o != Ordering::Equal,
    }
}

/// Most steps one :matches comparison may take (value length × pattern length, roughly).
pub(crate) const MAX_GLOB_STEPS: usize = 4_000_000;

/// Why a match could not be tried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MatchError {
    /// A :regex key that does not compile (it came from a variable).
    #[error("bad :regex \"{0}\": {1}")]
    BadRegex(String, String),
    /// A :matches pattern too costly for the value it is matched against.
    #[error(":matches \"{0}\" is too costly for a {1}-character value")]
    TooCostly(String, usize),
}

/// Whether any value matches any key; on a :matches/:regex success `groups` (when given)
/// receives `${0}`.. of the first matching pair.
pub(crate) fn matches(
    m: &Matcher,
    values: &[String],
    keys: &[String],
    groups: Option<&mut Vec<String>>,
) -> Result<bool, MatchError> {
    if let MatchKind::Count(rel) = m.kind {
        let count = values.len().to_string();
        return Ok(keys
            .iter()
            .any(|k| relation(rel, order(m.comparator, &count, k))));
    }
    let regexes = match m.kind {
        MatchKind::Regex => keys
            .iter()
            .map(|k| {
                build_regex(k, m.comparator)
                    .map_err(|e| MatchError::BadRegex(k.clone(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    for value in values {
        for (i, key) in keys.iter().enumerate() {
            let found = match m.kind {
                MatchKind::Is => order(m.comparator, value, key) == Ordering::Equal,
                MatchKind::Contains => contains(m.comparator, value, key),
                MatchKind::Value(rel) => relation(rel, order(m.comparator, value, key)),
                MatchKind::Matches => match glob(key, value, m.comparator != Comparator::Octet)
                    .ok_or_else(|| MatchError::TooCostly(key.clone(), value.chars().count()))?
                {
                    Some(caps) => {
                        if let Some(g) = groups {
                            *g = caps;
                        }
                        return Ok(true);
                    }
                    None => false,
                },
                MatchKind::Regex => match regexes.get(i).and_then(|r| r.captures(value)) {
                    Some(caps) => {
                        if let Some(g) = groups {
                            *g = (0..MAX_GROUPS)
                                .map(|n| caps.get(n).map_or("", |c| c.as_str()).to_string())
                                .collect();
                        }
                        return Ok(true);
                    }
                    None => false,
                },
                MatchKind::Count(_) => false,
            };
            if found {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn contains(c: Comparator, value: &str, key: &str) -> bool {
    match c {
        Comparator::Octet => value.contains(key),
        _ => value
            .to_ascii_lowercase()
            .contains(&key.to_ascii_lowercase()),
    }
}

/// One element of a :matches pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pat {
    Lit(char),
    One,
    Star,
}

fn pattern(key: &str) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Pat::Star,
            '?' => Pat::One,
            '\\' => Pat::Lit(chars.next().unwrap_or('\\')),
            c => Pat::Lit(c),
        });
    }
    out
}

/// :matches: `*` any run, `?` one character, `\` quotes. Each wildcard takes as few
/// characters as it can (RFC 5229 §3.2); the result is `${0}` (the value) then one group per
/// wildcard. Time O(pattern × value): only the latest `*` is ever widened; `None` when that
/// passes [`MAX_GLOB_STEPS`], `Some(None)` for no match.
pub(crate) fn glob(key: &str, value: &str, fold: bool) -> Option<Option<Vec<String>>> {
    let p = pattern(key);
    let s: Vec<char> = value.chars().collect();
    let slot: Vec<usize> = p
        .iter()
        .scan(0usize, |n, x| {
            let here = *n;
            if matches!(x, Pat::One | Pat::Star) {
                *n += 1;
            }
            Some(here)
        })
        .collect();
    let wilds = p
        .iter()
        .filter(|x| matches!(x, Pat::One | Pat::Star))
        .count();
    let mut caps = vec![(0usize, 0usize); wilds];
    let eq = |a: char, b: char| a == b || (fold && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize, usize)> = None;
    let mut steps = 0usize;
    while si < s.len() {
        steps += 1;
        if steps > MAX_GLOB_STEPS {
            return None;
        }
        let here = p.get(pi).copied();
        let cap = slot.get(pi).copied().unwrap_or(0);
        match (here, s.get(si)) {
            (Some(Pat::Star), _) => {
                star = Some((pi, si, si));
                set(&mut caps, cap, (si, si));
                pi += 1;
                continue;
            }
            (Some(Pat::One), _) => {
                set(&mut caps, cap, (si, si + 1));
                pi += 1;
                si += 1;
                continue;
            }
            (Some(Pat::Lit(c)), Some(&v)) if eq(c, v) => {
                pi += 1;
                si += 1;
                continue;
            }
            _ => {}
        }
        let Some((sp, start, end)) = star else {
            return Some(None);
        };
        star = Some((sp, start, end + 1));
        set(
            &mut caps,
            slot.get(sp).copied().unwrap_or(0),
            (start, end + 1),
        );
        pi = sp + 1;
        si = end + 1;
    }
    while let Some(Pat::Star) = p.get(pi) {
        set(
            &mut caps,
            slot.get(pi).copied().unwrap_or(0),
            (s.len(), s.len()),
        );
        pi += 1;
    }
    if pi != p.len() {
        return Some(None);
    }
    let text = |(a, b): (usize, usize)| s.get(a..b).map(|c| c.iter().collect()).unwrap_or_default();
    let mut out = vec![value.to_string()];
    out.extend(caps.into_iter().take(MAX_GROUPS - 1).map(text));
    Some(Some(out))
}

fn set(caps: &mut [(usize, usize)], i: usize, span: (usize, usize)) {
    if let Some(c) = caps.get_mut(i) {
        *c = span;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_take_as_little_as_they_can() {
        let g = glob("[*] *", "[acme-users] [fwd] version 1.0 is out", true)
            .unwrap()
            .unwrap();
        assert_eq!(g[1], "acme-users");
        assert_eq!(g[2], "[fwd] version 1.0 is out");
        let g = glob("*@*.*", "j.doe@example.com", true).unwrap().unwrap();
        assert_eq!(&g[1..], ["j.doe", "example", "com"]);
        assert!(glob("a?c", "abc", false).unwrap().is_some());
        assert!(glob("a?c", "ac", false).unwrap().is_none());
        assert!(glob("*", "", false).unwrap().is_some());
        assert!(glob("a\\*", "a*", false).unwrap().is_some());
        assert!(glob("a\\*", "ab", false).unwrap().is_none());
        assert!(glob("ABC", "abc", true).unwrap().is_some());
        assert!(glob("ABC", "abc", false).unwrap().is_none());
        let long = "a".repeat(5000);
        assert!(glob("*a*a*a*a*a*a*b", &long, false).unwrap().is_none());
        let huge = "a".repeat(100_000);
        let costly = format!("*{}b", "a".repeat(1000));
        assert!(
            glob(&costly, &huge, false).is_none(),
            "gives up instead of running long"
        );
    }

    #[test]
    fn numeric_order() {
        assert_eq!(numeric("10", "9"), Ordering::Greater);
        assert_eq!(numeric("007", "7"), Ordering::Equal);
        assert_eq!(numeric("x", "99999"), Ordering::Greater);
        assert_eq!(numeric("x", "y"), Ordering::Equal);
    }
}
