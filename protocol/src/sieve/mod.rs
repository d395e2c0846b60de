//! Sieve (RFC 5228) mail filtering, pure: a script is compiled once, then run against one
//! message and its envelope to give the actions delivery must carry out. Nothing here touches
//! a file, a socket or the clock: the caller passes the message bytes (a mapped spool file),
//! the envelope, the time, and a way to load `include`d scripts.
//!
//! ```text
//!   source ── compile ──► Script ──┐
//!   message + envelope + now ──────┴─► execute(before.., user, after..) ──► Outcome { actions }
//! ```
//!
//! The pieces: `lex` (tokens), `parse` (a generic tree, nesting capped), `compile` (checked,
//! typed commands), `run` (the interpreter), and the helpers the tests use (`match_type`,
//! `address`, `message`, `body`, `date`, `variables`, `vacation`).
//!
//! Limits: [`MAX_SCRIPT_BYTES`], [`MAX_NESTING`] at compile time; [`MAX_ACTIONS`],
//! [`MAX_REDIRECTS`], [`MAX_INCLUDE_DEPTH`], [`MAX_INCLUDED`] at run time (a runtime error,
//! so the caller keeps the message).

mod address;
mod body;
mod compile;
mod date;
mod encoded;
mod ir;
mod lex;
mod match_type;
mod message;
mod parse;
mod run;
mod vacation;

/// The stable hash vacation uses for its default `:handle` (delivery keys its memory with it).
pub use vacation::fnv1a as stable_hash;
mod variables;

use std::sync::Arc;

/// Largest script [`compile`] accepts, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Deepest nesting of blocks and tests together; deeper is a [`CompileError`].
pub const MAX_NESTING: usize = parse::MAX_NESTING;
/// Most actions one [`execute`] may take.
pub const MAX_ACTIONS: usize = run::MAX_ACTIONS;
/// Most redirects one [`execute`] may take.
pub const MAX_REDIRECTS: usize = run::MAX_REDIRECTS;
/// Deepest chain of `include`s.
pub const MAX_INCLUDE_DEPTH: usize = run::MAX_INCLUDE_DEPTH;
/// Most scripts one [`execute`] may include in all.
pub const MAX_INCLUDED: usize = run::MAX_INCLUDED;

/// The extensions this interpreter implements, as ManageSieve's `SIEVE` capability lists them.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "imap4flags",
    "body",
    "variables",
    "copy",
    "relational",
    "comparator-i;ascii-numeric",
    "subaddress",
    "regex",
    "vacation",
    "include",
    "date",
    "index",
    "vacation-seconds",
    "mailbox",
    "encoded-character",
];

/// A script that compiled: safe to run any number of times.
#[derive(Debug, Clone)]
pub struct Script {
    program: Arc<ir::Program>,
}

/// Why a script did not compile, with the line it was found on (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CompileError {
    /// The line of the script the error is on.
    pub line: u32,
    /// What is wrong, for the user (ManageSieve shows it verbatim).
    pub message: String,
}

/// Compiles a script (UTF-8 text, at most [`MAX_SCRIPT_BYTES`]); the caller may cap smaller.
pub fn compile(source: &[u8]) -> Result<Script, CompileError> {
    if source.len() > MAX_SCRIPT_BYTES {
        return Err(CompileError {
            line: 1,
            message: format!("a script may be at most {MAX_SCRIPT_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(source).map_err(|e| CompileError {
        line: line_of(source, e.valid_up_to()),
        message: "a script must be UTF-8 text".into(),
    })?;
    let tokens = lex::lex(text)?;
    let tree = parse::parse(tokens)?;
    let program = compile::program(tree)?;
    Ok(Script {
        program: Arc::new(program),
    })
}

fn line_of(source: &[u8], at: usize) -> u32 {
    let newlines = source
        .get(..at)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    u32::try_from(newlines)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// The SMTP envelope the `envelope` test and `subaddress` see.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The reverse path without angle brackets; empty for the null sender `<>`.
    pub from: &'a str,
    /// The original recipient address as the client gave it (`user+tag@domain`).
    pub to: &'a str,
}

/// Everything one run sees.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The envelope.
    pub envelope: Envelope<'a>,
    /// The whole message as stored (header, blank line, body); typically a mapped spool file.
    pub message: &'a [u8],
    /// The time of delivery, seconds since the Unix epoch (`date`/`currentdate`, vacation).
    pub now: i64,
    /// The local time zone's offset from UTC in minutes (`currentdate`, `date :zone`).
    pub zone_minutes: i32,
    /// Every address of the user the message is for (vacation's "is it addressed to me").
    pub user_addresses: &'a [String],
}

/// Where an `include`d script lives (RFC 6609).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// One of the user's own scripts (`:personal`, the default).
    Personal,
    /// One of the admin's scripts (`:global`).
    Global,
}

