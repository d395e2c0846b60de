//! Address maps an admin keeps in files: `/etc/aliases` (`name: target, target`) and the
//! virtual-address map (`sales@example.com  willie`, `@example.org  catchall`), read the way
//! sendmail and Postfix read them, and re-read when the file changes.
//!
//! Targets that are programs (`|cmd`), files (`/path`) or includes (`:include:`) are not
//! delivered by roost: they are skipped with a warning at load time.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// A map file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not `key: targets` (aliases) or `key targets` (virtual).
    #[error("{path}:{line}: {problem}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// One parsed map: lowercased key → targets, in file order.
#[derive(Debug, Default, Clone)]
pub struct AliasMap {
    entries: HashMap<String, Vec<String>>,
}

impl AliasMap {
    /// Reads and parses a file (`virtual_format`: whitespace after the key instead of `:`).
    pub fn load(path: &Path, virtual_format: bool) -> Result<Self, MapError> {
        let text = fs::read_to_string(path).map_err(|source| MapError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, virtual_format)
    }

    /// Parses the text of a map file; continuation lines start with white space.
    pub fn parse(path: &Path, text: &str, virtual_format: bool) -> Result<Self, MapError> {
        let mut map = Self::default();
        let mut logical: Vec<(usize, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match logical.last_mut() {
                Some((_, text)) if line.starts_with([' ', '\t']) => {
                    text.push(' ');
                    text.push_str(trimmed);
                }
                _ => logical.push((i + 1, trimmed.to_string())),
            }
        }
        for (line, entry) in logical {
            let syntax = |problem: &str| MapError::Syntax {
                path: path.to_path_buf(),
                line,
                problem: problem.to_string(),
            };
            let split = if virtual_format {
                entry.split_once(char::is_whitespace)
            } else {
                entry.split_once(':')
            };
            let Some((key, rest)) = split else {
                return Err(syntax(if virtual_format {
                    "expected `address  target, target`"
                } else {
                    "expected `name: target, target`"
                }));
            };
            let key = key.trim().to_lowercase();
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(syntax("the key must be one word"));
            }
            let mut targets = Vec::new();
            for target in split_targets(rest) {
                if target.starts_with(['|', '/']) || target.starts_with(":include:") {
                    tracing::warn!(file = %path.display(), line, "target {target:?} is not supported by roost and is ignored");
                    continue;
                }
                if target.is_empty()
                    || roost_protocol::smtp::address::Address::parse(&target).is_err()
                {
                    tracing::warn!(file = %path.display(), line, "target {target:?} is not an address and is ignored");
                    continue;
                }
                targets.push(target);
            }
            if targets.is_empty() {
                tracing::warn!(file = %path.display(), line, "{key}: no deliverable targets");
                continue;
            }
            map.entries.entry(key).or_default().extend(targets);
        }
        Ok(map)
    }

    /// The targets of a key (looked up lowercased).
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

/// The targets after a key: separated by commas or blanks, except inside double quotes (so
/// `"|/usr/bin/procmail -a x"` stays one target, as sendmail reads it), each without its
/// quotes and angle brackets.
fn split_targets(rest: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' | ' ' | '\t' if !quoted => {
                targets.push(std::mem::take(&mut current));
            }
            _ => current.push(c),
        }
    }
    targets.push(current);
    targets
        .into_iter()
        .map(|t| {
            t.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// A map file re-read when its modification time or size changes; a broken new version is
/// logged and the previous one kept.
#[derive(Debug)]
pub struct ReloadingMap {
    path: PathBuf,
    virtual_format: bool,
    cache: Mutex<(Option<(SystemTime, u64)>, AliasMap)>,
}

impl ReloadingMap {
    /// Watches `path`; it is read on first use.
    pub fn new(path: PathBuf, virtual_format: bool) -> Self {
        Self {
            path,
            virtual_format,
            cache: Mutex::new((None, AliasMap::default())),
        }
    }

    /// Looks a key up in the current version of the file.
    pub fn get(&self, key: &str) -> Option<Vec<String>> {
        let stamp = fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp.is_some() && cache.0 != stamp {
            match AliasMap::load(&self.path, self.virtual_format) {
                Ok(map) => *cache = (stamp, map),
                Err(e) => {
                    tracing::error!("{e}; keeping the previous version");
                    cache.0 = stamp;
                }
            }
        }
        cache.1.get(key).map(<[String]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_virtual_files_parse() {
        let text = "# comment\npostmaster: root\nRoot: alice,\n  bob@elsewhere.example\nprog: |/bin/x, carol\n";
        let map = AliasMap::parse(Path::new("aliases"), text, false).unwrap();
        assert_eq!(map.get("postmaster").unwrap(), ["root"]);
        assert_eq!(map.get("root").unwrap(), ["alice", "bob@elsewhere.example"]);
        assert_eq!(map.get("prog").unwrap(), ["carol"]);
        let err = AliasMap::parse(Path::new("aliases"), "a: b\nnonsense\n", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "aliases:2: expected `name: target, target`"
        );
        let v = AliasMap::parse(
            Path::new("virtual"),
            "sales@example.com  willie\n@example.org\tcatch, all\n",
            true,
        )
        .unwrap();
        assert_eq!(v.get("Sales@Example.com").unwrap(), ["willie"]);
        assert_eq!(v.get("@example.org").unwrap(), ["catch", "all"]);
        assert!(AliasMap::parse(Path::new("virtual"), "lonely\n", true).is_err());
    }

    #[test]
    fn quoted_programs_and_empty_targets_are_never_targets() {
        // Found by fuzzing: the quotes hid the `|`, and `<x,>` left an empty target.
        let text = "sales: \"|/usr/bin/procmail -a foo\", <dan@example.com>\nbob: <bob@other.example,>\" e\"\n";
        let map = AliasMap::parse(Path::new("aliases"), text, false).unwrap();
        assert_eq!(map.get("sales").unwrap(), ["dan@example.com"]);
        assert_eq!(map.get("bob").unwrap(), ["bob@other.example"]);
    }
}
