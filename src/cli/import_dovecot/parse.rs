//! A reader for Dovecot 2.3's configuration syntax, knowing nothing of what the settings mean:
//! `key = value`, `key = <file`, `$variable` references, `kind [name] {` ... `}` sections,
//! `!include` / `!include_try` with globs in the last path component, `\` line continuation
//! and `#` comments, following Dovecot's own `config-parser.c` line by line.
//!
//! Sections and includes are followed with explicit stacks (never recursion), both bounded, so
//! a hostile or looping tree ends in an error naming the file and line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Includes nested deeper than this are refused (Dovecot's own trees use two levels; a loop
/// reaches the bound quickly).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Sections nested deeper than this are refused (Dovecot's deepest is four).
pub const MAX_SECTION_DEPTH: usize = 32;
/// At most this many files are read, whatever the globs match.
pub const MAX_FILES: usize = 1000;

/// Where a setting or section was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file, as the include named it (joined to the including file's directory).
    pub file: PathBuf,
    /// 1-based line (the first line of a continued one).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One opened section, e.g. `service imap-login {` (kind `service`, name `imap-login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The word before the name: `service`, `passdb`, `inet_listener`, `protocol`, ...
    pub kind: String,
    /// The section's name, empty for unnamed ones such as `passdb {`.
    pub name: String,
    /// Which opening this is, counted over the whole tree: two unnamed `passdb {` sections are
    /// two password databases, and only the ids tell them apart.
    pub id: usize,
}

/// One `key = value` line with the sections around it, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Enclosing sections, outermost first.
    pub sections: Vec<Section>,
    /// The setting's name.
    pub key: String,
    /// The value, unquoted, with `$variables` expanded; for `key = <file`, the file name.
    pub value: String,
    /// Whether the value was written `<file` (Dovecot reads the file; we keep its name).
    pub from_file: bool,
    /// Where it was written.
    pub origin: Origin,
}

impl Setting {
    /// The `kind/name/.../key` path doveconf uses to name a setting.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            out.push_str(&s.kind);
            out.push('/');
            if !s.name.is_empty() {
                out.push_str(&s.name);
                out.push('/');
            }
        }
        out.push_str(&self.key);
        out
    }

    /// The value as written in a Dovecot file (with the `<` of a file value).
    pub fn shown_value(&self) -> String {
        if self.from_file {
            format!("<{}", self.value)
        } else {
            self.value.clone()
        }
    }
}

/// A section opening, kept so that empty sections (`unix_listener lmtp { }`) count too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAt {
    /// The section and the ones around it, outermost first (the last is the opened one).
    pub path: Vec<Section>,
    /// Where it was opened.
    pub origin: Origin,
}

/// Everything a configuration tree says, in the order Dovecot reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every setting, later ones overriding earlier ones of the same path.
    pub settings: Vec<Setting>,
    /// Every section opening.
    pub sections: Vec<SectionAt>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A line Dovecot would refuse too.
    #[error("{origin}: {message}")]
    Syntax {
        /// Where.
        origin: Origin,
        /// What is wrong.
        message: String,
    },
}

/// How the parser reaches files: the file system, or a map in tests.
pub trait Files {
    /// The whole text of a file.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The entries of a directory (full paths), for include globs.
    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>>;
}

/// The real file system.
pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let bytes = std::fs::read(path)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }
}

/// One line, classified the way Dovecot's `config_parse_line` does.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Skip,
    KeyValue(String, String),
    KeyFile(String, String),
    KeyVariable(String, String),
    Include { path: String, must_exist: bool },
    SectionBegin(String, String),
    SectionEnd,
    Error(&'static str),
}

/// A file being read, on the include stack.
struct Frame {
    file: PathBuf,
    lines: Vec<String>,
    next: usize,
    depth: usize,
    /// Sections open when the file started: a file closes what it opens.
    sections_at_start: usize,
}

/// Reads a configuration tree starting at `root`.
pub fn parse(files: &dyn Files, root: &Path) -> Result<Parsed, ParseError> {
    let mut reader = Reader::default();
    let mut stack = vec![frame(files, root, 0, 0)?];
    reader.out.files.push(root.to_path_buf());
    while let Some(top) = stack.last_mut() {
        let Some((line_no, text)) = take_line(top) else {
            let Some(done) = stack.pop() else { break };
            reader.end_file(&done)?;
            continue;
        };
        let origin = Origin {
            file: top.file.clone(),
            line: line_no,
        };
        let included = reader.line(files, top, &text, origin)?;
        stack.extend(included);
    }
    Ok(reader.out)
}

