//! Variables (RFC 5229) and RFC 6609's globals: one script's frame of local variables and
//! match groups, `${name}` expansion, and the `set` modifiers.

use std::collections::{HashMap, HashSet};

use super::ir::Modifier;

/// Longest value a variable holds, in bytes (longer values are cut at a character boundary).
pub(crate) const MAX_VALUE: usize = 4096;
/// How much longer than as written one string may grow by expansion, in bytes (references
/// past that expand to nothing, so `${a}` written 100,000 times cannot fill the memory).
pub(crate) const MAX_GROWTH: usize = 64 * 1024;
/// Most variables one scope holds.
pub(crate) const MAX_VARIABLES: usize = 256;

/// The variables of one running script.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// Whether the script required `variables` (otherwise strings are taken literally).
    pub(crate) enabled: bool,
    locals: HashMap<String, String>,
    global_names: HashSet<String>,
    /// `${0}`..`${9}` of the latest successful :matches/:regex.
    pub(crate) groups: Vec<String>,
}

/// The variables shared by every script of a run (`global`).
pub(crate) type Globals = HashMap<String, String>;

fn cut(mut value: String) -> String {
    if value.len() > MAX_VALUE {
        let mut end = MAX_VALUE;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

impl Frame {
    /// A frame for a script that did (or did not) require `variables`.
    pub(crate) fn new(enabled: bool) -> Frame {
        Frame {
            enabled,
            ..Frame::default()
        }
    }

    /// `global NAME`: from now on NAME is the shared variable.
    pub(crate) fn declare_global(&mut self, name: &str) {
        self.global_names.insert(name.to_ascii_lowercase());
    }

    fn is_global<'n>(&self, name: &'n str) -> Option<&'n str> {
        let lower = name.strip_prefix("global.").or_else(|| {
            let n = name
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("global."))?;
            name.get(n.len()..)
        });
        match lower {
            Some(rest) => Some(rest),
            None => self
                .global_names
                .contains(&name.to_ascii_lowercase())
                .then_some(name),
        }
    }

    /// The value of a variable (`""` when unset).
    pub(crate) fn get<'a>(&'a self, globals: &'a Globals, name: &str) -> &'a str {
        let map = match self.is_global(name) {
            Some(n) => {
                return globals
                    .get(&n.to_ascii_lowercase())
                    .map_or("", |v| v.as_str())
            }
            None => &self.locals,
        };
        map.get(&name.to_ascii_lowercase())
            .map_or("", |v| v.as_str())
    }

    /// Sets a variable; an error when too many variables exist.
    pub(crate) fn set(
        &mut self,
        globals: &mut Globals,
        name: &str,
        value: String,
    ) -> Result<(), String> {
        let (map, key) = match self.is_global(name) {
            Some(n) => (globals, n.to_ascii_lowercase()),
            None => (&mut self.locals, name.to_ascii_lowercase()),
        };
        if map.len() >= MAX_VARIABLES && !map.contains_key(&key) {
            return Err(format!("more than {MAX_VARIABLES} variables"));
        }
        map.insert(key, cut(value));
        Ok(())
    }

    /// Expands `${name}` and `${N}` references (RFC 5229 §3); unknown ones become empty,
    /// malformed ones stay as written. Not recursive.
    pub(crate) fn expand(&self, globals: &Globals, text: &str) -> String {
        if !self.enabled || !text.contains("${") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 2..).unwrap_or_default();
            let name = after
                .find('}')
                .and_then(|end| after.get(..end))
                .filter(|n| valid_reference(n));
            match name {
                Some(name) => {
                    let value = self.reference(globals, name);
                    if out.len() + value.len() <= text.len() + MAX_GROWTH {
                        out.push_str(&value);
                    }
                    rest = after.get(name.len() + 1..).unwrap_or_default();
                }
                None => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn reference(&self, globals: &Globals, name: &str) -> String {
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let n: usize = name.trim_start_matches('0').parse().unwrap_or(0);
            let zeros = name.bytes().all(|b| b == b'0');
            let n = if zeros {
                0
            } else if n == 0 {
                usize::MAX
            } else {
                n
            };
            return self.groups.get(n).cloned().unwrap_or_default();
        }
        self.get(globals, name).to_string()
    }
}

fn valid_reference(name: &str) -> bool {
    if !name.is_empty() && name.len() <= 16 && name.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    !name.is_empty()
        && name.len() <= 72
        && name.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn first(value: &str, upper: bool) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(c) if upper => c.to_uppercase().chain(chars).collect(),
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn quote(value: &str, special: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Applies `set` modifiers, already in precedence order.
pub(crate) fn modify(mods: &[Modifier], mut value: String) -> String {
    for m in mods {
        value = match m {
            Modifier::Lower => value.to_lowercase(),
            Modifier::Upper => value.to_uppercase(),
            Modifier::LowerFirst => first(&value, false),
            Modifier::UpperFirst => first(&value, true),
            Modifier::QuoteWildcard => quote(&value, "*?\\"),
            Modifier::QuoteRegex => quote(&value, "\\^$.[]|()*+?{}"),
            Modifier::Length => value.chars().count().to_string(),
        };
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_and_modifiers() {
        let mut f = Frame::new(true);
        let mut g = Globals::new();
        f.set(&mut g, "Company", "ACME".into()).unwrap();
        f.groups = vec!["all".into(), "one".into()];
        assert_eq!(
            f.expand(&g, "${company}/${1}/${2}/${}/${a b}"),
            "ACME/one//${}/${a b}"
        );
        assert_eq!(f.expand(&g, "${${company}}"), "${ACME}");
        f.declare_global("shared");
        f.set(&mut g, "shared", "x".into()).unwrap();
        assert_eq!(g.get("shared").map(String::as_str), Some("x"));
        assert_eq!(f.expand(&g, "${global.shared}"), "x");
        assert_eq!(
            modify(&[Modifier::Upper, Modifier::Length], "abc".into()),
            "3"
        );
        assert_eq!(modify(&[Modifier::LowerFirst], "ABC".into()), "aBC");
        f.set(&mut g, "big", "x".repeat(10_000)).unwrap();
        assert_eq!(f.expand(&g, "${big}").len(), MAX_VALUE);
        let many = "${big}".repeat(1000);
        assert!(f.expand(&g, &many).len() <= many.len() + MAX_GROWTH);
        assert_eq!(
            modify(&[Modifier::QuoteWildcard], "a*b?".into()),
            "a\\*b\\?"
        );
    }
}
