use super::*;
use bytes::BytesMut;

/// Feeds `input` in chunks of `chunk` bytes; every decoded command or error, in order.
fn decode_all(input: &[u8], chunk: usize, max_literal: u64) -> Vec<Result<Command, ParseError>> {
    let mut decoder = Decoder::new(max_literal);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        for _ in 0..64 {
            match decoder.decode(&mut buf) {
                Ok(Some(tokens)) => out.push(Command::from_tokens(tokens)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
    out
}

fn at_every_chunking(input: &[u8], max_literal: u64, expected: &[Result<Command, ParseError>]) {
    for chunk in 1..=input.len().min(512) {
        assert_eq!(
            decode_all(input, chunk, max_literal),
            expected,
            "chunk size {chunk} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn rfc_5804_examples_decode_at_every_chunking() {
    let input = b"Authenticate \"PLAIN\" \"QJIrweAPyo6Q1T9xy\"\r\n\
        PUTSCRIPT \"mysievescript\" {97+}\r\n\
        require [\"fileinto\"];\r\n\r\nif envelope :contains \"to\" \"tmartin+sent\" {\r\n  fileinto \"INBOX.sent\";\r\n}\r\n\
        LISTSCRIPTS\r\nSETACTIVE \"\"\r\nGETSCRIPT \"a \\\"b\\\\\"\r\n\
        HAVESPACE \"myscript\" 999999\r\nRenameScript \"old\" \"new\"\r\n\
        DELETESCRIPT {3}\r\nfoo\r\nNOOP \"STARTTLS-SYNC-42\"\r\nCHECKSCRIPT {4+}\nkeep\nLOGOUT\n";
    let script = b"require [\"fileinto\"];\r\n\r\nif envelope :contains \"to\" \"tmartin+sent\" {\r\n  fileinto \"INBOX.sent\";\r\n}".to_vec();
    assert_eq!(script.len(), 97);
    at_every_chunking(
        input,
        1000,
        &[
            Ok(Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"QJIrweAPyo6Q1T9xy".to_vec()),
            }),
            Ok(Command::PutScript {
                name: "mysievescript".into(),
                script,
            }),
            Ok(Command::ListScripts),
            Ok(Command::SetActive(String::new())),
            Ok(Command::GetScript("a \"b\\".into())),
            Ok(Command::HaveSpace {
                name: "myscript".into(),
                size: 999_999,
            }),
            Ok(Command::RenameScript("old".into(), "new".into())),
            Ok(Command::DeleteScript("foo".into())),
            Ok(Command::Noop(Some(b"STARTTLS-SYNC-42".to_vec()))),
            Ok(Command::CheckScript(b"keep".to_vec())),
            Ok(Command::Logout),
        ],
    );
}

#[test]
fn bad_commands_are_refused_and_the_next_one_survives() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"FROB\r\n", ParseError::UnknownCommand("FROB".into())),
        (
            b"GETSCRIPT\r\n",
            ParseError::Syntax("Wrong arguments for this command"),
        ),
        (
            b"GETSCRIPT name\r\n",
            ParseError::Syntax("Expected a quoted string or a literal"),
        ),
        (
            b"GETSCRIPT \"unterminated\r\n",
            ParseError::Syntax("Unterminated quoted string"),
        ),
        (
            b"HAVESPACE \"x\" lots\r\n",
            ParseError::Syntax("Invalid script size"),
        ),
        (
            b"GETSCRIPT \"bad\\escape\"\r\n",
            ParseError::Syntax("Invalid escape in a quoted string"),
        ),
        (
            b"GETSCRIPT {x}\r\n",
            ParseError::Syntax("Malformed literal"),
        ),
        (
            b"GETSCRIPT {3} trailing\r\n",
            ParseError::Syntax("A literal must end its line"),
        ),
        (
            b"\"NOOP\"\r\n",
            ParseError::Syntax("Expected a command name"),
        ),
        (
            b"GETSCRIPT \"\xff\"\r\n",
            ParseError::Syntax("A name must be UTF-8 text"),
        ),
    ];
    for (bad, error) in cases {
        let mut input = bad.to_vec();
        input.extend_from_slice(b"NOOP\r\n");
        at_every_chunking(&input, 100, &[Err(error.clone()), Ok(Command::Noop(None))]);
    }
}

#[test]
fn an_oversized_literal_is_skipped_unstored() {
    let mut input = b"PUTSCRIPT \"big\" {20+}\r\n".to_vec();
    input.extend_from_slice(&[b'x'; 20]);
    input.extend_from_slice(b"\r\nCAPABILITY\r\n");
    at_every_chunking(
        &input,
        10,
        &[
            Err(ParseError::LiteralTooLarge {
                command: Some("PUTSCRIPT".into()),
                size: 20,
                limit: 10,
            }),
            Ok(Command::Capability),
        ],
    );
}

