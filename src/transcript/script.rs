//! The transcript file format (`tests/transcripts/README.md` is its manual): directives that
//! set the session up, `C:` lines the client sends, `S:` lines the server must answer, and
//! `CLOSED` where the server must hang up. Parsing keeps every line, so a blessed file keeps
//! its comments and layout.

use std::net::IpAddr;

use crate::config::Protocol;

/// A parsed transcript: its setup and its lines in file order.
#[derive(Debug)]
pub struct Script {
    /// How the session is set up.
    pub setup: Setup,
    /// Every line of the file, classified.
    pub items: Vec<Item>,
}

/// What the `@` directives ask for.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The listener protocol the session believes it serves.
    pub protocol: Protocol,
    /// The client's address (decides the plaintext-login rules).
    pub peer: IpAddr,
    /// Users besides the default one: (name, password).
    pub users: Vec<(String, String)>,
    /// TOML lines merged over the base configuration.
    pub config: Vec<String>,
    /// Messages put into INBOXes before the session starts.
    pub seeds: Vec<Seed>,
    /// UIDVALIDITY of every seeded INBOX.
    pub uidvalidity: u32,
    /// INTERNALDATE (file mtime, Unix seconds) of the first seeded message; each further one
    /// is a minute later.
    pub internaldate: i64,
}

/// One message file to put into a user's INBOX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// Whose INBOX.
    pub user: String,
    /// File name under `tests/transcripts/messages/`.
    pub file: String,
    /// Maildir flag letters (`S`, `F`, ...); `None` leaves the message new (and \Recent).
    pub flags: Option<String>,
}

/// One line of a transcript file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A comment, a blank line or a directive: kept as written.
    Other(String),
    /// `C:` — the client sends this line and CRLF.
    Client(String),
    /// `S:` — the server sends a line matching this pattern, then CRLF.
    Server(String),
    /// `CLOSED` — the server closes the connection here.
    Closed,
}

/// The default INTERNALDATE of seeded messages: 2020-03-02 10:00:00 UTC.
const DEFAULT_INTERNALDATE: i64 = 1_583_143_200;
/// The default UIDVALIDITY of seeded INBOXes.
const DEFAULT_UIDVALIDITY: u32 = 1_700_000_000;

impl Script {
    /// Parses `text`; `protocol` applies unless an `@protocol` directive says otherwise.
    pub fn parse(text: &str, protocol: Protocol) -> Result<Self, String> {
        let mut setup = Setup {
            protocol,
            peer: IpAddr::from([127, 0, 0, 1]),
            users: Vec::new(),
            config: Vec::new(),
            seeds: Vec::new(),
            uidvalidity: DEFAULT_UIDVALIDITY,
            internaldate: DEFAULT_INTERNALDATE,
        };
        let mut items = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let item = classify(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            if let Item::Other(other) = &item {
                if let Some(directive) = other.strip_prefix('@') {
                    setup
                        .apply(directive)
                        .map_err(|e| format!("line {}: {e}", n + 1))?;
                }
            }
            items.push(item);
        }
        Ok(Self { setup, items })
    }

    /// The file again, with `items` in place of the parsed ones.
    pub fn render(items: &[Item]) -> String {
        let mut out = String::new();
        for item in items {
            match item {
                Item::Other(text) => out.push_str(text),
                Item::Client(text) => push_prefixed(&mut out, "C:", text),
                Item::Server(text) => push_prefixed(&mut out, "S:", text),
                Item::Closed => out.push_str("CLOSED"),
            }
            out.push('\n');
        }
        out
    }
}

fn push_prefixed(out: &mut String, prefix: &str, text: &str) {
    out.push_str(prefix);
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
}

/// Sorts one line into its kind; `C:`/`S:` alone stand for an empty line.
fn classify(line: &str) -> Result<Item, String> {
    if line == "CLOSED" {
        return Ok(Item::Closed);
    }
    for (prefix, make) in [
        ("C:", Item::Client as fn(String) -> Item),
        ("S:", Item::Server),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return match rest.strip_prefix(' ') {
                Some(text) => Ok(make(text.to_string())),
                None if rest.is_empty() => Ok(make(String::new())),
                None => Err(format!("{prefix} must be followed by a space")),
            };
        }
    }
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return Ok(Item::Other(line.to_string()));
    }
    Err(format!(
        "not a comment, directive, C:, S: or CLOSED line: {line:?}"
    ))
}