/// What the parser has read so far, across all files.
#[derive(Default)]
struct Reader {
    /// The result being built.
    out: Parsed,
    /// The sections open now, outermost first, with where each was opened.
    open: Vec<(Section, Origin)>,
    /// The values set so far by (enclosing section ids, key), for `$variables`.
    values: HashMap<(Vec<usize>, String), String>,
    /// The id the next section opening gets.
    next_id: usize,
}

impl Reader {
    /// Applies one logical line of `top`; returns the frames of the files it includes, in
    /// reverse so that pushing them reads the first match first.
    fn line(
        &mut self,
        files: &dyn Files,
        top: &Frame,
        text: &str,
        origin: Origin,
    ) -> Result<Vec<Frame>, ParseError> {
        let (key, value, from_file) = match classify(text) {
            Line::Skip => return Ok(Vec::new()),
            Line::Error(e) => return Err(syntax(&origin, e.to_string())),
            Line::SectionEnd => {
                self.close_section(top, &origin)?;
                return Ok(Vec::new());
            }
            Line::SectionBegin(kind, name) => {
                self.open_section(kind, name, origin)?;
                return Ok(Vec::new());
            }
            Line::Include { path, must_exist } => {
                return self.include(files, top, &path, must_exist, &origin)
            }
            Line::KeyValue(k, v) => (k, v, false),
            Line::KeyFile(k, v) => (k, v, true),
            Line::KeyVariable(k, v) => {
                let expanded = expand_variables(&v, &k, &self.scope(), &self.values)
                    .map_err(|message| syntax(&origin, message))?;
                (k, expanded, false)
            }
        };
        self.set(key, value, from_file, origin);
        Ok(Vec::new())
    }

    /// The ids of the open sections, outermost first: where a value is set.
    fn scope(&self) -> Vec<usize> {
        self.open.iter().map(|(s, _)| s.id).collect()
    }

    /// Records `key = value` in the open sections.
    fn set(&mut self, key: String, value: String, from_file: bool, origin: Origin) {
        let sections: Vec<Section> = self.open.iter().map(|(s, _)| s.clone()).collect();
        self.values
            .insert((self.scope(), key.clone()), value.clone());
        self.out.settings.push(Setting {
            sections,
            key,
            value,
            from_file,
            origin,
        });
    }

    /// `kind [name] {`: a new section, refused beyond [`MAX_SECTION_DEPTH`].
    fn open_section(
        &mut self,
        kind: String,
        name: String,
        origin: Origin,
    ) -> Result<(), ParseError> {
        if self.open.len() >= MAX_SECTION_DEPTH {
            return Err(syntax(
                &origin,
                format!("sections nested deeper than {MAX_SECTION_DEPTH}"),
            ));
        }
        let section = Section {
            kind,
            name,
            id: self.next_id,
        };
        self.next_id += 1;
        self.open.push((section, origin.clone()));
        self.out.sections.push(SectionAt {
            path: self.open.iter().map(|(s, _)| s.clone()).collect(),
            origin,
        });
        Ok(())
    }

    /// `}`: closes a section this file opened (a file cannot close its includer's).
    fn close_section(&mut self, top: &Frame, origin: &Origin) -> Result<(), ParseError> {
        if self.open.len() <= top.sections_at_start {
            return Err(syntax(origin, "'}' without an open section".into()));
        }
        self.open.pop();
        Ok(())
    }

    /// `!include` / `!include_try`: the frames of the matched files (in reverse), refused
    /// beyond [`MAX_INCLUDE_DEPTH`] or [`MAX_FILES`].
    fn include(
        &mut self,
        files: &dyn Files,
        top: &Frame,
        path: &str,
        must_exist: bool,
        origin: &Origin,
    ) -> Result<Vec<Frame>, ParseError> {
        let depth = top.depth + 1;
        if depth > MAX_INCLUDE_DEPTH {
            return Err(syntax(
                origin,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (an include loop?)"),
            ));
        }
        let base = top.file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let matched = expand_include(files, &base, path, must_exist)
            .map_err(|message| syntax(origin, message))?;
        if self.out.files.len() + matched.len() > MAX_FILES {
            return Err(syntax(
                origin,
                format!("more than {MAX_FILES} files included"),
            ));
        }
        // Reversed so the first match is read first.
        let frames = matched
            .iter()
            .rev()
            .map(|file| frame(files, file, depth, self.open.len()))
            .collect::<Result<Vec<_>, _>>()?;
        self.out.files.extend(matched);
        Ok(frames)
    }

