//! `[sieve]`: the limits ManageSieve enforces per user, and the admin's scripts that run
//! before and after each user's own at delivery (checked here: they exist and compile).

use std::path::PathBuf;

use toml::Spanned;

use super::raw::RawSieve;
use super::validate::Checker;

/// Scripts per user unless `[sieve] max_scripts` says otherwise.
pub const DEFAULT_MAX_SCRIPTS: usize = 20;
/// Bytes per script unless `[sieve] max_script_size` says otherwise.
pub const DEFAULT_MAX_SCRIPT_SIZE: u64 = 64 * 1024;
/// The largest `max_script_size` accepted (the script store reads no more of a file).
const MAX_SCRIPT_SIZE_CAP: u64 = 16 * 1024 * 1024;

/// `[sieve]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveConfig {
    /// Scripts one user may keep.
    pub max_scripts: usize,
    /// Bytes one script may have.
    pub max_script_size: u64,
    /// Admin scripts run before the user's active script, in order.
    pub before: Vec<PathBuf>,
    /// Admin scripts run after it (when it keeps the message going), in order.
    pub after: Vec<PathBuf>,
}

impl Default for SieveConfig {
    fn default() -> Self {
        Self {
            max_scripts: DEFAULT_MAX_SCRIPTS,
            max_script_size: DEFAULT_MAX_SCRIPT_SIZE,
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

/// Validates `[sieve]`.
pub(super) fn sieve(c: &mut Checker<'_>, raw: &RawSieve) -> SieveConfig {
    let mut config = SieveConfig::default();
    if let Some(max) = &raw.max_scripts {
        match usize::try_from(*max.get_ref()) {
            Ok(n) if n > 0 => config.max_scripts = n,
            _ => c.at(max, "sieve.max_scripts", "must be at least 1"),
        }
    }
    if let Some(size) = &raw.max_script_size {
        match *size.get_ref() {
            n if (1..=MAX_SCRIPT_SIZE_CAP).contains(&n) => config.max_script_size = n,
            _ => c.at(
                size,
                "sieve.max_script_size",
                format!("must be between 1 and {MAX_SCRIPT_SIZE_CAP} bytes"),
            ),
        }
    }
    config.before = scripts(c, raw.before.as_deref(), "sieve.before");
    config.after = scripts(c, raw.after.as_deref(), "sieve.after");
    config
}

/// Resolves and checks a list of admin scripts: each must be readable and compile.
fn scripts(c: &mut Checker<'_>, raw: Option<&[Spanned<String>]>, key: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for value in raw.unwrap_or_default() {
        let path = c.path(value.get_ref());
        match std::fs::read(&path) {
            Err(e) => c.at(value, key, format!("cannot read {}: {e}", path.display())),
            Ok(source) => match roost_protocol::sieve::compile(&source) {
                Ok(_) => paths.push(path),
                Err(e) => c.at(
                    value,
                    key,
                    format!("{}:{}: {}", path.display(), e.line, e.message),
                ),
            },
        }
    }
    paths
}
