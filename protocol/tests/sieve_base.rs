//! RFC 5228 (Sieve itself): the §9 example, the smaller examples of §2-§5, one test per
//! action and per test, implicit keep and merged duplicates.

mod sieve_common;

use roost_protocol::sieve::Action;
use sieve_common::*;

const RFC5228_EXAMPLE: &str = r#"#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"#;

#[test]
fn the_rfc5228_example_sorts_each_kind_of_message() {
    let list =
        "Sender: owner-ietf-mta-filters@imc.org\nFrom: a@b.example\nTo: me@example.com\n\nx\n";
    assert_eq!(run(RFC5228_EXAMPLE, list), [fileinto("filter")]);
    let company = simple("boss@example.com", "me@elsewhere.example", "hi");
    assert_eq!(run(RFC5228_EXAMPLE, &company), [keep()]);
    let not_me = simple("x@spam.example", "you@other.example", "hello");
    assert_eq!(run(RFC5228_EXAMPLE, &not_me), [fileinto("spam")]);
    let bcc = |subject: &str| {
        format!("From: x@spam.example\nTo: undisclosed-recipients:;\nBcc: me@example.com\nSubject: {subject}\n\nx\n")
    };
    let spam = bcc("You can MAKE real Money very fast");
    assert_eq!(run(RFC5228_EXAMPLE, &spam), [fileinto("spam")]);
    let diploma = bcc("University diplomas");
    assert_eq!(run(RFC5228_EXAMPLE, &diploma), [fileinto("spam")]);
    assert_eq!(run(RFC5228_EXAMPLE, &bcc("lunch")), [fileinto("personal")]);
}

#[test]
fn if_elsif_else_from_section_3_1() {
    let script = r#"require "fileinto";
        if header :contains "from" "coyote" {
           discard;
        } elsif header :contains ["subject"] ["$$$"] {
           discard;
        } else {
           fileinto "INBOX";
        }"#;
    let coyote = simple("wile.coyote@acme.example", "me@example.com", "hi");
    assert_eq!(run(script, &coyote), [Action::Discard]);
    let money = simple("a@b.example", "me@example.com", "win $$$ now");
    assert_eq!(run(script, &money), [Action::Discard]);
    let other = simple("a@b.example", "me@example.com", "hi");
    assert_eq!(run(script, &other), [fileinto("INBOX")]);
}

#[test]
fn an_empty_script_keeps() {
    assert_eq!(
        run("", &simple("a@b.example", "me@example.com", "x")),
        [keep()]
    );
    assert_eq!(run("# nothing\n/* at all */", "\n"), [keep()]);
}

#[test]
fn keep_discard_and_stop() {
    let msg = simple("a@b.example", "me@example.com", "x");
    assert_eq!(run("keep;", &msg), [keep()]);
    assert_eq!(run("discard;", &msg), [Action::Discard]);
    assert_eq!(run("discard; keep;", &msg), [Action::Discard, keep()]);
    assert_eq!(run("stop; discard;", &msg), [keep()]);
    assert_eq!(
        run(
            "require \"fileinto\"; fileinto \"a\"; stop; fileinto \"b\";",
            &msg
        ),
        [fileinto("a")]
    );
}

#[test]
fn fileinto_and_redirect_cancel_the_implicit_keep_unless_copy() {
    let msg = simple("a@b.example", "me@example.com", "x");
    assert_eq!(
        run("require \"fileinto\"; fileinto \"INBOX.harassment\";", &msg),
        [fileinto("INBOX.harassment")]
    );
    assert_eq!(
        run("redirect \"bart@example.com\";", &msg),
        [redirect("bart@example.com")]
    );
    assert_eq!(
        run("redirect \"<bart@example.com>\";", &msg),
        [redirect("bart@example.com")]
    );
    assert_eq!(
        run("require [\"copy\", \"fileinto\"]; fileinto :copy \"a\"; redirect :copy \"b@example.org\";", &msg),
        [fileinto("a"), redirect("b@example.org"), keep()]
    );
    let create = run(
        "require [\"fileinto\", \"mailbox\"]; fileinto :create \"New\";",
        &msg,
    );
    assert_eq!(
        create,
        [Action::FileInto {
            mailbox: "New".into(),
            flags: vec![],
            create: true
        }]
    );
}

