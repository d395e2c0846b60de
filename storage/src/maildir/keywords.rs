//! The `dovecot-keywords` file: which keyword each maildir letter `a`..`z` stands for.

use std::fs;
use std::io;
use std::path::Path;

use crate::durable;
use crate::Error;

/// File name inside the folder.
pub const FILE_NAME: &str = "dovecot-keywords";

/// Letter ↔ keyword table (at most 26 keywords per folder, as in Dovecot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
}

impl Keywords {
    /// Reads the table; `None` when the file does not exist.
    pub fn read(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(FILE_NAME);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Self::parse(&String::from_utf8_lossy(&bytes)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Whether no keyword is defined.
    pub fn is_empty(&self) -> bool {
        self.names.iter().all(Option::is_none)
    }

    /// Parses `dovecot-keywords` text; lines that make no sense are skipped.
    pub fn parse(text: &str) -> Self {
        let mut table = Self {
            names: vec![None; 26],
        };
        for line in text.lines() {
            let Some((idx, name)) = line.split_once(' ') else {
                continue;
            };
            if let Ok(idx) = idx.parse::<usize>() {
                if idx < 26 && valid(name) {
                    table.names[idx] = Some(name.to_string());
                }
            }
        }
        table
    }

    /// The keyword of each letter, `a` first (`None` where a letter is free).
    pub fn names(&self) -> &[Option<String>] {
        &self.names
    }

    /// The keyword a letter stands for.
    pub fn name(&self, letter: char) -> Option<&str> {
        let idx = (letter as usize).checked_sub('a' as usize)?;
        self.names.get(idx)?.as_deref()
    }

    /// The letter for a keyword, assigning a free one if needed; `None` when all 26 are taken
    /// or the name cannot be a keyword. The bool says whether the table changed.
    pub fn letter(&mut self, name: &str) -> Option<(char, bool)> {
        if let Some(idx) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return Some((letter_of(idx), false));
        }
        if !valid(name) {
            return None;
        }
        self.names.resize(26, None);
        let idx = self.names.iter().position(Option::is_none)?;
        self.names[idx] = Some(name.to_string());
        Some((letter_of(idx), true))
    }

    /// The table as `dovecot-keywords` text.
    pub fn render(&self) -> String {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| format!("{i} {n}\n")))
            .collect()
    }

    /// Writes the table atomically.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        durable::replace(dir, FILE_NAME, self.render().as_bytes())
    }
}

fn letter_of(idx: usize) -> char {
    (b'a' + idx as u8) as char
}

/// An IMAP atom usable as a keyword.
fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_assigned_kept_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = Keywords::read(dir.path()).unwrap().unwrap_or_default();
        assert_eq!(k.letter("$Junk"), Some(('a', true)));
        assert_eq!(k.letter("NonJunk"), Some(('b', true)));
        assert_eq!(k.letter("$Junk"), Some(('a', false)));
        assert_eq!(k.letter("bad keyword"), None);
        k.write(dir.path()).unwrap();
        let again = Keywords::read(dir.path()).unwrap().unwrap();
        assert_eq!(Keywords::parse(&again.render()), again);
        assert_eq!(
            (again.name('a'), again.name('b'), again.name('c')),
            (Some("$Junk"), Some("NonJunk"), None)
        );
        assert_eq!(again.name('\u{1F600}'), None);
    }
}
