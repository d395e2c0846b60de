//! The extensions' RFC examples: variables (5229), imap4flags (5232), subaddress (5233),
//! body (5173), relational (5231), date and index (5260), reject/ereject (5429), regex.

mod sieve_common;

use roost_protocol::sieve::Action;
use sieve_common::*;

const RFC5229_MATCHES: &str = r#"require ["fileinto", "variables"];

if header :matches "List-ID" "*<*@*" {
    fileinto "INBOX.lists.${2}"; stop;
}

# Imagine the header
# Subject: [acme-users] [fwd] version 1.0 is out
if header :matches "Subject" "[*] *" {
    # ${1} will hold "acme-users",
    # ${2} will hold "[fwd] version 1.0 is out"
    fileinto "INBOX.lists.${1}"; stop;
}

# Imagine the header
# To: coyote@ACME.Example.COM
if address :matches ["To", "Cc"] ["coyote@**.com",
        "wile@**.com"] {
    # ${0} is the matching address
    # ${1} is always the empty string
    # ${2} is part of the domain name ("ACME.Example")
    fileinto "INBOX.business.${2}"; stop;
} else {
    # Control wouldn't reach this block if any match was
    # successful, so no match variables are set at this
    # point.
}

if anyof (true, address :domain :matches "To" "*.com") {
    # The second test is never evaluated, so there are
    # still no match variables set.
    stop;
}
"#;

#[test]
fn rfc5229_match_variables() {
    let list = "List-ID: Sieve list <sieve.ietf.example>\nList-ID: Acme <acme-users@acme.example>\nSubject: x\n\nx\n";
    // The first List-ID has no "@": the second one matches.
    assert_eq!(
        run(RFC5229_MATCHES, list),
        [fileinto("INBOX.lists.acme-users")]
    );
    let subject = "Subject: [acme-users] [fwd] version 1.0 is out\n\nx\n";
    assert_eq!(
        run(RFC5229_MATCHES, subject),
        [fileinto("INBOX.lists.acme-users")]
    );
    let to = "To: coyote@ACME.Example.COM\nSubject: hi\n\nx\n";
    assert_eq!(
        run(RFC5229_MATCHES, to),
        [fileinto("INBOX.business.ACME.Example")]
    );
    assert_eq!(run(RFC5229_MATCHES, "Subject: hi\n\nx\n"), [keep()]);
}

#[test]
fn rfc5229_set_and_modifiers() {
    let s = r#"require ["variables", "fileinto"];
        set "honorific"  "Mr";
        set "first_name" "Wile";
        set "last_name"  "Coyote";
        set "a" "juMBlEd lETteRS";
        set :length "b" "${a}";
        fileinto "${b}";
        set :lower "b" "${a}";
        fileinto "${b}";
        set :upperfirst "b" "${a}";
        fileinto "${b}";
        set :upperfirst :lower "b" "${a}";
        fileinto "${b}";
        set :quotewildcard "b" "Rock*";
        fileinto "${b}";
        fileinto "${HONORIFIC} ${first_name} ${last_name} ${unset}";
        fileinto "\${a} ${a";
    "#;
    let got = run(s, "Subject: x\n\nx\n");
    assert_eq!(
        got,
        [
            fileinto("15"),
            fileinto("jumbled letters"),
            fileinto("JuMBlEd lETteRS"),
            fileinto("Jumbled letters"),
            fileinto("Rock\\*"),
            fileinto("Mr Wile Coyote "),
            fileinto("juMBlEd lETteRS ${a"),
        ]
    );
}

#[test]
fn rfc5229_set_text_and_string_test() {
    let s = r#"require ["variables", "reject"];
        set "last_name" "Coyote";
        set "vacation" text:
Dear Mr ${last_name},
I'm out, please leave a message after the meep.
.
;
        set "state" "${state} pending";
        if string :matches " ${state} " "* pending *" {
            reject "${vacation}";
        }
    "#;
    assert_eq!(
        run(s, "Subject: x\n\nx\n"),
        [Action::Reject {
            reason: "Dear Mr Coyote,\r\nI'm out, please leave a message after the meep.\r\n".into(),
            extended: false
        }]
    );
    let count = r#"require ["variables", "relational", "comparator-i;ascii-numeric"];
        if string :count "eq" :comparator "i;ascii-numeric" ["a", "", "${nothing}"] "1" { discard; }"#;
    assert_eq!(run(count, "\n"), [Action::Discard]);
}

