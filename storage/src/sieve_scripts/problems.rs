//! What went wrong with a user's scripts at delivery time (a script that stopped compiling, a
//! run that failed), kept beside the scripts so ManageSieve can tell the user, who otherwise
//! never sees the server's log. Newest last, at most [`MAX_PROBLEMS`] lines.

use std::fs;
use std::io::{self, Read};

use super::{ScriptError, ScriptStore};

/// The file in the script directory.
pub const PROBLEMS_FILE: &str = "roost-sieve.log";

/// Lines kept.
pub const MAX_PROBLEMS: usize = 20;

/// Bytes read at most.
const MAX_READ: u64 = 64 * 1024;

impl ScriptStore {
    /// Records a problem (one line, `when: what`); the oldest lines go beyond the limit.
    pub fn record_problem(&self, when: &str, what: &str) -> Result<(), ScriptError> {
        self.ensure()?;
        let mut lines = self.problems()?;
        lines.push(format!("{when}: {what}").replace(['\r', '\n'], " "));
        let skip = lines.len().saturating_sub(MAX_PROBLEMS);
        let text = lines[skip..].join("\n") + "\n";
        let path = self.dir.join(PROBLEMS_FILE);
        fs::write(&path, text).map_err(|e| ScriptError::io(&path, e))
    }

    /// The recorded problems, oldest first.
    pub fn problems(&self) -> Result<Vec<String>, ScriptError> {
        let path = self.dir.join(PROBLEMS_FILE);
        let mut bytes = Vec::new();
        match fs::File::open(&path) {
            Ok(file) => file
                .take(MAX_READ)
                .read_to_end(&mut bytes)
                .map_err(|e| ScriptError::io(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ScriptError::io(&path, e)),
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Forgets the problems (the user has been told, or replaced the script).
    pub fn clear_problems(&self) -> Result<(), ScriptError> {
        let path = self.dir.join(PROBLEMS_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ScriptError::io(&path, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_kept_newest_last_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(dir.path().join("sieve"));
        assert!(store.problems().unwrap().is_empty());
        for n in 0..MAX_PROBLEMS + 5 {
            store
                .record_problem("today", &format!("problem {n}\nsecond line"))
                .unwrap();
        }
        let problems = store.problems().unwrap();
        assert_eq!(problems.len(), MAX_PROBLEMS);
        assert_eq!(
            problems.last().unwrap(),
            &format!("today: problem {} second line", MAX_PROBLEMS + 4)
        );
        // A problem file is not a script.
        assert!(store.list().unwrap().is_empty());
        store.clear_problems().unwrap();
        store.clear_problems().unwrap();
        assert!(store.problems().unwrap().is_empty());
    }
}