impl Setup {
    /// Applies one directive (the text after `@`).
    fn apply(&mut self, directive: &str) -> Result<(), String> {
        let (name, rest) = directive.split_once(' ').unwrap_or((directive, ""));
        let rest = rest.trim();
        match name {
            "protocol" => {
                self.protocol =
                    Protocol::from_name(rest).ok_or_else(|| format!("unknown protocol {rest:?}"))?
            }
            "peer" => self.peer = rest.parse().map_err(|e| format!("@peer {rest:?}: {e}"))?,
            "user" => {
                let (user, password) = rest
                    .split_once(' ')
                    .ok_or("@user needs a name and a password")?;
                self.users.push((user.to_string(), password.to_string()));
            }
            "config" => self.config.push(rest.to_string()),
            "seed" => self.seeds.extend(parse_seeds(rest)?),
            "uidvalidity" => self.uidvalidity = number(rest)?,
            "internaldate" => self.internaldate = number(rest)?,
            other => return Err(format!("unknown directive @{other}")),
        }
        Ok(())
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// `USER FILE[:FLAGS][*COUNT] ...`
fn parse_seeds(text: &str) -> Result<Vec<Seed>, String> {
    let mut words = text.split_whitespace();
    let user = words.next().ok_or("@seed needs a user and files")?;
    let mut seeds = Vec::new();
    for word in words {
        let (spec, count) = match word.split_once('*') {
            Some((spec, n)) => (spec, number::<usize>(n)?),
            None => (word, 1),
        };
        let (file, flags) = match spec.split_once(':') {
            Some((file, flags)) => (file, Some(flags.to_string())),
            None => (spec, None),
        };
        let seed = Seed {
            user: user.to_string(),
            file: file.to_string(),
            flags,
        };
        seeds.extend(std::iter::repeat_n(seed, count));
    }
    Ok(seeds)
}

/// The bytes a `C:` line sends (CRLF not included): `{LF}`, `{CR}` and `{NUL}` stand for the
/// bytes a client may not send but an attacker does (bare line ends, NUL).
pub fn client_bytes(line: &str) -> Vec<u8> {
    line.replace("{LF}", "\n")
        .replace("{CR}", "\r")
        .replace("{NUL}", "\0")
        .into_bytes()
}

/// Whether a server line matches an `S:` pattern: `{host}` stands for `host`, `{*}` for any run
/// of characters; everything else must be equal byte for byte.
pub fn matches(pattern: &str, line: &str, host: &str) -> bool {
    let pattern = pattern.replace("{host}", host);
    let mut parts = pattern.split("{*}");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    // Leftmost match for each middle piece leaves the most room for the ones after it.
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_directives_and_seeds_parse() {
        let text = "# a comment\n@peer 192.0.2.1\n@seed plain a.eml:S*2 b.eml\n\
                    S: * OK hi\nC: a LOGOUT\nC:\nCLOSED\n";
        let script = Script::parse(text, Protocol::Imap).unwrap();
        assert_eq!(script.setup.peer, IpAddr::from([192, 0, 2, 1]));
        assert_eq!(script.setup.seeds.len(), 3);
        assert_eq!(script.setup.seeds[1].flags.as_deref(), Some("S"));
        assert_eq!(script.setup.seeds[2].flags, None);
        assert_eq!(script.items[3], Item::Server("* OK hi".into()));
        assert_eq!(script.items[5], Item::Client(String::new()));
        assert_eq!(script.items[6], Item::Closed);
        assert_eq!(Script::render(&script.items), text);
    }

    #[test]
    fn placeholders_match_what_they_say() {
        assert!(matches("250 {host} hi", "250 mx.example hi", "mx.example"));
        assert!(!matches("250 {host} hi", "250 other hi", "mx.example"));
        assert!(matches(
            "a OK [COPYUID {*} 1 2] done",
            "a OK [COPYUID 99 1 2] done",
            "h"
        ));
        assert!(matches("{*}", "", "h"));
        assert!(matches("x{*}y{*}z", "x1y2y3z", "h"));
        assert!(!matches("x{*}y", "x1y2", "h"));
        assert!(!matches("exact", "exact ", "h"));
        assert!(matches(
            "* 1 FETCH (BODY[] {12}",
            "* 1 FETCH (BODY[] {12}",
            "h"
        ));
    }

    #[test]
    fn client_escapes_become_bytes() {
        assert_eq!(client_bytes("a{LF}b{CR}c{NUL}d {12}"), b"a\nb\rc\0d {12}");
    }

    #[test]
    fn unknown_lines_and_directives_are_errors() {
        assert!(Script::parse("X: what\n", Protocol::Imap).is_err());
        assert!(Script::parse("C:x\n", Protocol::Imap).is_err());
        assert!(Script::parse("@colour blue\n", Protocol::Imap).is_err());
    }
}
