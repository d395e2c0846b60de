//! Structure, sections and hostile MIME, on byte strings.

use super::*;

const NESTED: &[u8] = b"From: Ann Example <ann@example.com>\r\nTo: bob@example.org, \"Carl\" <carl@example.net>\r\nSubject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--XX\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=inner.eml\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--YY--\r\n\r\n--XX--\r\nepilogue\r\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn section(s: &Structure<'_>, path: &[u32], kind: SectionText) -> String {
    s.section(path, kind)
        .map(|r| text(&NESTED[r]))
        .unwrap_or_else(|| "<none>".into())
}

#[test]
fn envelope_has_every_field_in_order() {
    let s = Structure::parse(NESTED);
    assert_eq!(
        text(&s.envelope()),
        "(\"Mon, 23 Nov 2026 10:00:00 +0000\" \"hello\" ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")(\"Carl\" NIL \"carl\" \"example.net\")) NIL NIL NIL \"<1@example.com>\")"
    );
}

#[test]
fn bodystructure_nests_multipart_and_message_rfc822() {
    let s = Structure::parse(NESTED);
    let bs = text(&s.body_structure(true));
    assert!(
        bs.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 2 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "),
        "{bs}"
    );
    assert!(
        bs.contains("(\"attachment\" (\"filename\" \"inner.eml\"))"),
        "{bs}"
    );
    assert!(bs.contains("\"alternative\""), "{bs}");
    assert!(
        bs.ends_with(" \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"),
        "{bs}"
    );
    let body = text(&s.body_structure(false));
    assert!(
        !body.contains("attachment"),
        "BODY has no extension data: {body}"
    );
}

#[test]
fn sections_follow_imap_part_numbers() {
    let s = Structure::parse(NESTED);
    assert_eq!(section(&s, &[1], SectionText::Content), "hello\r\nworld");
    assert_eq!(
        section(&s, &[1], SectionText::Mime),
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    assert!(section(&s, &[2], SectionText::Content).starts_with("Subject: inner\r\n"));
    assert_eq!(
        section(&s, &[2], SectionText::Header),
        "Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
    );
    assert_eq!(section(&s, &[2, 1], SectionText::Content), "inner text");
    assert_eq!(section(&s, &[2, 2], SectionText::Content), "<b>x</b>");
    assert_eq!(section(&s, &[3], SectionText::Content), "<none>");
    assert_eq!(section(&s, &[1, 1], SectionText::Content), "<none>");
    assert!(section(&s, &[], SectionText::Header).ends_with("boundary=XX\r\n\r\n"));
    assert!(section(&s, &[], SectionText::Text).starts_with("preamble"));
}

#[test]
fn a_single_part_message_is_part_one() {
    let msg = b"Subject: x\r\n\r\nbody\r\n";
    let s = Structure::parse(msg);
    assert_eq!(s.section(&[1], SectionText::Content), Some(14..20));
    assert_eq!(
        text(&s.body_structure(false)),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)"
    );
}

#[test]
fn header_fields_filter_keeps_continuations() {
    let header = b"Subject: a\r\n b\r\nFrom: x\r\nTo: y\r\n\r\n";
    assert_eq!(
        header_fields(header, &[b"subject", b"to"], false),
        b"Subject: a\r\n b\r\nTo: y\r\n\r\n"
    );
    assert_eq!(
        header_fields(header, &[b"subject"], true),
        b"From: x\r\nTo: y\r\n\r\n"
    );
    assert_eq!(header_len(header), header.len());
    assert_eq!(&to_crlf(b"a\nb\r\n")[..], b"a\r\nb\r\n");
}

#[test]
fn binary_sections_undo_the_transfer_encoding() {
    let msg = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8A\r\n--B\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 soft=\r\nbreak\r\n--B\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--B--\r\n";
    let s = Structure::parse(msg);
    assert_eq!(s.decoded_section(&[1]), Some(Ok(b"hello\0".to_vec())));
    assert_eq!(
        s.decoded_section(&[2]),
        Some(Ok("caf\u{e9} softbreak".as_bytes().to_vec()))
    );
    assert!(matches!(s.decoded_section(&[3]), Some(Err(UnknownCte(_)))));
    assert_eq!(s.decoded_section(&[4]), None);
}