#[test]
fn regex_matches_and_fills_groups() {
    let s = r#"require ["regex", "variables", "fileinto"];
        if header :regex "subject" "^\\[([a-z-]+)\\] (.*)$" {
            fileinto "lists/${1}";
        }"#;
    assert_eq!(
        run(s, "Subject: [Acme-Users] hello\n\nx\n"),
        [fileinto("lists/Acme-Users")]
    );
    let octet = r#"require ["regex"];
        if header :regex :comparator "i;octet" "subject" "^ACME" { discard; }"#;
    assert_eq!(run(octet, "Subject: acme\n\nx\n"), [keep()]);
    assert_eq!(run(octet, "Subject: ACME\n\nx\n"), [Action::Discard]);
}

const RFC5232_EXAMPLE: &str = r#"require ["imap4flags", "fileinto", "variables", "relational"];
if size :over 1M
        {
        addflag "MyFlags" "Big";
        if header :is "From" "boss@company.example.com"
                   {
# The message will be marked as "\Flagged Big" when filed into
# mailbox "Big messages"
                   addflag "MyFlags" "\\Flagged";
                   }
        fileinto :flags "${MyFlags}" "Big messages";
        }

if header :is "From" "grandma@example.net"
        {
        addflag "MyFlags" ["\\Answered", "$MDNSent"];
        fileinto :flags "${MyFlags}" "GrandMa";
        }

if header :is "Sender" "owner-ietf-mta-filters@example.org"
        {
        set "MyFlags" "\\Flagged $Work";
        keep :flags "${MyFlags}";
        }
"#;

#[test]
fn rfc5232_flag_variables() {
    let big_boss = format!(
        "From: boss@company.example.com\n\n{}\n",
        "x".repeat(1_100_000)
    );
    assert_eq!(
        run(RFC5232_EXAMPLE, &big_boss),
        [fileinto_flags("Big messages", &["Big", "\\Flagged"])]
    );
    let grandma = "From: grandma@example.net\n\nhi\n";
    assert_eq!(
        run(RFC5232_EXAMPLE, grandma),
        [fileinto_flags("GrandMa", &["\\Answered", "$MDNSent"])]
    );
    let list = "Sender: owner-ietf-mta-filters@example.org\n\nx\n";
    assert_eq!(
        run(RFC5232_EXAMPLE, list),
        [keep_flags(&["\\Flagged", "$Work"])]
    );
}

#[test]
fn internal_flags_go_with_keep_and_hasflag_sees_them() {
    let s = r#"require ["imap4flags", "fileinto"];
        setflag "\\Seen";
        addflag ["\\Flagged", "\\seen"];
        removeflag "\\Flagged";
        addflag "$Label1 $Label2";
        if hasflag :is "$label2" { fileinto "labelled"; }
    "#;
    assert_eq!(
        run(s, "\n"),
        [fileinto_flags(
            "labelled",
            &["\\Seen", "$Label1", "$Label2"]
        )]
    );
    // The implicit keep carries the flags too.
    let s = "require \"imap4flags\"; if size :over 1M { setflag \"\\\\Deleted\"; } addflag \"\\\\Seen\";";
    assert_eq!(run(s, "\nx\n"), [keep_flags(&["\\Seen"])]);
    let s = r#"require ["imap4flags", "variables", "relational"];
        addflag "MyVar" ["Junk", "Other"];
        if hasflag :count "eq" "MyVar" "2" { if hasflag :contains "MyVar" "unk" {
            if hasflag :is "MyVar" "nothing other" { discard; } } }"#;
    assert_eq!(run(s, "\n"), [Action::Discard]);
}

#[test]
fn rfc5233_subaddress() {
    let s = r#"require ["envelope", "subaddress", "fileinto"];
        if envelope :user "to" "postmaster" {
            fileinto "inbox.postmaster";
            stop;
        }
        if envelope :detail "to" "mta-filters" {
            fileinto "inbox.ietf-mta-filters";
            stop;
        }
        if address :detail "to" "sieve" {
            fileinto "inbox.sieve";
        }"#;
    let ctx = |to| Ctx {
        to,
        ..Ctx::default()
    };
    let msg = "To: ken+sieve@example.org\n\nx\n";
    assert_eq!(
        run_ctx(s, msg, &ctx("postmaster+x@example.org")),
        [fileinto("inbox.postmaster")]
    );
    assert_eq!(
        run_ctx(s, msg, &ctx("ken+mta-filters@example.org")),
        [fileinto("inbox.ietf-mta-filters")]
    );
    assert_eq!(
        run_ctx(s, msg, &ctx("ken@example.org")),
        [fileinto("inbox.sieve")]
    );
    assert_eq!(
        run_ctx(s, "To: ken@example.org\n\nx\n", &ctx("ken@example.org")),
        [keep()]
    );
}

