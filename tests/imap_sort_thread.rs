//! SORT (RFC 5256, with RFC 5957's DISPLAYFROM/DISPLAYTO) and THREAD (ORDEREDSUBJECT,
//! REFERENCES) over a real socket: each sort key on messages built so that a wrong rule (a
//! time zone ignored, an encoded word left encoded, REVERSE applied to every key) gives a
//! different order, the threading corner cases of RFC 5256 section 4, and SORT with a MODSEQ
//! key turning CONDSTORE on as SEARCH does (RFC 7162 3.1.5). SORT answers are parsed with
//! imap-proto, as a client would.

mod common;

use common::{base_config, imap_login, imap_ok as run, LineClient, TestServer};

fn logged_in(server: &TestServer) -> LineClient {
    imap_login(server, "plain")
}
use imap_proto::{MailboxDatum, Response};

/// APPENDs `message` (lines joined with CRLF) with the given internal date.
fn append(c: &mut LineClient, tag: &str, internal: &str, message: &str) {
    let message = message.replace('\n', "\r\n");
    c.send(&format!(
        "{tag} APPEND INBOX () \"{internal}\" {{{}+}}\r\n{message}\r\n",
        message.len()
    ));
    let reply = c.until(&format!("{tag} "));
    assert!(
        reply.last().unwrap().starts_with(&format!("{tag} OK")),
        "{reply:?}"
    );
}

/// A server whose INBOX holds `messages` (internal date, text), selected.
fn server_with(messages: &[(&str, &str)]) -> (TestServer, LineClient) {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    for (i, (internal, message)) in messages.iter().enumerate() {
        append(&mut c, &format!("p{i}"), internal, message);
    }
    run(&mut c, "s", "SELECT INBOX");
    (server, c)
}

/// The numbers of the one `* SORT` line among `lines`, read with imap-proto.
fn sorted(lines: &[String]) -> Vec<u32> {
    let mut found = Vec::new();
    for line in lines {
        let bytes = format!("{line}\r\n");
        if let Ok((_, Response::MailboxData(MailboxDatum::Sort(numbers)))) =
            Response::parse(bytes.as_bytes())
        {
            found.push(numbers);
        }
    }
    assert_eq!(found.len(), 1, "one SORT response: {lines:?}");
    found.remove(0)
}

fn sort(c: &mut LineClient, tag: &str, command: &str) -> Vec<u32> {
    sorted(&run(c, tag, command).0)
}

/// Five messages whose every sort key orders them differently. Comments give each key's value.
const SORTABLE: [(&str, &str); 5] = [
    (
        "01-Nov-2026 09:00:00 +0000",
        // DATE 2 Nov 05:00 UTC; FROM alice; DISPLAYFROM "zed zulu"; TO bob; CC carol.
        "From: \"Zed Zulu\" <Alice@b.example>\nTo: bob@x.example\nCc: \"Carol\" <carol@x.example>\n\
         Subject: Re: Apple\nDate: Mon, 2 Nov 2026 10:00:00 +0500\n\nfirst, of medium length\n",
    ),
    (
        "01-Nov-2026 08:00:00 +0000",
        // DATE 2 Nov 06:00 UTC; FROM zoe; DISPLAYFROM "zoë young" (encoded); TO amy, DISPLAYTO
        // "yan"; subject "banana" once decoded; no Cc.
        "From: =?UTF-8?Q?Zo=C3=AB_Young?= <zoe@a.example>\nTo: \"Yan\" <Amy@y.example>\n\
         Subject: =?UTF-8?Q?Re=3A_banana?=\nDate: Mon, 2 Nov 2026 06:00:00 +0000\n\nsecond\n",
    ),
    (
        "03-Nov-2026 07:00:00 +0000",
        // No Date: DATE is the internal date; no display name: DISPLAYFROM "bob@c.example";
        // no To, no Cc; subject "apple".
        "From: bob@c.example\nSubject: [list] apple (fwd)\n\n\
         third, the longest of them all by some way, so that SIZE puts it last; the others carry\n\
         more header lines, so this body has to make up for them with a second and a third line\n\
         of text that says nothing at all, as bodies in tests are wont to do.\n",
    ),
    (
        "01-Nov-2026 10:00:00 +0000",
        // An unparseable Date: DATE is the internal date, 1 Nov 10:00, the earliest.
        "From: \"alice\" <Mallory@d.example>\nTo: =?UTF-8?Q?Quentin_=C3=84?= <x@z.example>\n\
         Cc: dave@x.example\nSubject: Banana\nDate: not a date at all\n\n4\n",
    ),
    (
        "02-Nov-2026 00:00:00 +0000",
        // 1 Nov 23:30 -0700 is 2 Nov 06:30 UTC; no display names: the addr-specs stand in.
        "From: <aaron@e.example>\nTo: <zed@q.example>\nSubject: Fwd: [fwd: Cherry]\n\
         Date: Sun, 1 Nov 2026 23:30:00 -0700\n\nfifth, a body of some length\n",
    ),
];

