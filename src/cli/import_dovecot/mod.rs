//! `roost import-dovecot`: reads a Dovecot 2.3 configuration (the `/etc/dovecot` tree, or what
//! `doveconf -n` prints) and writes the equivalent `roost.toml`, listing every setting it could
//! not carry over both at the top of the file and on stderr, so a move from Dovecot starts
//! from the admin's own settings and says plainly what is left to decide by hand.
//!
//! [`parse`] knows Dovecot's syntax and nothing of its meaning; [`map`] knows the meaning.

pub mod map;
pub mod parse;

use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use map::{Dropped, Imported};
pub use parse::ParseError;

/// Dovecot's configuration directory, read when no other is named.
pub const DEFAULT_DIR: &str = "/etc/dovecot";

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The Dovecot configuration could not be read.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The result could not be written.
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// Why (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
}

/// Reads the configuration at `source` (a directory holding `dovecot.conf`, or a file: a
/// `dovecot.conf` or saved `doveconf -n` output) and maps it.
pub fn import(source: &Path) -> Result<Imported, ImportError> {
    let root = if source.is_dir() {
        source.join("dovecot.conf")
    } else {
        source.to_path_buf()
    };
    let parsed = parse::parse(&parse::Disk, &root)?;
    Ok(map::map(&parsed))
}

/// The whole file: a header naming the source, the not-carried list as comments, the keys.
pub fn render(source: &Path, imported: &Imported) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# roost configuration imported by `roost import-dovecot` from {}.",
        comment_safe(&source.display().to_string())
    );
    let _ = writeln!(
        text,
        "# Check it with `roost check-config -c FILE` before `roost serve -c FILE`."
    );
    if imported.dropped.is_empty() {
        let _ = writeln!(text, "#\n# Every setting was carried over.");
    } else {
        let _ = writeln!(
            text,
            "#\n# Not carried over ({}; setting = value: why):",
            imported.dropped.len()
        );
        for d in &imported.dropped {
            let _ = writeln!(text, "#   {}", comment_safe(&line(source, d)));
        }
    }
    text.push('\n');
    text.push_str(&imported.toml);
    text
}

/// One not-carried setting on one line: `file:line: setting = value: why`.
pub fn line(source: &Path, d: &Dropped) -> String {
    let at = match &d.origin {
        Some(o) => {
            let base = if source.is_dir() {
                source
            } else {
                source.parent().unwrap_or(Path::new(""))
            };
            let file = o.file.strip_prefix(base).unwrap_or(&o.file);
            format!("{}:{}: ", file.display(), o.line)
        }
        None => String::new(),
    };
    format!("{at}{} = {}: {}", d.setting, d.value, d.why)
}

/// Text safe inside a one-line TOML comment (no control characters).
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The command: import, write to `output` (or stdout), list what was left behind on stderr.
pub fn main(source: &Path, output: Option<&Path>) -> Result<(), ImportError> {
    let imported = import(source)?;
    let text = render(source, &imported);
    match output {
        Some(path) => std::fs::write(path, &text).map_err(|error| ImportError::Write {
            path: path.to_path_buf(),
            error,
        })?,
        None => print!("{text}"),
    }
    for d in &imported.dropped {
        eprintln!(
            "roost import-dovecot: not carried over: {}",
            line(source, d)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