/// How the interpreter gets the scripts a script includes.
pub trait Includes {
    /// The named script, compiled; `None` if there is no such script.
    fn load(&mut self, location: Location, name: &str) -> Option<Result<Script, CompileError>>;
}

/// No `include` resolves (a script run on its own, or a check).
pub struct NoIncludes;

impl Includes for NoIncludes {
    fn load(&mut self, _: Location, _: &str) -> Option<Result<Script, CompileError>> {
        None
    }
}

/// One thing delivery must do. The implicit keep, when still in force at the end, is a
/// [`Action::Keep`] like an explicit one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store in INBOX with these IMAP flags/keywords.
    Keep {
        /// `\Seen`, `$Label1`, ...
        flags: Vec<String>,
    },
    /// Store in a folder (UTF-8 name, `/` or the server's separator as written by the user).
    FileInto {
        /// The folder.
        mailbox: String,
        /// Flags to set on the stored copy.
        flags: Vec<String>,
        /// `:create`: make the folder if it is missing (otherwise a missing folder means keep).
        create: bool,
    },
    /// Send the message on to another address, unchanged.
    Redirect {
        /// The address (checked as an RFC 5321 mailbox at compile/run time).
        address: String,
    },
    /// Refuse the message: an SMTP/LMTP error while the sender is connected, else a DSN.
    Reject {
        /// The human-readable reason.
        reason: String,
        /// `ereject`: must be refused in the SMTP dialogue if at all possible.
        extended: bool,
    },
    /// Drop the message silently (cancels the implicit keep; listed so it can be logged).
    Discard,
    /// An auto-reply that passed every message-local check of RFC 5230/3834 (the message was
    /// addressed to the user, not from a list, a robot or the null sender); the caller still
    /// checks its `:days` memory for (`handle`, `to`) and sends `reply` only if not answered.
    Vacation {
        /// Who gets the reply (the envelope sender).
        to: String,
        /// The memory key: `:handle`, or one made from the reason, subject, from and mime.
        handle: String,
        /// How long one reply covers, in seconds (`:days`/`:seconds`, clamped to site rules).
        period_seconds: u64,
        /// The whole reply message: header (From, To, Subject, In-Reply-To, References,
        /// Auto-Submitted: auto-replied, Date, Message-ID, MIME) and body, CRLF line ends.
        reply: Vec<u8>,
        /// The envelope sender to send it from (`<>` is `""`, RFC 5230 5.2 / 3834 says null).
        envelope_from: String,
    },
}

/// What running the scripts decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The actions, in the order they were taken, duplicates merged (RFC 5228 2.10.3).
    pub actions: Vec<Action>,
}

/// A run that could not finish (a runtime error): the caller keeps the message in INBOX.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// Runs scripts in order (the admin's `before` scripts, the user's, the admin's `after`
/// scripts) against one message; `stop` in any ends the whole sequence.
pub fn execute(
    scripts: &[&Script],
    input: &Input<'_>,
    includes: &mut dyn Includes,
) -> Result<Outcome, RuntimeError> {
    run::execute(scripts, input, includes)
}
