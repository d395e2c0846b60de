//! What does not compile (with the line it is on), the nesting and size caps, and the
//! runtime errors (too many redirects or actions).

mod sieve_common;

use roost_protocol::sieve::{compile, EXTENSIONS, MAX_SCRIPT_BYTES};
use sieve_common::*;

/// The line and message of a script's compile error.
fn error_at(source: &str) -> (u32, String) {
    let e = compile_error(source);
    (e.line, e.message)
}

#[test]
fn errors_name_the_line() {
    let cases: &[(&str, u32, &str)] = &[
        ("keep;\n\nfrobnicate;", 3, "unknown command"),
        ("if bogus { keep; }", 1, "unknown test"),
        ("\nfileinto \"x\";", 2, "require \"fileinto\""),
        ("require \"nosuch\";", 1, "unknown extension"),
        ("keep;\nrequire \"fileinto\";", 2, "before every other"),
        ("if header :is :frob \"a\" \"b\" { }", 1, ":frob"),
        ("if header :comparator \"i;foo\" \"a\" \"b\" {}", 1, "unknown comparator"),
        ("if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}", 1, "comparator-i;ascii-numeric"),
        ("require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"a\" \"b\" {}", 2, "only :is"),
        ("if header :is :contains \"a\" \"b\" {}", 1, "more than one match type"),
        ("keep\n", 1, "';'"),
        ("keep;\n\"x\";", 2, "expected a command"),
        ("redirect;", 1, "missing its address"),
        ("redirect 42;", 1, "a string"),
        ("redirect \"not an address\";", 1, "not a mail address"),
        ("discard \"x\";", 1, "too many arguments"),
        ("if size 100 {}", 1, ":over or :under"),
        ("if not true false {}", 1, "takes no tests"),
        ("elsif true {}", 1, "without an 'if'"),
        ("if true { keep; }\nkeep;\nelse { keep; }", 3, "without an 'if'"),
        ("if true keep;", 1, "needs a block"),
        ("keep;\n\"unterminated", 2, "never closed"),
        ("keep;\n/* open", 2, "never closed"),
        ("require \"reject\";\nreject text:\nno end\n", 2, "closing '.'"),
        ("if header :regex \"a\" \"b\" {}", 1, "require \"regex\""),
        ("require \"regex\";\nif header :regex \"a\" \"(\" {}", 2, "bad :regex"),
        ("require \"relational\";\nif header :value \"xx\" \"a\" \"b\" {}", 2, "relational operator"),
        ("require \"date\";\nif date \"date\" \"century\" \"x\" {}", 2, "date part"),
        ("require \"date\";\nif currentdate :zone \"EST\" \"year\" \"x\" {}", 2, "zone"),
        ("require \"variables\";\nset \"1abc\" \"x\";", 2, "variable name"),
        ("require \"variables\";\nset :lower :upper \"a\" \"x\";", 2, "clashes"),
        ("if header :index 1 \"a\" \"b\" {}", 1, "require \"index\""),
        ("require \"index\";\nif header :last \"a\" \"b\" {}", 2, ":last needs :index"),
        ("require \"vacation\";\nvacation :days 1 :seconds 2 \"x\";", 2, ":days or :seconds"),
        ("require \"include\";\ninclude \"a/b\";", 2, "script name"),
        ("if header :is \"a\" 99999999999999999999999 {}", 1, "too large"),
    ];
    for (source, line, needle) in cases {
        let (got_line, message) = error_at(source);
        assert_eq!(got_line, *line, "{source:?}: {message}");
        assert!(
            message.contains(needle),
            "{source:?}: {message:?} should mention {needle:?}"
        );
    }
}

#[test]
fn non_utf8_and_oversized_scripts_are_refused() {
    let e = compile(b"keep;\n\xff;").unwrap_err();
    assert_eq!(e.line, 2);
    let big = format!("#{}\nkeep;", "x".repeat(MAX_SCRIPT_BYTES));
    assert!(compile(big.as_bytes()).is_err());
}

#[test]
fn deep_nesting_is_a_compile_error_not_a_crash() {
    let nots = format!("if {}true {{ keep; }}", "not ".repeat(100_000));
    assert!(error_at(&nots).1.contains("nested too deeply"));
    let braces = format!("if true {}", "{".repeat(100_000));
    assert!(compile(braces.as_bytes()).is_err());
    let ifs = format!("{}{}", "if true {".repeat(100_000), "}".repeat(100_000));
    assert!(error_at(&ifs).1.contains("nested too deeply"));
    let lists = format!(
        "if {}true{} {{ keep; }}",
        "anyof(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(error_at(&lists).1.contains("nested too deeply"));
    let opening = "{".repeat(100_000);
    assert!(compile(opening.as_bytes()).is_err());
    // Within the cap it works.
    let ok = format!("if {}true {{ discard; }}", "not not ".repeat(10));
    assert_eq!(run(&ok, "\n"), [roost_protocol::sieve::Action::Discard]);
}

#[test]
fn too_many_redirects_or_actions_fail_at_run_time() {
    let four: String = (1..=4)
        .map(|i| format!("redirect \"a{i}@example.org\";"))
        .collect();
    assert_eq!(run(&four, "\n").len(), 4);
    let five: String = (1..=5)
        .map(|i| format!("redirect \"a{i}@example.org\";"))
        .collect();
    assert!(run_error(&five, "\n").0.contains("redirects"));
    let many: String = (1..=40).map(|i| format!("fileinto \"f{i}\";")).collect();
    let many = format!("require \"fileinto\";\n{many}");
    assert!(run_error(&many, "\n").0.contains("actions"));
    let variable = "require \"variables\"; set \"a\" \"not an address\"; redirect \"${a}\";";
    assert!(run_error(variable, "\n").0.contains("not a mail address"));
}

#[test]
fn extensions_listed_are_exactly_the_ones_that_compile() {
    for ext in EXTENSIONS {
        let s = format!("require \"{ext}\";");
        assert!(compile(s.as_bytes()).is_ok(), "{ext}");
    }
    assert!(EXTENSIONS.contains(&"variables"));
    assert!(compile(b"require \"enotify\";").is_err());
}
