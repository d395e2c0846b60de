//! What the status page shows of a session that runs in a worker process: the login process only
//! relays its bytes, so it reads the client's command lines as they pass (after TLS, before the
//! worker) and records the last command and the IMAP state (SELECTED mailbox, IDLE). It never
//! changes, delays or stores what it sees, and it skips IMAP literals (message bodies).

use roost_protocol::imap::KNOWN_COMMANDS;
use roost_protocol::managesieve::COMMANDS as MANAGESIEVE_COMMANDS;

use crate::config::Family;
use crate::listen::registry::{SessionHandle, SessionState};

/// The longest command line looked at; the rest of a longer line is skipped.
const MAX_LINE: usize = 512;

/// Keywords besides IMAP's and ManageSieve's commands: IMAP's `DONE`, POP3's commands (SMTP's
/// are not followed).
const OTHER_KEYWORDS: &[&str] = &[
    "DONE", "STAT", "RETR", "DELE", "RSET", "TOP", "UIDL", "QUIT", "CAPA",
];

/// Follows one relayed client byte stream.
pub struct CommandWatch {
    family: Family,
    line: Vec<u8>,
    /// Literal bytes still to skip.
    literal: u64,
    overflow: bool,
    selected: Option<String>,
}

impl CommandWatch {
    /// Starts watching a session of `family` (logged in already).
    pub fn new(family: Family) -> Self {
        Self {
            family,
            line: Vec::new(),
            literal: 0,
            overflow: false,
            selected: None,
        }
    }

    /// Looks at bytes on their way from the client to the worker.
    pub fn feed(&mut self, mut bytes: &[u8], handle: &SessionHandle) {
        while !bytes.is_empty() {
            if self.literal > 0 {
                let skip = (self.literal as usize).min(bytes.len());
                self.literal -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.push(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    if !std::mem::take(&mut self.overflow) {
                        self.line_done(&line, handle);
                    }
                    self.literal = literal_announced(&line);
                }
                None => {
                    self.push(bytes);
                    bytes = &[];
                }
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.overflow = true;
        }
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn line_done(&mut self, line: &[u8], handle: &SessionHandle) {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let first = match self.family {
            // IMAP lines start with a tag; `DONE` (ending IDLE) has none.
            Family::Imap if text.trim().eq_ignore_ascii_case("DONE") => Some("DONE"),
            Family::Imap => {
                words.next();
                match words.next() {
                    Some(w) if w.eq_ignore_ascii_case("UID") => words.next(),
                    other => other,
                }
            }
            _ => words.next(),
        };
        let Some(keyword) = first.and_then(known_keyword) else {
            return;
        };
        handle.set_command(keyword);
        if self.family != Family::Imap {
            return;
        }
        let back = |selected: &Option<String>| match selected {
            Some(name) => SessionState::Selected(name.clone()),
            None => SessionState::Authenticated,
        };
        match keyword {
            "SELECT" | "EXAMINE" => {
                let name = words.next().unwrap_or("").trim_matches('"').to_string();
                self.selected = Some(name);
                handle.set_state(back(&self.selected));
            }
            "CLOSE" | "UNSELECT" => {
                self.selected = None;
                handle.set_state(SessionState::Authenticated);
            }
            "IDLE" => handle.set_state(SessionState::Idle),
            "DONE" => handle.set_state(back(&self.selected)),
            _ => {}
        }
    }
}

/// The command keyword `word` names (any case), as the status page spells it; `None` for
/// anything that is no command of ours.
pub fn known_keyword(word: &str) -> Option<&'static str> {
    KNOWN_COMMANDS
        .iter()
        .chain(OTHER_KEYWORDS)
        .chain(MANAGESIEVE_COMMANDS)
        .find(|k| k.eq_ignore_ascii_case(word))
        .copied()
}

/// The length of a literal announced at the end of an IMAP line (`{42}` or `{42+}`).
fn literal_announced(line: &[u8]) -> u64 {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(inner) = line.strip_suffix(b"}") else {
        return 0;
    };
    let Some(open) = inner.iter().rposition(|&b| b == b'{') else {
        return 0;
    };
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_announced_and_skipped() {
        assert_eq!(literal_announced(b"a APPEND INBOX {42}\r"), 42);
        assert_eq!(literal_announced(b"a APPEND INBOX {7+}"), 7);
        assert_eq!(literal_announced(b"a NOOP"), 0);
        assert_eq!(literal_announced(b"a LOGIN {x}"), 0);
    }
}
