//! The Sieve interpreter: a script (compiled) and a message (run against it), separated by a
//! line `=====`.

use roost_protocol::sieve::{
    compile, execute, Action, CompileError, Envelope, Includes, Input, Location, Script,
};

use crate::mbox::split;

/// Every `include` loads the script under test again (so include depth and count caps run).
struct Again<'a>(&'a [u8]);

impl Includes for Again<'_> {
    fn load(&mut self, _: Location, name: &str) -> Option<Result<Script, CompileError>> {
        (name != "missing").then(|| compile(self.0))
    }
}

/// Compiles the script; if it compiles, runs it twice against the message and checks the
/// runs agree, the caps hold and an error names a line inside the script.
pub fn sieve(data: &[u8]) {
    let parts = split(data, 2);
    let source = parts.first().copied().unwrap_or_default();
    let message = parts.get(1).copied().unwrap_or_default();
    let script = match compile(source) {
        Ok(s) => s,
        Err(e) => {
            let lines = source.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(
                e.line >= 1 && e.line as usize <= lines,
                "error line {} of {lines}",
                e.line
            );
            return;
        }
    };
    let me = vec!["me@example.com".to_string()];
    let input = Input {
        envelope: Envelope {
            from: "sender@example.net",
            to: "me+tag@example.com",
        },
        message,
        now: 1_230_811_200,
        zone_minutes: 60,
        user_addresses: &me,
    };
    let first = execute(&[&script, &script], &input, &mut Again(source));
    let second = execute(&[&script, &script], &input, &mut Again(source));
    assert_eq!(first, second, "a run depends on more than its input");
    if let Ok(outcome) = first {
        assert!(outcome.actions.len() <= 33, "too many actions");
        let redirects = outcome
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Redirect { .. }))
            .count();
        assert!(redirects <= 4, "too many redirects");
        assert!(
            !outcome.actions.is_empty(),
            "no action at all (not even keep)"
        );
    }
}