#[test]
fn garbage_never_panics() {
    for input in [
        &b""[..],
        b"\r\n",
        b"no header",
        b"Content-Type: multipart/mixed\r\n\r\n--",
    ] {
        let s = Structure::parse(input);
        let _ = s.envelope();
        let _ = s.body_structure(true);
        let _ = s.section(&[1, 2, 3], SectionText::Header);
        let _ = s.binary_parts_as_base64();
    }
}

/// `depth` multiparts nested directly in one another.
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for i in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"\r\nleaf\r\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

/// Runs `f` on a thread with a quarter of a tokio worker's stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let joined = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .expect("thread starts")
        .join();
    assert!(joined.is_ok(), "a deep message took the thread down");
}

fn max_paren_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for &b in bytes {
        match b {
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[test]
fn deep_mime_nesting_is_cut_at_the_limit() {
    for raw in [
        nested_multiparts(50_000),
        crate::imap::parsed::tests::nested(50_000),
    ] {
        on_small_stack(move || {
            let s = Structure::parse(&raw);
            let bs = s.body_structure(true);
            assert!(bs.starts_with(b"("), "{}", text(&bs[..40]));
            // Each container level is one or two parentheses deep, never more than the cap.
            let depth = max_paren_depth(&bs);
            assert!(
                (MAX_MIME_DEPTH..=3 * MAX_MIME_DEPTH + 10).contains(&depth),
                "{depth}"
            );
            let deep: Vec<u32> = vec![1; 5_000];
            let _ = s.section(&deep, SectionText::Content);
            let _ = s.decoded_section(&deep);
            let _ = s.envelope();
            let _ = s.binary_parts_as_base64();
        });
    }
}

/// An attached message that itself holds a text part and a second attached message.
const TWO_LEVELS: &[u8] = b"From: a@b.c\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y.z\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner2\r\n\r\ninner2 body\r\n--YY--\r\n\r\n--XX--\r\n";

fn part_of(message: &[u8], path: &[u32], kind: SectionText) -> String {
    Structure::parse(message)
        .section(path, kind)
        .map(|r| text(&message[r]))
        .unwrap_or_else(|| "<none>".into())
}

#[test]
fn an_attached_message_is_its_header_and_body_at_every_level() {
    let m = TWO_LEVELS;
    let inner =
        "Subject: inner\r\nFrom: x@y.z\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n";
    let inner_text = "--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner2\r\n\r\ninner2 body\r\n--YY--\r\n";
    // The same bytes Dovecot 2.3 answers for this message.
    assert_eq!(
        part_of(m, &[2], SectionText::Content),
        format!("{inner}{inner_text}")
    );
    assert_eq!(part_of(m, &[2], SectionText::Header), inner);
    assert_eq!(part_of(m, &[2], SectionText::Text), inner_text);
    assert_eq!(
        part_of(m, &[2], SectionText::Mime),
        "Content-Type: message/rfc822\r\n\r\n"
    );
    assert_eq!(part_of(m, &[2, 1], SectionText::Content), "inner text");
    assert_eq!(
        part_of(m, &[2, 2], SectionText::Content),
        "Subject: inner2\r\n\r\ninner2 body"
    );
    assert_eq!(
        part_of(m, &[2, 2], SectionText::Header),
        "Subject: inner2\r\n\r\n"
    );
    assert_eq!(part_of(m, &[2, 2], SectionText::Text), "inner2 body");
    assert_eq!(
        part_of(m, &[2, 2], SectionText::Mime),
        "Content-Type: message/rfc822\r\n\r\n"
    );
    // Inside a non-multipart attached message, part 1 is its body.
    assert_eq!(part_of(m, &[2, 2, 1], SectionText::Content), "inner2 body");
    assert_eq!(part_of(m, &[2, 2, 2], SectionText::Content), "<none>");
    assert_eq!(part_of(m, &[2, 1, 1], SectionText::Content), "<none>");
    assert_eq!(part_of(m, &[1], SectionText::Header), "<none>");
}

#[test]
fn a_message_whose_body_is_a_message_has_it_as_part_one() {
    let m = b"From: a@b.c\r\nSubject: top822\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y.z\r\n\r\ninner body\r\nline2\r\n";
    let inner = "Subject: inner\r\nFrom: x@y.z\r\n\r\ninner body\r\nline2\r\n";
    assert_eq!(part_of(m, &[1], SectionText::Content), inner);
    assert_eq!(
        part_of(m, &[1], SectionText::Header),
        "Subject: inner\r\nFrom: x@y.z\r\n\r\n"
    );
    assert_eq!(
        part_of(m, &[1], SectionText::Text),
        "inner body\r\nline2\r\n"
    );
    assert_eq!(
        part_of(m, &[1, 1], SectionText::Content),
        "inner body\r\nline2\r\n"
    );
    assert_eq!(
        part_of(m, &[1], SectionText::Mime),
        "From: a@b.c\r\nSubject: top822\r\nContent-Type: message/rfc822\r\n\r\n"
    );
    assert_eq!(part_of(m, &[2], SectionText::Content), "<none>");
    // Dovecot 2.3 answers exactly this.
    assert_eq!(
        text(&Structure::parse(m).body_structure(true)),
        "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 50 (NIL \"inner\" ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 19 2 NIL NIL NIL NIL) 5 NIL NIL NIL NIL)"
    );
}

#[test]
fn bodystructure_of_attached_messages_carries_envelope_body_and_lines() {
    let bs = text(&Structure::parse(TWO_LEVELS).body_structure(true));
    assert_eq!(
        bs,
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 179 \
         (NIL \"inner\" ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL NIL) \
         ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)\
         (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30 (NIL \"inner2\" NIL NIL NIL NIL NIL NIL NIL NIL) \
         (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) \
         \"alternative\" (\"boundary\" \"YY\") NIL NIL NIL) 14 NIL NIL NIL NIL) \
         \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"
    );
    let body = text(&Structure::parse(TWO_LEVELS).body_structure(false));
    assert!(body.contains("\"7bit\" 30 (NIL \"inner2\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1) 3)"), "{body}");
}

#[test]
fn an_encoded_attached_message_is_an_empty_message() {
    let m = b"Subject: b64 822\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaGkNCg0KYm9keQ0K\r\n--Q--\r\n";
    let s = Structure::parse(m);
    // Dovecot 2.3 gives the same envelope and body (it counts 1 line as well).
    assert_eq!(
        text(&s.body_structure(true)),
        "((\"message\" \"rfc822\" NIL NIL NIL \"base64\" 28 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"Q\") NIL NIL NIL)"
    );
    assert_eq!(
        part_of(m, &[1], SectionText::Content),
        "U3ViamVjdDogaGkNCg0KYm9keQ0K"
    );
    assert_eq!(part_of(m, &[1, 1], SectionText::Content), "<none>");
    assert_eq!(
        s.decoded_section(&[1]),
        Some(Ok(b"Subject: hi\r\n\r\nbody\r\n".to_vec()))
    );
}

#[test]
fn envelope_addresses_keep_source_routes_and_groups() {
    let m = b"From: Joe <@route1,@route2:user@domain>\r\nSender: <@r:s@h>\r\nTo: Friends: a@b.c, \"B\" <b@c.d>;, solo@x.y\r\nCc: undisclosed-recipients:;\r\nSubject: routes\r\n\r\nbody\r\n";
    // What Dovecot 2.3 answers for the same header.
    assert_eq!(
        text(&Structure::parse(m).envelope()),
        "(NIL \"routes\" ((\"Joe\" \"@route1,@route2\" \"user\" \"domain\")) ((NIL \"@r\" \"s\" \"h\")) ((\"Joe\" \"@route1,@route2\" \"user\" \"domain\")) \
         ((NIL NIL \"Friends\" NIL)(NIL NIL \"a\" \"b.c\")(\"B\" NIL \"b\" \"c.d\")(NIL NIL NIL NIL)(NIL NIL \"solo\" \"x.y\")) \
         ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
    );
    let m = b"Sender: <@r:s@h>\r\nTo: a@b, empty:;, c@d\r\nSubject: s\r\n\r\nx\r\n";
    assert_eq!(
        text(&Structure::parse(m).envelope()),
        "(NIL \"s\" NIL ((NIL \"@r\" \"s\" \"h\")) NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"empty\" NIL)(NIL NIL NIL NIL)(NIL NIL \"c\" \"d\")) NIL NIL NIL NIL)"
    );
}

#[test]
fn binary_parts_are_reencoded_as_base64_for_storage() {
    let m = b"Subject: bin\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nA\0B\x01C\r\n--B\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n--B--\r\n";
    let converted = Structure::parse(m).binary_parts_as_base64().unwrap();
    assert_eq!(
        text(&converted),
        "Subject: bin\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nQQBCAUM=\r\n--B\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\u{e9}\r\n--B--\r\n"
    );
    let again = Structure::parse(&converted);
    assert_eq!(again.decoded_section(&[1]), Some(Ok(b"A\0B\x01C".to_vec())));
    assert_eq!(
        again.binary_parts_as_base64(),
        None,
        "nothing left to convert"
    );
    // A long single-part body: 76-character lines.
    let body = vec![0xffu8; 100];
    let mut single = b"Content-Transfer-Encoding: BINARY\r\n\r\n".to_vec();
    single.extend_from_slice(&body);
    let converted = Structure::parse(&single).binary_parts_as_base64().unwrap();
    let encoded = &converted[converted.len() - 138..];
    assert_eq!(encoded.iter().position(|&b| b == b'\r'), Some(76));
    let again = Structure::parse(&converted);
    assert_eq!(again.decoded_section(&[1]), Some(Ok(body)));
    assert_eq!(Structure::parse(NESTED).binary_parts_as_base64(), None);
}

#[test]
fn an_empty_attached_message_is_empty() {
    let m = b"Subject: empty822\r\nContent-Type: multipart/mixed; boundary=E\r\n\r\n--E\r\nContent-Type: message/rfc822\r\n\r\n--E--\r\n";
    // Dovecot 2.3 answers the same (mail-parser alone ran the part on over the delimiter).
    assert_eq!(
        text(&Structure::parse(m).body_structure(true)),
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"E\") NIL NIL NIL)"
    );
    assert_eq!(part_of(m, &[1], SectionText::Content), "");
    assert_eq!(part_of(m, &[1, 1], SectionText::Content), "<none>");
}

#[test]
fn a_digest_part_without_content_type_is_an_attached_message() {
    let m = b"Subject: digest\r\nContent-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: d1\r\n\r\nfirst\r\n--D\r\nContent-Type: text/plain\r\n\r\nplain\r\n--D--\r\n";
    let bs = text(&Structure::parse(m).body_structure(true));
    assert!(
        bs.starts_with("((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 20 (NIL \"d1\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "),
        "{bs}"
    );
    assert_eq!(part_of(m, &[1], SectionText::Header), "Subject: d1\r\n\r\n");
    assert_eq!(part_of(m, &[1, 1], SectionText::Content), "first");
}

/// An attached message whose body is itself an attached message, inside a multipart.
const MESSAGE_IN_MESSAGE: &[u8] = b"Subject: three\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\nContent-Type: message/rfc822\r\n\r\nSubject: l1\r\nContent-Type: message/rfc822\r\n\r\nSubject: l2\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n\r\nc1\r\n--C\r\nContent-Type: text/html\r\n\r\n<p>c2</p>\r\n--C--\r\n\r\n--A--\r\n";

#[test]
fn a_message_in_a_message_ends_at_the_outer_delimiter() {
    let s = Structure::parse(MESSAGE_IN_MESSAGE);
    if cfg!(debug_assertions) {
        // mail-parser asserts on this nesting in debug builds; the message is then one text
        // part (see ParsedMessage::parse). Release builds parse it, and are checked below.
        let _ = s.body_structure(true);
        return;
    }
    let m = MESSAGE_IN_MESSAGE;
    let l2 = "Subject: l2\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n\r\nc1\r\n--C\r\nContent-Type: text/html\r\n\r\n<p>c2</p>\r\n--C--\r\n";
    // Dovecot 2.3 answers these.
    assert_eq!(
        part_of(m, &[1], SectionText::Content),
        format!("Subject: l1\r\nContent-Type: message/rfc822\r\n\r\n{l2}")
    );
    assert_eq!(part_of(m, &[1, 1], SectionText::Content), l2);
    assert_eq!(part_of(m, &[1, 1, 2], SectionText::Content), "<p>c2</p>");
    assert_eq!(part_of(m, &[1, 1, 1], SectionText::Mime), "\r\n");
    assert!(
        text(&s.body_structure(false))
            .starts_with("((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 164 "),
        "{}",
        text(&s.body_structure(false))
    );
}