#[test]
fn each_sort_key_orders_as_rfc_5256_and_5957_say() {
    let (_server, mut c) = server_with(&SORTABLE);
    let cases: [(&str, [u32; 5]); 10] = [
        ("ARRIVAL", [2, 1, 4, 5, 3]),
        // Without the zones it would be 4 5 2 1 3.
        ("DATE", [4, 1, 2, 5, 3]),
        // apple apple banana banana cherry, ties by sequence number.
        ("SUBJECT", [1, 3, 2, 4, 5]),
        // aaron alice bob mallory zoe: local parts, case-insensitive.
        ("FROM", [5, 1, 3, 4, 2]),
        // "" amy bob x zed: a missing To sorts first.
        ("TO", [3, 2, 1, 4, 5]),
        ("CC", [2, 3, 5, 1, 4]),
        // aaron@e.example alice bob@c.example "zed zulu" "zoë young".
        ("DISPLAYFROM", [5, 4, 3, 1, 2]),
        // "" bob@x.example "quentin ä" yan zed@q.example.
        ("DISPLAYTO", [3, 1, 4, 2, 5]),
        // REVERSE turns its own key only: cherry, banana by date, apple by date.
        ("REVERSE SUBJECT DATE", [5, 4, 2, 1, 3]),
        // Equal keys (the three without Cc) stay in sequence order under REVERSE.
        ("REVERSE CC", [4, 1, 2, 3, 5]),
    ];
    for (i, (criteria, expected)) in cases.iter().enumerate() {
        let got = sort(
            &mut c,
            &format!("k{i}"),
            &format!("SORT ({criteria}) UTF-8 ALL"),
        );
        assert_eq!(got, expected, "SORT ({criteria})");
    }
    // SIZE: the sizes the server reports, in ascending order.
    let (lines, _) = run(&mut c, "z0", "FETCH 1:5 (RFC822.SIZE)");
    let mut sizes: Vec<(u64, u32)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let size = l.rsplit("RFC822.SIZE ").next().unwrap_or_default();
            (size.trim_end_matches(')').parse().unwrap(), i as u32 + 1)
        })
        .collect();
    sizes.sort();
    let by_size: Vec<u32> = sizes.iter().map(|s| s.1).collect();
    assert_eq!(sort(&mut c, "z1", "SORT (SIZE) UTF-8 ALL"), by_size);
    assert_eq!(by_size.last(), Some(&3));
    // UID SORT over a subset, and the US-ASCII charset.
    assert_eq!(
        sort(&mut c, "u1", "UID SORT (SUBJECT) US-ASCII 2:4"),
        [3, 2, 4]
    );
    assert_eq!(
        sort(&mut c, "u2", "SORT (SUBJECT) UTF-8 FROM alice"),
        [1, 4]
    );
}

#[test]
fn strings_compare_case_mapped_up_with_accents_decomposed() {
    // i;ascii-casemap and i;unicode-casemap map to upper (title) case, so `_` and `[` sort
    // after the letters; an accented letter is its base letter and a combining mark, so `éa`
    // sorts after `eb` and before `f`; `ß` stays itself. Dovecot answers the same.
    let day = "01-Nov-2026 10:00:00 +0000";
    let messages = [
        (day, "From: a_b@x.example\nSubject: [only]\n\n1\n"),
        (day, "From: aab@x.example\nSubject: apple\n\n2\n"),
        (day, "From: \"Émile\" <e@x.example>\nSubject: éa\n\n3\n"),
        (day, "From: \"Ezra\" <f@x.example>\nSubject: eb\n\n4\n"),
        (day, "From: \"zed\" <g@x.example>\nSubject: zz\n\n5\n"),
        (day, "From: \"ß\" <h@x.example>\nSubject: ss\n\n6\n"),
        (day, "From: \"st\" <i@x.example>\nSubject: ß\n\n7\n"),
    ];
    let (_server, mut c) = server_with(&messages);
    assert_eq!(sort(&mut c, "c1", "SORT (FROM) UTF-8 1:2"), [2, 1]);
    assert_eq!(
        sort(&mut c, "c2", "SORT (SUBJECT) UTF-8 ALL"),
        [2, 4, 3, 6, 5, 1, 7]
    );
    assert_eq!(
        sort(&mut c, "c3", "SORT (DISPLAYFROM) UTF-8 ALL"),
        [2, 1, 4, 3, 7, 5, 6]
    );
}