    /// At the end of a file: an error if it left a section open.
    fn end_file(&self, done: &Frame) -> Result<(), ParseError> {
        if self.open.len() <= done.sections_at_start {
            return Ok(());
        }
        let (section, origin) = &self.open[self.open.len() - 1];
        let name = format!("{} {}", section.kind, section.name);
        Err(ParseError::Syntax {
            origin: Origin {
                file: done.file.clone(),
                line: done.lines.len().max(1),
            },
            message: format!(
                "missing '}}' for section {} opened at line {}",
                name.trim_end(),
                origin.line
            ),
        })
    }
}

/// A syntax error at `origin`.
fn syntax(origin: &Origin, message: String) -> ParseError {
    ParseError::Syntax {
        origin: origin.clone(),
        message,
    }
}

fn frame(
    files: &dyn Files,
    path: &Path,
    depth: usize,
    sections_at_start: usize,
) -> Result<Frame, ParseError> {
    let text = files.read(path).map_err(|error| ParseError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(Frame {
        file: path.to_path_buf(),
        lines: text.lines().map(str::to_string).collect(),
        next: 0,
        depth,
        sections_at_start,
    })
}

/// The next logical line of a file (continuations joined) with its first line's number.
fn take_line(frame: &mut Frame) -> Option<(usize, String)> {
    let start = frame.next;
    let mut full = String::new();
    while frame.next < frame.lines.len() {
        let raw = &frame.lines[frame.next];
        frame.next += 1;
        let line = strip_comment(raw);
        match line.strip_suffix('\\') {
            Some(cont) => {
                full.push_str(cont.trim_end());
                full.push(' ');
            }
            None => {
                full.push_str(line);
                return Some((start + 1, full));
            }
        }
    }
    (frame.next > start).then_some((start + 1, full))
}

/// The line without its comment and surrounding white space. A `#` starts a comment outside
/// quotes, as in Dovecot (which warns when no space precedes it).
fn strip_comment(raw: &str) -> &str {
    let line = raw.trim_start();
    if line.starts_with('#') {
        return "";
    }
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return line[..i].trim_end(),
            None => {}
        }
    }
    line.trim_end()
}