#[test]
fn duplicate_actions_are_merged() {
    let msg = simple("a@b.example", "me@example.com", "x");
    let s = r#"require "fileinto"; keep; keep; fileinto "a"; fileinto "a"; redirect "x@y.example"; redirect "X@y.example"; discard; discard;"#;
    assert_eq!(
        run(s, &msg),
        [
            keep(),
            fileinto("a"),
            redirect("x@y.example"),
            Action::Discard
        ]
    );
}

#[test]
fn the_address_test_and_its_parts() {
    let msg = "From: \"Tim\" <tim@example.com>\nTo: a@one.example, b@two.example\n\nx\n";
    assert_eq!(
        run(
            "if address :is :all \"from\" \"tim@example.com\" { discard; }",
            msg
        ),
        [Action::Discard]
    );
    assert_eq!(
        run("if address :localpart \"from\" \"TIM\" { discard; }", msg),
        [Action::Discard]
    );
    assert_eq!(
        run(
            "if address :domain :is \"to\" \"two.example\" { discard; }",
            msg
        ),
        [Action::Discard]
    );
    assert_eq!(
        run("if address :is \"from\" \"Tim\" { discard; }", msg),
        [keep()]
    );
    assert_eq!(
        run(
            "if address :comparator \"i;octet\" :is \"from\" \"TIM@example.com\" { discard; }",
            msg
        ),
        [keep()]
    );
}

#[test]
fn the_envelope_test() {
    let msg = simple("a@b.example", "me@example.com", "x");
    let ctx = Ctx {
        from: "tim@example.com",
        ..Ctx::default()
    };
    let s = "require \"envelope\"; if envelope :all :is \"from\" \"tim@example.com\" { discard; }";
    assert_eq!(run_ctx(s, &msg, &ctx), [Action::Discard]);
    assert_eq!(run(s, &msg), [keep()]);
    let s = "require \"envelope\"; if envelope :domain \"to\" \"example.com\" { discard; }";
    assert_eq!(run(s, &msg), [Action::Discard]);
    let null = Ctx {
        from: "",
        ..Ctx::default()
    };
    let s = "require \"envelope\"; if envelope :is \"from\" \"\" { discard; }";
    assert_eq!(run_ctx(s, &msg, &null), [Action::Discard]);
}

#[test]
fn header_exists_not_true_false() {
    let msg = "From: a@b.example\nX-Caffeine: high\nSubject: Re: lunch\n\nx\n";
    assert_eq!(
        run("if header :contains \"X-Caffeine\" \"\" { discard; }", msg),
        [Action::Discard]
    );
    assert_eq!(
        run("if header :contains \"X-Decaf\" \"\" { discard; }", msg),
        [keep()]
    );
    assert_eq!(
        run("if exists [\"From\", \"Subject\"] { discard; }", msg),
        [Action::Discard]
    );
    assert_eq!(
        run("if exists [\"From\", \"Date\"] { discard; }", msg),
        [keep()]
    );
    assert_eq!(
        run("if not exists [\"From\",\"Date\"] { discard; }", msg),
        [Action::Discard]
    );
    assert_eq!(run("if true { discard; }", msg), [Action::Discard]);
    assert_eq!(run("if false { discard; }", msg), [keep()]);
    assert_eq!(
        run("if header :is \"subject\" \"re: LUNCH\" { discard; }", msg),
        [Action::Discard]
    );
}