const MULTIPART: &str = "From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nThe missile =\ncoordinates are secret.\n--XX\nContent-Type: audio/mp3\nContent-Transfer-Encoding: base64\n\nSUQz\n--XX--\n";

#[test]
fn rfc5173_body() {
    let raw = "require \"body\"; if body :raw :contains \"MAKE MONEY FAST\" { discard; }";
    assert_eq!(
        run(raw, "Subject: x\n\nplease make money fast\n"),
        [Action::Discard]
    );
    assert_eq!(run(raw, "Subject: make money fast\n\nno\n"), [keep()]);
    let text = r#"require ["body", "fileinto"];
        if body :content "text" :contains ["missile", "coordinates"] { fileinto "secrets"; }"#;
    assert_eq!(run(text, MULTIPART), [fileinto("secrets")]);
    // Only decoded text matches: the soft line break is gone.
    let decoded = "require \"body\"; if body :text :contains \"missile coordinates\" { discard; }";
    assert_eq!(run(decoded, MULTIPART), [Action::Discard]);
    let audio = r#"require ["body", "fileinto"];
        if body :content "audio/mp3" :contains "" { fileinto "jukebox"; }"#;
    assert_eq!(run(audio, MULTIPART), [fileinto("jukebox")]);
    assert_eq!(run(audio, "Subject: x\n\nplain\n"), [keep()]);
}