fn is_white(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Classifies one comment-free, trimmed line.
fn classify(line: &str) -> Line {
    if line.is_empty() {
        return Line::Skip;
    }
    let key_end = line
        .find(|c: char| is_white(c) || c == '=')
        .unwrap_or(line.len());
    let key = &line[..key_end];
    let rest = line[key_end..].trim_start_matches(is_white);
    match key {
        "!include" | "!include_try" => {
            return Line::Include {
                path: unquote(rest),
                must_exist: key == "!include",
            }
        }
        "}" if rest.is_empty() => return Line::SectionEnd,
        _ => {}
    }
    if let Some(value) = rest.strip_prefix('=') {
        let value = value.trim_start_matches(is_white);
        if let Some(file) = value.strip_prefix('<') {
            return Line::KeyFile(key.into(), file.trim_start_matches(is_white).into());
        }
        if !value.starts_with(['"', '\'']) && value.contains('$') {
            return Line::KeyVariable(key.into(), value.into());
        }
        return Line::KeyValue(key.into(), unquote(value));
    }
    if key.is_empty() {
        return Line::Error("expected a setting, a section or '}'");
    }
    // kind [name] {
    let (name, after) = if rest.starts_with('{') {
        (String::new(), rest)
    } else if let Some(quoted) = rest.strip_prefix('"') {
        match quoted.find('"') {
            Some(end) => (
                unescape(&quoted[..end]),
                quoted[end + 1..].trim_start_matches(is_white),
            ),
            None => return Line::Error("unterminated quoted section name"),
        }
    } else {
        let end = rest.find(is_white).unwrap_or(rest.len());
        (
            rest[..end].to_string(),
            rest[end..].trim_start_matches(is_white),
        )
    };
    match after {
        "{" => Line::SectionBegin(key.into(), name),
        a if a.starts_with('{') => Line::Error("garbage after '{'"),
        _ => Line::Error("expecting '=' or '{'"),
    }
}

/// A value without its surrounding quotes (and with `\` escapes resolved), as Dovecot does.
fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        unescape(&value[1..value.len() - 1])
    } else {
        value.to_string()
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `$name` references replaced by the value `name` has at this point, looked up in the current
/// section and then outwards. A setting that refers to itself before being set starts from
/// empty (`protocols = $protocols imap`), as Dovecot's empty defaults do.
fn expand_variables(
    value: &str,
    key: &str,
    scope: &[usize],
    values: &HashMap<(Vec<usize>, String), String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        if name.is_empty() || (name == "ENV" && after[end..].starts_with(':')) {
            // `$ENV:NAME` depends on the environment Dovecot starts in: kept as written.
            out.push('$');
            rest = after;
            continue;
        }
        let found = (0..=scope.len())
            .rev()
            .find_map(|n| values.get(&(scope[..n].to_vec(), name.to_string())));
        match found {
            Some(v) => out.push_str(v),
            None if name == key => {}
            None => return Err(format!("unknown variable ${name}")),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

/// The files an include names: the path itself, or the sorted matches of a glob (`*`, `?`)
/// in its last component. A plain `!include` of a missing file or of a glob matching nothing
/// is an error, as in Dovecot; `!include_try` skips both.
fn expand_include(
    files: &dyn Files,
    base: &Path,
    pattern: &str,
    must_exist: bool,
) -> Result<Vec<PathBuf>, String> {
    if pattern.is_empty() {
        return Err("!include needs a path".into());
    }
    let full = base.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = full.parent().unwrap_or(Path::new("/"));
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "{pattern}: wildcards are understood in the last path component only"
        ));
    }
    if !name.contains(['*', '?']) {
        return match files.read(&full) {
            Ok(_) => Ok(vec![full]),
            Err(_) if !must_exist => Ok(Vec::new()),
            Err(e) => Err(format!("{}: cannot read: {e}", full.display())),
        };
    }
    let mut matched: Vec<PathBuf> = match files.list(dir) {
        Ok(entries) => entries
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| glob_match(&name, &n.to_string_lossy()))
            })
            .collect(),
        Err(_) if !must_exist => Vec::new(),
        Err(e) => return Err(format!("{}: cannot list: {e}", dir.display())),
    };
    matched.sort();
    if matched.is_empty() && must_exist {
        return Err(format!("{pattern}: no matches"));
    }
    Ok(matched)
}