#[test]
fn an_overlong_line_is_refused_without_being_kept() {
    let mut input = b"NOOP ".to_vec();
    input.extend_from_slice(&vec![b'a'; MAX_LINE + 100]);
    input.extend_from_slice(b"\r\nLOGOUT\r\n");
    for chunk in [1, 7, 512, 4096, input.len()] {
        assert_eq!(
            decode_all(&input, chunk, 100),
            vec![Err(ParseError::LineTooLong), Ok(Command::Logout)],
            "chunk {chunk}"
        );
    }
    let mut decoder = Decoder::new(10);
    let mut buf = BytesMut::from(&vec![b'a'; 3 * MAX_LINE][..]);
    assert_eq!(decoder.decode(&mut buf), Err(ParseError::LineTooLong));
    assert!(buf.is_empty(), "the overlong line is not kept");
}

#[test]
fn an_incomplete_literal_is_waited_for_without_rescanning() {
    let mut decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::from(&b"CHECKSCRIPT {1000+}\r\nkeep"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(
        decoder.need,
        21 + 1000,
        "the buffer must hold the whole literal"
    );
    buf.extend_from_slice(&[b' '; 996]);
    buf.extend_from_slice(b"\r\n");
    assert!(matches!(decoder.decode(&mut buf), Ok(Some(_))));
}

#[test]
fn sasl_answers_are_one_string() {
    let mut decoder = Decoder::new(100);
    let mut buf = BytesMut::from(&b"\"dGVzdA==\"\r\n{4+}\r\nabcd\r\nNOOP\r\n"[..]);
    let first = decoder.decode(&mut buf).unwrap().unwrap();
    assert_eq!(sasl_answer(first), Ok(b"dGVzdA==".to_vec()));
    let second = decoder.decode(&mut buf).unwrap().unwrap();
    assert_eq!(sasl_answer(second), Ok(b"abcd".to_vec()));
    let third = decoder.decode(&mut buf).unwrap().unwrap();
    assert!(sasl_answer(third).is_err());
}

#[test]
fn responses_are_encoded_exactly() {
    assert_eq!(ok(""), b"OK\r\n");
    assert_eq!(ok("Done."), b"OK \"Done.\"\r\n");
    assert_eq!(
        no(Some(&Code::NonExistent), "There is no script named \"x\"."),
        b"NO (NONEXISTENT) \"There is no script named \\\"x\\\".\"\r\n"
    );
    assert_eq!(
        no(Some(&Code::QuotaMaxSize), "Too big."),
        b"NO (QUOTA/MAXSIZE) \"Too big.\"\r\n"
    );
    assert_eq!(
        response(Status::Ok, Some(&Code::Tag(b"t1".to_vec())), "Done"),
        b"OK (TAG \"t1\") \"Done\"\r\n"
    );
    assert_eq!(
        no(None, "line 2: unknown command\nmore"),
        b"NO {28}\r\nline 2: unknown command\nmore\r\n"
    );
    assert_eq!(bye("Bye."), b"BYE \"Bye.\"\r\n");
    assert_eq!(
        capability("VERSION", Some("1.0")),
        b"\"VERSION\" \"1.0\"\r\n"
    );
    assert_eq!(capability("STARTTLS", None), b"\"STARTTLS\"\r\n");
    assert_eq!(script_line("a", true), b"\"a\" ACTIVE\r\n");
    assert_eq!(script_line("b", false), b"\"b\"\r\n");
    assert_eq!(literal_line(b"keep;"), b"{5}\r\nkeep;\r\n");
    assert_eq!(string_line(b""), b"\"\"\r\n");
}

#[test]
fn hostile_bytes_never_panic_and_every_buffer_drains() {
    // A fixed pseudo-random stream over an alphabet rich in the syntax's special bytes.
    let alphabet = b"{}+0123456789\"\\ \r\nPUTSCRIPT\xff\0";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let len = (next() % 300) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let chunk = 1 + (next() % 17) as usize;
        let mut decoder = Decoder::new(64);
        let mut buf = BytesMut::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            for _ in 0..1000 {
                match decoder.decode(&mut buf) {
                    Ok(Some(tokens)) => {
                        let _ = Command::from_tokens(tokens);
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
        }
        assert!(buf.len() <= MAX_LINE + 64 + 32, "held {} bytes", buf.len());
    }
}
