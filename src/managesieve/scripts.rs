//! The script commands (RFC 5804 2.6–2.12) on one user's store, each answering with the
//! bytes to send; every storage error becomes its reply here, in one place.

use roost_protocol::managesieve::{self as ms, Code};
use roost_storage::sieve_scripts::{ScriptError, ScriptLimits, ScriptStore};

/// One user's scripts, with the limits that apply to them.
pub struct Scripts<'a> {
    store: ScriptStore,
    limits: ScriptLimits,
    user: &'a str,
}

impl<'a> Scripts<'a> {
    /// The scripts in `store`, for log lines named by `user`.
    pub fn new(store: ScriptStore, limits: ScriptLimits, user: &'a str) -> Self {
        Self {
            store,
            limits,
            user,
        }
    }

    /// HAVESPACE: whether a script of this name and size would be accepted.
    pub fn have_space(&self, name: &str, size: u64) -> Vec<u8> {
        self.reply(
            self.store.has_space(name, size, self.limits),
            "Putscript would succeed.",
        )
    }

    /// PUTSCRIPT: within the limits, compiled, then stored durably.
    pub fn put(&self, name: &str, script: &[u8]) -> Vec<u8> {
        let size = script.len() as u64;
        if let Err(e) = self.store.has_space(name, size, self.limits) {
            return self.error(e);
        }
        if let Err(e) = roost_protocol::sieve::compile(script) {
            return ms::no(None, &e.to_string());
        }
        let replaces_active = self.store.active_name().ok().flatten().as_deref() == Some(name);
        match self.store.put(name, script) {
            Ok(()) => self.done_with_problems("Putscript completed.", replaces_active),
            Err(e) => self.error(e),
        }
    }

    /// OK, with the problems delivery had with the user's scripts as WARNINGS (RFC 5804 1.3)
    /// since the user cannot read the server's log; `forget`: the active script was just
    /// replaced, so they are told once and then forgotten.
    fn done_with_problems(&self, done: &str, forget: bool) -> Vec<u8> {
        let problems = self.store.problems().unwrap_or_default();
        let Some(latest) = problems.last() else {
            return ms::ok(done);
        };
        if forget {
            if let Err(e) = self.store.clear_problems() {
                tracing::warn!("managesieve({}): {e}", self.user);
            }
        }
        let text = format!(
            "{done} Your scripts failed at delivery {} time(s); the latest: {latest}",
            problems.len()
        );
        ms::response(ms::Status::Ok, Some(&Code::Warnings), &text)
    }

    /// CHECKSCRIPT: compiles without storing.
    pub fn check(&self, script: &[u8]) -> Vec<u8> {
        if script.len() as u64 > self.limits.max_size {
            return self.error(ScriptError::TooLarge(self.limits.max_size));
        }
        match roost_protocol::sieve::compile(script) {
            Ok(_) => self.done_with_problems("Script is valid.", false),
            Err(e) => ms::no(None, &e.to_string()),
        }
    }

    /// LISTSCRIPTS: one line per script, the active one marked.
    pub fn list(&self) -> Vec<u8> {
        match self.store.list() {
            Ok(scripts) => {
                let mut out = Vec::new();
                for script in scripts {
                    out.extend(ms::script_line(&script.name, script.active));
                }
                out.extend(ms::ok("Listscripts completed."));
                out
            }
            Err(e) => self.error(e),
        }
    }

    /// SETACTIVE: `""` leaves no script active.
    pub fn set_active(&self, name: &str) -> Vec<u8> {
        let name = (!name.is_empty()).then_some(name);
        match self.store.set_active(name) {
            Ok(()) => self.done_with_problems("Setactive completed.", true),
            Err(e) => self.error(e),
        }
    }

    /// GETSCRIPT: the script as a literal.
    pub fn get(&self, name: &str) -> Vec<u8> {
        match self.store.get(name) {
            Ok(bytes) => {
                let mut out = ms::literal_line(&bytes);
                out.extend(ms::ok("Getscript completed."));
                out
            }
            Err(e) => self.error(e),
        }
    }

    /// DELETESCRIPT: never the active script.
    pub fn delete(&self, name: &str) -> Vec<u8> {
        self.reply(self.store.delete(name), "Deletescript completed.")
    }

    /// RENAMESCRIPT: the active script stays active under its new name.
    pub fn rename(&self, old: &str, new: &str) -> Vec<u8> {
        self.reply(self.store.rename(old, new), "Renamescript completed.")
    }

    fn reply(&self, result: Result<(), ScriptError>, done: &str) -> Vec<u8> {
        match result {
            Ok(()) => ms::ok(done),
            Err(e) => self.error(e),
        }
    }

    /// The NO for a storage error, with RFC 5804's response code where one fits.
    fn error(&self, e: ScriptError) -> Vec<u8> {
        let code = match &e {
            ScriptError::NotFound(_) => Some(Code::NonExistent),
            ScriptError::Active(_) => Some(Code::Active),
            ScriptError::AlreadyExists(_) => Some(Code::AlreadyExists),
            ScriptError::TooManyScripts(_) => Some(Code::QuotaMaxScripts),
            ScriptError::TooLarge(_) => Some(Code::QuotaMaxSize),
            ScriptError::InvalidName(..) => None,
            ScriptError::Io { .. } => {
                tracing::error!("managesieve({}): {e}", self.user);
                let text = "Internal error; the details are logged.";
                return ms::no(Some(&Code::TryLater), text);
            }
        };
        ms::no(code.as_ref(), &capitalized(&e.to_string()))
    }
}

/// An error text as a sentence: capital first letter, closing full stop.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    out.push('.');
    out
}