#[test]
fn fields_are_read_as_envelope_reads_them() {
    // A group's first address is the group's start, named by the group; a source route is no
    // part of the address; a repeated field counts once, the first; a Date naming no real day
    // is no sent date (the internal date stands in), while 29 February 2024 is one.
    let messages = [
        (
            "01-Nov-2026 10:00:00 +0000",
            "From: undisclosed-recipients:;\nTo: <@relay.example:zed@x.example>\nSubject: one\n\
             Date: 31 Feb 2026 12:00:00 +0000\n\n1\n",
        ),
        (
            "02-Nov-2026 10:00:00 +0000",
            "From: \"Bea\" <bea@x.example>\nTo: Team: \"Al\" <al@x.example>;\nSubject: two\n\
             Date: 29 Feb 2024 12:00:00 +0000\n\n2\n",
        ),
        (
            "03-Nov-2026 10:00:00 +0000",
            "From: <@relay.example:carl@x.example>\nTo: yves@x.example\nSubject: three\n\
             Date: 1 Nov 2026 12:00:00 +0000\n\n3\n",
        ),
        (
            "04-Nov-2026 10:00:00 +0000",
            "From: Abe <abe@x.example>\nFrom: Zoe <zoe@x.example>\nTo: bob@x.example\n\
             Subject: four\nDate: 2 Nov 2026 12:00:00 +0000\nDate: 1 Jan 2020 12:00:00 +0000\n\n4\n",
        ),
    ];
    let (_server, mut c) = server_with(&messages);
    assert_eq!(sort(&mut c, "f1", "SORT (DATE) UTF-8 ALL"), [2, 1, 3, 4]);
    for (i, key) in ["FROM", "DISPLAYFROM", "TO", "DISPLAYTO"]
        .iter()
        .enumerate()
    {
        let command = format!("SORT ({key}) UTF-8 ALL");
        assert_eq!(
            sort(&mut c, &format!("f{i}x"), &command),
            [4, 2, 3, 1],
            "{key}"
        );
    }
}

