//! Helpers the Sieve tests share: compile-and-run in one call, a map of includable scripts,
//! messages written with `\n` and stored with CRLF.
#![allow(dead_code)]

use std::collections::HashMap;

use roost_protocol::sieve::{
    compile, execute, Action, CompileError, Envelope, Includes, Input, Location, NoIncludes,
    Outcome, RuntimeError, Script,
};

/// 2009-01-01 12:00:00 UTC, a Thursday.
pub const NOW: i64 = 1_230_811_200;

/// A message with CRLF line ends from text written with `\n`.
pub fn mail(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// What one run sees, apart from the message.
pub struct Ctx {
    pub from: &'static str,
    pub to: &'static str,
    pub me: Vec<String>,
    pub now: i64,
    pub zone: i32,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx {
            from: "sender@example.net",
            to: "me@example.com",
            me: vec!["me@example.com".to_string()],
            now: NOW,
            zone: 0,
        }
    }
}

/// Compiles a script, panicking with the error if it does not compile.
pub fn script(source: &str) -> Script {
    match compile(source.as_bytes()) {
        Ok(s) => s,
        Err(e) => panic!("script did not compile: {e}\n{source}"),
    }
}

/// The compile error of a script that must not compile.
pub fn compile_error(source: &str) -> CompileError {
    match compile(source.as_bytes()) {
        Ok(_) => panic!("script compiled but should not:\n{source}"),
        Err(e) => e,
    }
}

/// Runs scripts with a context and includes.
pub fn run_full(
    scripts: &[&Script],
    message: &str,
    ctx: &Ctx,
    includes: &mut dyn Includes,
) -> Result<Outcome, RuntimeError> {
    let message = mail(message);
    let input = Input {
        envelope: Envelope {
            from: ctx.from,
            to: ctx.to,
        },
        message: &message,
        now: ctx.now,
        zone_minutes: ctx.zone,
        user_addresses: &ctx.me,
    };
    execute(scripts, &input, includes)
}

/// Compiles and runs one script with the default context; the actions.
pub fn run(source: &str, message: &str) -> Vec<Action> {
    run_ctx(source, message, &Ctx::default())
}

/// Compiles and runs one script with a context; the actions.
pub fn run_ctx(source: &str, message: &str, ctx: &Ctx) -> Vec<Action> {
    let s = script(source);
    match run_full(&[&s], message, ctx, &mut NoIncludes) {
        Ok(o) => o.actions,
        Err(e) => panic!("runtime error: {e}"),
    }
}

/// The runtime error of a script that must fail.
pub fn run_error(source: &str, message: &str) -> RuntimeError {
    let s = script(source);
    match run_full(&[&s], message, &Ctx::default(), &mut NoIncludes) {
        Ok(o) => panic!("ran but should have failed: {o:?}"),
        Err(e) => e,
    }
}

pub fn keep() -> Action {
    Action::Keep { flags: Vec::new() }
}

pub fn keep_flags(flags: &[&str]) -> Action {
    Action::Keep {
        flags: flags.iter().map(|f| f.to_string()).collect(),
    }
}

pub fn fileinto(mailbox: &str) -> Action {
    fileinto_flags(mailbox, &[])
}

pub fn fileinto_flags(mailbox: &str, flags: &[&str]) -> Action {
    Action::FileInto {
        mailbox: mailbox.to_string(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        create: false,
    }
}

pub fn redirect(address: &str) -> Action {
    Action::Redirect {
        address: address.to_string(),
    }
}

/// Scripts to include, by location and name (sources compiled on load).
#[derive(Default)]
pub struct Scripts {
    pub scripts: HashMap<(bool, String), String>,
    pub loads: usize,
}

impl Scripts {
    pub fn with(mut self, global: bool, name: &str, source: &str) -> Scripts {
        self.scripts
            .insert((global, name.to_string()), source.to_string());
        self
    }
}

impl Includes for Scripts {
    fn load(&mut self, location: Location, name: &str) -> Option<Result<Script, CompileError>> {
        self.loads += 1;
        let key = (location == Location::Global, name.to_string());
        self.scripts.get(&key).map(|s| compile(s.as_bytes()))
    }
}

/// A plain message from `from` to `to` with a subject.
pub fn simple(from: &str, to: &str, subject: &str) -> String {
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nDate: Thu, 01 Jan 2009 10:00:00 +0100\nMessage-ID: <m1@example.net>\n\nHello.\n"
    )
}