/// Shell-style matching of `*` and `?` (no brackets), iterative with one backtrack point; a
/// leading dot is matched only by a pattern starting with one, as glob(3) does.
fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An in-memory tree of files, for tests of the parser and the mapping.
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::collections::BTreeMap;

    /// Files by absolute path.
    #[derive(Default)]
    pub struct Memory(pub BTreeMap<PathBuf, String>);

    impl Memory {
        /// A tree from `(path, text)` pairs.
        pub fn new(files: &[(&str, &str)]) -> Self {
            Memory(
                files
                    .iter()
                    .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                    .collect(),
            )
        }
    }

    impl Files for Memory {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }

        fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
            Ok(self
                .0
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .cloned()
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::Memory;
    use super::*;

    fn parse_one(text: &str) -> Result<Parsed, ParseError> {
        parse(
            &Memory::new(&[("/d/dovecot.conf", text)]),
            Path::new("/d/dovecot.conf"),
        )
    }

    fn pairs(p: &Parsed) -> Vec<(String, String)> {
        p.settings
            .iter()
            .map(|s| (s.path(), s.shown_value()))
            .collect()
    }

    #[test]
    fn lines_sections_quotes_comments_and_files() {
        let p = parse_one(
            "# comment\n\
             protocols = \" imap lmtp pop3\"\n\
             ssl_cert = </etc/ssl/a.pem\n\
             listen = *, ::   # trailing comment\n\
             auth_mechanisms = plain \\\n   login\n\
             service imap-login {\n\
               inet_listener imaps {\n\
                 port = 993\n\
               }\n\
             }\n\
             namespace inbox {\n  mailbox \"Sent Messages\" {\n    special_use = \\Sent\n  }\n}\n\
             login_greeting = 'ready # really'\n",
        )
        .unwrap();
        assert_eq!(
            pairs(&p),
            [
                ("protocols", " imap lmtp pop3"),
                ("ssl_cert", "</etc/ssl/a.pem"),
                ("listen", "*, ::"),
                ("auth_mechanisms", "plain login"),
                ("service/imap-login/inet_listener/imaps/port", "993"),
                (
                    "namespace/inbox/mailbox/Sent Messages/special_use",
                    "\\Sent"
                ),
                ("login_greeting", "ready # really"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(p.settings[4].origin.line, 9);
        assert_eq!(p.sections.len(), 4);
    }

    #[test]
    fn unnamed_sections_are_told_apart() {
        let p =
            parse_one("passdb {\n driver = pam\n}\npassdb {\n driver = passwd-file\n}\n").unwrap();
        assert_ne!(p.settings[0].sections[0].id, p.settings[1].sections[0].id);
    }

    #[test]
    fn variables_expand_from_earlier_values() {
        let p = parse_one(
            "protocols = $protocols imap\nprotocols = $protocols pop3\nmail_plugins = quota\n\
             protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\n",
        )
        .unwrap();
        assert_eq!(p.settings[1].value, "imap pop3");
        assert_eq!(p.settings[3].value, "quota imap_quota");
        let e = parse_one("a = $nothing\n").unwrap_err().to_string();
        assert_eq!(e, "/d/dovecot.conf:1: unknown variable $nothing");
    }

    #[test]
    fn includes_follow_globs_in_order_and_relative_paths() {
        let files = Memory::new(&[
            (
                "/d/dovecot.conf",
                "!include conf.d/*.conf\n!include_try local.conf\n!include_try /none/*.x\nlast = 1\n",
            ),
            ("/d/conf.d/20-b.conf", "b = 2\n"),
            ("/d/conf.d/10-a.conf", "a = 1\n!include /d/x.ext\n"),
            ("/d/conf.d/.hidden.conf", "h = 1\n"),
            ("/d/x.ext", "passdb {\n  driver = pam\n}\n"),
        ]);
        let p = parse(&files, Path::new("/d/dovecot.conf")).unwrap();
        let keys: Vec<String> = p.settings.iter().map(|s| s.path()).collect();
        assert_eq!(keys, ["a", "passdb/driver", "b", "last"]);
        assert_eq!(p.settings[1].origin.file, PathBuf::from("/d/x.ext"));
        let e = parse(
            &Memory::new(&[("/d/dovecot.conf", "!include missing.conf\n")]),
            Path::new("/d/dovecot.conf"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/d/dovecot.conf:1: /d/missing.conf: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn include_loops_and_deep_sections_end_in_errors() {
        let files = Memory::new(&[("/d/dovecot.conf", "!include dovecot.conf\n")]);
        let e = parse(&files, Path::new("/d/dovecot.conf")).unwrap_err();
        assert!(
            e.to_string().contains("includes nested deeper than 16"),
            "{e}"
        );
        let deep = "a {\n".repeat(100_000);
        let e = parse_one(&deep).unwrap_err().to_string();
        assert_eq!(e, "/d/dovecot.conf:33: sections nested deeper than 32");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = |t: &str| parse_one(t).unwrap_err().to_string();
        assert_eq!(
            e("a = 1\nservice imap\n"),
            "/d/dovecot.conf:2: expecting '=' or '{'"
        );
        assert_eq!(
            e("a = 1\n}\n"),
            "/d/dovecot.conf:2: '}' without an open section"
        );
        assert_eq!(
            e("x {\n  y = 1\n"),
            "/d/dovecot.conf:2: missing '}' for section x opened at line 1"
        );
        assert_eq!(
            e("service a { port = 1 }\n"),
            "/d/dovecot.conf:1: garbage after '{'"
        );
        let files = Memory::new(&[
            ("/d/dovecot.conf", "service x {\n!include a.conf\n}\n"),
            ("/d/a.conf", "}\n"),
        ]);
        let e = parse(&files, Path::new("/d/dovecot.conf"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/d/a.conf:1: '}' without an open section");
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match("*.conf", "10-auth.conf"));
        assert!(!glob_match("*.conf", "10-auth.conf.ext"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("*.conf", ".x.conf"));
        assert!(!glob_match("*a*a*a*b", &"a".repeat(10_000)));
    }
}