/// Sixteen messages covering RFC 5256's threading rules; the comments say what each tests.
const THREADED: [(&str, &str); 16] = [
    // 1-4: a reply chain; 3 answers 1 earlier than 2 does; 4 names its parent only in
    // In-Reply-To.
    ("01-Nov-2026 10:00:00 +0000", "Message-ID: <a1@x>\nSubject: Alpha\nDate: Sun, 1 Nov 2026 10:00:00 +0000\n\n1\n"),
    ("01-Nov-2026 12:00:00 +0000", "Message-ID: <a2@x>\nReferences: <a1@x>\nSubject: Re: Alpha\nDate: Sun, 1 Nov 2026 12:00:00 +0000\n\n2\n"),
    ("01-Nov-2026 11:00:00 +0000", "Message-ID: <a3@x>\nReferences: <a1@x>\nSubject: Re: Alpha\nDate: Sun, 1 Nov 2026 11:00:00 +0000\n\n3\n"),
    ("01-Nov-2026 13:00:00 +0000", "Message-ID: <a4@x>\nIn-Reply-To: <a2@x>\nSubject: Re: Alpha\nDate: Sun, 1 Nov 2026 13:00:00 +0000\n\n4\n"),
    // 5-6: two replies to a message we don't have: a dummy keeps them together.
    ("02-Nov-2026 10:00:00 +0000", "Message-ID: <b1@x>\nReferences: <gone1@x>\nSubject: Re: Beta\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\n5\n"),
    ("02-Nov-2026 09:00:00 +0000", "Message-ID: <b2@x>\nReferences: <gone1@x>\nSubject: Re: Beta\nDate: Mon, 2 Nov 2026 09:00:00 +0000\n\n6\n"),
    // 7: one reply to a missing message (promoted to the root); 8: a non-reply of the same
    // subject without references, which the reply joins in step 5.
    ("03-Nov-2026 10:00:00 +0000", "Message-ID: <c1@x>\nReferences: <gone2@x>\nSubject: Re: Gamma\nDate: Tue, 3 Nov 2026 10:00:00 +0000\n\n7\n"),
    ("03-Nov-2026 11:00:00 +0000", "Message-ID: <c2@x>\nSubject: Gamma\nDate: Tue, 3 Nov 2026 11:00:00 +0000\n\n8\n"),
    // 9-10: two non-replies of one subject: step 5 puts them under a dummy.
    ("04-Nov-2026 10:00:00 +0000", "Message-ID: <d1@x>\nSubject: Delta\nDate: Wed, 4 Nov 2026 10:00:00 +0000\n\n9\n"),
    ("04-Nov-2026 09:00:00 +0000", "Message-ID: <d2@x>\nSubject: Delta\nDate: Wed, 4 Nov 2026 09:00:00 +0000\n\n10\n"),
    // 11: a duplicate of 1's Message-ID: a thread of its own.
    ("05-Nov-2026 10:00:00 +0000", "Message-ID: <a1@x>\nSubject: Alpha again\nDate: Thu, 5 Nov 2026 10:00:00 +0000\n\n11\n"),
    // 12-13: each names the other as its parent; the link that would close the loop is not
    // made.
    ("06-Nov-2026 10:00:00 +0000", "Message-ID: <e1@x>\nReferences: <e2@x>\nSubject: Epsilon\nDate: Fri, 6 Nov 2026 10:00:00 +0000\n\n12\n"),
    ("06-Nov-2026 11:00:00 +0000", "Message-ID: <e2@x>\nReferences: <e1@x>\nSubject: Re: Epsilon\nDate: Fri, 6 Nov 2026 11:00:00 +0000\n\n13\n"),
    // 14 says f1 > f2 > f3; 15 (f2) says its parent is fX: its own last reference wins.
    ("07-Nov-2026 12:00:00 +0000", "Message-ID: <f3@x>\nReferences: <f1@x> <f2@x>\nSubject: Re: Zeta\nDate: Sat, 7 Nov 2026 12:00:00 +0000\n\n14\n"),
    ("07-Nov-2026 11:00:00 +0000", "Message-ID: <f2@x>\nReferences: <fX@x>\nSubject: Re: Zeta\nDate: Sat, 7 Nov 2026 11:00:00 +0000\n\n15\n"),
    ("07-Nov-2026 10:00:00 +0000", "Message-ID: <f1@x>\nSubject: Zeta\nDate: Sat, 7 Nov 2026 10:00:00 +0000\n\n16\n"),
];

fn thread(c: &mut LineClient, tag: &str, command: &str) -> String {
    let (lines, _) = run(c, tag, command);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let threads = lines[0]
        .strip_prefix("* THREAD")
        .expect("a THREAD response");
    threads.trim_start().to_string()
}

#[test]
fn thread_references_follows_rfc_5256_step_by_step() {
    let (_server, mut c) = server_with(&THREADED);
    assert_eq!(
        thread(&mut c, "t1", "THREAD REFERENCES UTF-8 ALL"),
        "(1 (3)(2 4))((6)(5))(8 7)((10)(9))(11)(13 12)(16 15 14)"
    );
    // Only the messages searched for are threaded: without 1, its replies 2 and 3 hang
    // under a dummy for the missing parent.
    assert_eq!(
        thread(&mut c, "t2", "THREAD REFERENCES UTF-8 2:10"),
        "((3)(2 4))((6)(5))(8 7)((10)(9))"
    );
    // Without 1, the duplicate 11 is the first message with its Message-ID, so it is the
    // parent; without 16, 15 heads its thread.
    assert_eq!(
        thread(&mut c, "t2b", "THREAD REFERENCES UTF-8 2:15"),
        "((6)(5))(8 7)((10)(9))(11 (3)(2 4))(13 12)(15 14)"
    );
    // UID THREAD answers with UIDs (here equal to the sequence numbers).
    assert_eq!(
        thread(&mut c, "t3", "UID THREAD REFERENCES UTF-8 5:6"),
        "((6)(5))"
    );
    assert_eq!(
        thread(&mut c, "t4", "THREAD REFERENCES UTF-8 SUBJECT nothing"),
        ""
    );
}