#[test]
fn rfc5231_relational() {
    let msg = "To: foo@example.com.invalid, baz@example.com.invalid\nCc: qux@example.com.invalid\nX-Priority: 1\nReceived: from a\nReceived: from b\n\nx\n";
    let t = |test: &str| {
        let s = format!(
            "require [\"relational\", \"comparator-i;ascii-numeric\"]; if {test} {{ discard; }}"
        );
        run(&s, msg) == [Action::Discard]
    };
    assert!(t(
        r#"address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]"#
    ));
    assert!(!t(
        r#"address :count "ge" :comparator "i;ascii-numeric" ["to"] ["3"]"#
    ));
    assert!(t(
        r#"header :count "eq" :comparator "i;ascii-numeric" "received" "2""#
    ));
    assert!(t(
        r#"header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"]"#
    ));
    assert!(!t(
        r#"header :value "gt" :comparator "i;ascii-numeric" ["x-priority"] ["3"]"#
    ));
    assert!(t(
        r#"address :value "gt" :all :comparator "i;ascii-casemap" ["to", "cc"] "M""#
    ));
    assert!(t(r#"header :value "ne" "x-priority" "2""#));
    assert!(t(
        r#"header :count "eq" :comparator "i;ascii-numeric" "x-none" "0""#
    ));
}

#[test]
fn rfc5260_date_and_currentdate() {
    let s = r#"require ["date", "relational", "fileinto"];
        if allof(header :is "from" "boss@example.com",
                 date :value "ge" :originalzone "date" "hour" "09",
                 date :value "lt" :originalzone "date" "hour" "17")
        { fileinto "urgent"; }"#;
    let at =
        |time: &str| format!("From: boss@example.com\nDate: Mon, 5 Jan 2009 {time} -0800\n\nx\n");
    assert_eq!(run(s, &at("10:00:00")), [fileinto("urgent")]);
    assert_eq!(run(s, &at("18:00:00")), [keep()]);
    let months = r#"require ["date", "variables", "fileinto"];
        if currentdate :matches "month" "*" { set "month" "${1}"; }
        if currentdate :matches "year"  "*" { set "year"  "${1}"; }
        fileinto "${month}-${year}";"#;
    assert_eq!(run(months, "\n"), [fileinto("01-2009")]);
    let zone = r#"require ["date", "variables", "fileinto"];
        if currentdate :zone "-0500" :matches "iso8601" "*" { fileinto "${0}"; }
        if date :zone "+0000" :matches "date" "std11" "*" { fileinto "${0}"; }
        if currentdate :matches "weekday" "*" { fileinto "${0}"; }
        if currentdate :is "julian" "54832" { fileinto "julian"; }"#;
    assert_eq!(
        run(zone, "Date: Thu, 01 Jan 2009 10:00:00 +0100\n\nx\n"),
        [
            fileinto("2009-01-01T07:00:00-05:00"),
            fileinto("Thu, 01 Jan 2009 09:00:00 +0000"),
            fileinto("4"),
            fileinto("julian")
        ]
    );
    let july = r#"require ["date", "relational", "vacation"];
        if allof(currentdate :value "ge" "date" "2007-06-30",
                 currentdate :value "le" "date" "2007-07-07")
        { vacation :days 7  "I'm away during the first week in July."; }"#;
    assert_eq!(
        run(july, &simple("a@b.example", "me@example.com", "x")),
        [keep()]
    );
}

#[test]
fn rfc5260_index() {
    let s = r#"require ["date", "relational", "index"];
        if date :value "gt" :index 2 :zone "-0500" "received"
                "iso8601" "2007-02-26T09:00:00-05:00"
        { redirect "aftersales@example.com"; }"#;
    let msg = |second: &str| {
        format!(
            "Received: from a by b; Tue, 27 Feb 2007 10:00:00 -0500\nReceived: from c by a; {second}\nSubject: x\n\nx\n"
        )
    };
    assert_eq!(
        run(s, &msg("Mon, 26 Feb 2007 16:00:00 +0100")),
        [redirect("aftersales@example.com")]
    );
    assert_eq!(run(s, &msg("Mon, 26 Feb 2007 14:00:00 +0100")), [keep()]);
    let h = r#"require ["index"];
        if header :index 1 :last "x-n" "3" { if header :index 1 "x-n" "1" { discard; } }"#;
    assert_eq!(run(h, "X-N: 1\nX-N: 2\nX-N: 3\n\nx\n"), [Action::Discard]);
    let a = r#"require ["index"]; if address :index 2 "to" "b@x.example" { discard; }"#;
    assert_eq!(
        run(a, "To: a@x.example\nTo: b@x.example\n\nx\n"),
        [Action::Discard]
    );
}

#[test]
fn rfc5429_reject_and_ereject() {
    let s = r#"require ["reject"];
        if header :contains "from" "coyote@desert.example.org" {
           reject text:
I am not taking mail from you, and I don't
want your birdseed, either!
.
;
        }"#;
    let from = simple("coyote@desert.example.org", "me@example.com", "seed");
    assert_eq!(
        run(s, &from),
        [Action::Reject {
            reason: "I am not taking mail from you, and I don't\r\nwant your birdseed, either!\r\n"
                .into(),
            extended: false
        }]
    );
    let e = r#"require ["ereject"]; ereject "no thanks";"#;
    assert_eq!(
        run(e, &from),
        [Action::Reject {
            reason: "no thanks".into(),
            extended: true
        }]
    );
    // Known at compile time: side by side in one block.
    let e = compile_error("require [\"reject\", \"fileinto\"];\nfileinto \"a\";\nreject \"no\";");
    assert_eq!(e.line, 3, "{e}");
    let e = compile_error("require [\"reject\"];\nreject \"no\";\nkeep;");
    assert_eq!(e.line, 3, "{e}");
    // Only known at run time: in different blocks.
    let err = run_error(
        "require [\"reject\", \"fileinto\"]; if true { fileinto \"a\"; } reject \"no\";",
        &from,
    );
    assert!(err.0.contains("reject"), "{err}");
    let err = run_error(
        "require [\"reject\", \"vacation\"]; reject \"no\"; if true { vacation \"away\"; }",
        &from,
    );
    assert!(err.0.contains("reject"), "{err}");
    // A reject after stop is never reached.
    assert_eq!(
        run("require \"reject\"; keep; stop; reject \"no\";", &from),
        [keep()]
    );
}

#[test]
fn dates_default_to_the_servers_zone() {
    let ctx = Ctx {
        zone: 60,
        ..Ctx::default()
    };
    let s = r#"require ["date", "variables", "fileinto"];
        if currentdate :matches "std11" "*" { fileinto "${0}"; }
        if date :matches "date" "time" "*" { fileinto "${0}"; }
        if date :matches :originalzone "date" "zone" "*" { fileinto "${0}"; }"#;
    let msg = "Date: Wed, 31 Dec 2008 23:30:00 -0500\n\nx\n";
    assert_eq!(
        run_ctx(s, msg, &ctx),
        [
            fileinto("Thu, 01 Jan 2009 13:00:00 +0100"),
            fileinto("05:30:00"),
            fileinto("-0500")
        ]
    );
    let bad = "require \"date\"; if date :is \"date\" \"year\" \"2009\" { discard; }";
    assert_eq!(run(bad, "Date: not a date\n\nx\n"), [keep()]);
}

#[test]
fn without_require_variables_strings_stay_as_written() {
    let s = "require \"fileinto\"; fileinto \"${x}\";";
    assert_eq!(run(s, "\n"), [fileinto("${x}")]);
}

#[test]
fn a_too_costly_match_is_a_runtime_error() {
    let s = format!(
        "if header :matches \"subject\" \"*{}b\" {{ discard; }}",
        "a".repeat(2000)
    );
    let msg = format!("Subject: {}\n\nx\n", "a".repeat(100_000));
    let err = run_error(&s, &msg);
    assert!(err.0.contains("too costly"), "{err}");
}