#[test]
fn allof_and_anyof_nest() {
    let msg = "From: a@b.example\nSubject: x\n\n\n";
    let s =
        "if allof (exists \"from\", anyof (false, not header :is \"subject\" \"y\")) { discard; }";
    assert_eq!(run(s, msg), [Action::Discard]);
    let s = "if allof (exists \"from\", anyof (false, header :is \"subject\" \"y\")) { discard; }";
    assert_eq!(run(s, msg), [keep()]);
}

#[test]
fn the_size_test_with_quantifiers() {
    let big = format!("Subject: big\n\n{}\n", "x".repeat(2048));
    assert_eq!(
        run("if size :over 1K { discard; }", &big),
        [Action::Discard]
    );
    assert_eq!(run("if size :over 1M { discard; }", &big), [keep()]);
    assert_eq!(
        run("if size :under 1k { discard; }", "Subject: small\n\nx\n"),
        [Action::Discard]
    );
}

#[test]
fn match_types_is_contains_matches() {
    let msg = "Subject: Hello World\n\nx\n";
    for (test, hit) in [
        ("header :is \"subject\" \"hello world\"", true),
        ("header :contains \"subject\" \"lo wo\"", true),
        ("header :matches \"subject\" \"h?llo*\"", true),
        ("header :matches \"subject\" \"*world\"", true),
        ("header :matches \"subject\" \"world*\"", false),
        (
            "header :matches :comparator \"i;octet\" \"subject\" \"hello*\"",
            false,
        ),
        ("header :matches \"subject\" \"Hello\\\\*\"", false),
    ] {
        let want = if hit {
            vec![Action::Discard]
        } else {
            vec![keep()]
        };
        assert_eq!(
            run(&format!("if {test} {{ discard; }}"), msg),
            want,
            "{test}"
        );
    }
}

#[test]
fn multi_line_strings_are_dot_unstuffed() {
    let s = "require \"reject\";\nreject text:\n..leading dot\nsecond line\n.\n;\n";
    assert_eq!(
        run(s, "Subject: x\n\nx\n"),
        [Action::Reject {
            reason: ".leading dot\r\nsecond line\r\n".into(),
            extended: false
        }]
    );
}

#[test]
fn lexical_details() {
    let msg = "Subject: a /* not a comment */ # nor this\n\nx\n";
    let s = "if header :is \"subject\" \"a /* not a comment */ # nor this\" { discard; }";
    assert_eq!(run(s, msg), [Action::Discard]);
    let s = "require \"reject\"; reject text: # a comment after text:\r\nline\r\n.\r\n;";
    assert_eq!(
        run(s, msg),
        [Action::Reject {
            reason: "line\r\n".into(),
            extended: false
        }]
    );
    let s = "if header :is \"subject\" \"q\\\"uote\\\\d\\x\" { discard; }";
    assert_eq!(run(s, "Subject: q\"uote\\dx\n\nx\n"), [Action::Discard]);
    assert_eq!(
        run("if size :under 1G { discard; }", msg),
        [Action::Discard]
    );
    assert_eq!(run("IF TRUE { DISCARD; }", msg), [Action::Discard]);
}

#[test]
fn encoded_characters_from_section_2_4_2_4() {
    let s = "require \"encoded-character\";\nif header :contains \"Subject\" \"$${hex:24 24}\" { discard; }";
    assert_eq!(run(s, "Subject: win $$$\n\nx\n"), [Action::Discard]);
    assert_eq!(run(s, "Subject: win $$\n\nx\n"), [keep()]);
    let s = "require [\"encoded-character\", \"fileinto\"];\nfileinto \"caf${unicode:e9}\";";
    assert_eq!(run(s, "\n"), [fileinto("caf\u{e9}")]);
    // Without the require the text stays as written.
    let s = "require \"fileinto\"; fileinto \"${hex:40}\";";
    assert_eq!(run(s, "\n"), [fileinto("${hex:40}")]);
    let e =
        compile_error("require [\"encoded-character\", \"fileinto\"];\n\nfileinto \"${hex:ff}\";");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("UTF-8"), "{e}");
}