#[test]
fn only_valid_message_ids_link_messages() {
    // RFC 5256 uses valid Message IDs only: `<left@right>`, blanks inside dropped, compared
    // case-sensitively; a References field without one gives way to In-Reply-To.
    let day = "02-Nov-2026 10:00:00 +0000";
    let variant = |n: u32, field: &str| {
        format!("Message-ID: <v{n}@x>\n{field}\nSubject: s{n}\nDate: Mon, 2 Nov 2026 10:0{n}:00 +0000\n\n{n}\n")
    };
    let texts = [
        "Message-ID: <p1@x>\nSubject: root\nDate: Sun, 1 Nov 2026 10:00:00 +0000\n\n1\n"
            .to_string(),
        variant(1, "References: garbage <p1@x>"),
        variant(2, "References: p1@x"),
        variant(3, "References: <p1 @ x>"),
        variant(4, "References: <p1>"),
        variant(5, "References: garbage\nIn-Reply-To: <p1@x>"),
        variant(6, "References: <P1@X>"),
    ];
    let messages: Vec<(&str, &str)> = texts.iter().map(|t| (day, t.as_str())).collect();
    let (_server, mut c) = server_with(&messages);
    assert_eq!(
        thread(&mut c, "v1", "THREAD REFERENCES UTF-8 ALL"),
        "(1 (2)(4)(6))(3)(5)(7)"
    );
}

#[test]
fn thread_orderedsubject_makes_every_later_message_a_child_of_the_first() {
    let (_server, mut c) = server_with(&THREADED);
    assert_eq!(
        thread(&mut c, "o1", "THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "(1 (3)(2)(4))(6 5)(7 8)(10 9)(11)(12 13)(16 (15)(14))"
    );
    let (_server, mut c) = server_with(&SORTABLE);
    assert_eq!(
        thread(&mut c, "o2", "THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "(4 2)(1 3)(5)"
    );
    // REFERENCES on messages without ids groups by subject alone (step 5): the reply 2 goes
    // under the non-reply 4; 1 and 3 are both replies or forwards, so they meet under a dummy.
    assert_eq!(
        thread(&mut c, "o3", "THREAD REFERENCES UTF-8 ALL"),
        "(4 2)((1)(3))(5)"
    );
}

/// The `n` of a tagged `OK [HIGHESTMODSEQ n]`, if it has one.
fn highest_in(tagged: &str) -> Option<u64> {
    let rest = tagged.split("[HIGHESTMODSEQ ").nth(1)?;
    rest.split(']').next()?.parse().ok()
}

#[test]
fn sort_with_a_modseq_key_enables_condstore_and_reports_the_highest() {
    let (server, mut c) = server_with(&SORTABLE);
    let (u, t) = run(&mut c, "m0", "SORT (DATE) UTF-8 ALL");
    assert_eq!(u, ["* SORT 4 1 2 5 3"]);
    assert!(highest_in(&t).is_none(), "{t}");
    run(&mut c, "m1", "STORE 2 +FLAGS (\\Flagged)");
    let (u, t) = run(
        &mut c,
        "m2",
        "SORT (REVERSE DATE) UTF-8 NOT MODSEQ 9000000000000000000",
    );
    let highest = highest_in(&t).unwrap_or_else(|| panic!("CONDSTORE turned on: {t}"));
    let (fetched, _) = run(&mut c, "m3", "FETCH 2 (MODSEQ)");
    assert!(
        fetched[0].contains(&format!("MODSEQ ({highest})")),
        "message 2 changed last: {fetched:?} {highest}"
    );
    assert_eq!(u, [format!("* SORT 3 5 2 1 4 (MODSEQ {highest})")]);
    let (_, t) = run(&mut c, "m4", "SORT (DATE) UTF-8 MODSEQ 1");
    assert!(highest_in(&t).is_none(), "only the enabling command: {t}");
    // Nothing found: no mod-sequence to report.
    let (u, _) = run(&mut c, "m5", "SORT (DATE) UTF-8 MODSEQ 9000000000000000000");
    assert_eq!(u, ["* SORT"]);
    // ESORT carries it as ESEARCH's MODSEQ.
    let (u, _) = run(
        &mut c,
        "m6",
        "SORT RETURN (ALL) (SUBJECT) UTF-8 OR MODSEQ 1 1",
    );
    assert_eq!(
        u,
        [format!(
            "* ESEARCH (TAG \"m6\") ALL 1,3,2,4:5 MODSEQ {highest}"
        )]
    );
    // A fresh session: a MODSEQ key nested in OR/NOT enables it too.
    let mut c = logged_in(&server);
    run(&mut c, "s", "SELECT INBOX");
    let (_, t) = run(
        &mut c,
        "n1",
        "UID SORT (ARRIVAL) UTF-8 NOT NOT OR MODSEQ 1 1",
    );
    assert_eq!(highest_in(&t), Some(highest), "{t}");
}
