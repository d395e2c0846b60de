//! IMAP: the command decoder (with the hand-sliced extended syntax of `extended.rs`) and the
//! MIME / ENVELOPE / BODYSTRUCTURE / section code of `message.rs`.

use std::borrow::Cow;

use imap_codec::{decode::Decoder, ResponseCodec};
use roost_protocol::imap::{
    extended::{self, Saved},
    message::{header_fields, header_len, to_crlf, SectionText, Structure},
    Event, Expect, ImapDecoder,
};

/// Literal and command limits small enough for the fuzzer to cross them.
const MAX_LITERAL: u32 = 64;
const MAX_COMMAND: u32 = 1024;

fn saved() -> Saved {
    Saved {
        uids: "4:6,9".into(),
        seqs: "2".into(),
    }
}

/// Feeds `data` in pieces of `chunk` bytes and describes every event.
fn events(data: &[u8], chunk: usize, expect: Expect) -> Vec<String> {
    let mut dec = ImapDecoder::new(MAX_LITERAL, MAX_COMMAND);
    dec.set_saved(saved());
    dec.expect(expect);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        dec.enqueue(piece);
        while let Some(event) = dec.next_event() {
            assert!(out.len() <= data.len() + 1, "more events than input bytes");
            if let Event::Command(_) = event {
                out.push(format!("{event:?} {:?}", dec.take_extras()));
            } else {
                out.push(format!("{event:?}"));
            }
        }
    }
    out
}

/// `ImapDecoder` over the client's bytes: the same events whatever the read sizes were, in each
/// of the three states; `extended::extract` and `substitute_saved` on the raw bytes too.
pub fn imap_decoder(data: &[u8]) {
    // The helpers take one complete message; give them the raw input as one.
    let _ = extended::extract(data);
    if let Some(out) = extended::substitute_saved(data, &saved()) {
        assert_ne!(
            out, data,
            "a substitution that changed nothing was reported"
        );
    }
    let whole = events(data, data.len(), Expect::Command);
    // Byte by byte costs O(n^2) in the fragmentizer: only for short inputs.
    let smallest = if data.len() <= 512 { 1 } else { 13 };
    for chunk in [smallest, 7] {
        assert_eq!(
            events(data, chunk, Expect::Command),
            whole,
            "events depend on read size {chunk}"
        );
    }
    let _ = events(data, data.len(), Expect::AuthenticateData);
    let _ = events(data, 3, Expect::IdleDone);
}

/// Part paths worth asking for: the whole message, and every path of up to three levels with
/// numbers 1..=3, plus the edge numbers 0 and `u32::MAX`.
fn paths() -> Vec<Vec<u32>> {
    let mut out = vec![vec![], vec![0], vec![u32::MAX], vec![1, 0]];
    for a in 1..=3 {
        out.push(vec![a]);
        for b in 1..=3 {
            out.push(vec![a, b]);
            for c in 1..=3 {
                out.push(vec![a, b, c]);
            }
        }
    }
    out
}

/// A message file (any bytes) through `to_crlf`, `Structure` (ENVELOPE, BODY, BODYSTRUCTURE,
/// sections, BINARY) and the header helpers. The FETCH response built from ENVELOPE and
/// BODYSTRUCTURE must parse as IMAP, and every section range must lie inside the message.
pub fn imap_message(data: &[u8]) {
    let crlf = to_crlf(data);
    let mut prev = 0u8;
    for &b in crlf.iter() {
        assert!(b != b'\n' || prev == b'\r', "to_crlf left a bare LF");
        prev = b;
    }
    assert!(
        matches!(to_crlf(&crlf), Cow::Borrowed(_)),
        "to_crlf is not idempotent"
    );
    let raw: &[u8] = &crlf;
    let header = header_len(raw);
    assert!(header <= raw.len());
    for not in [false, true] {
        let fields = header_fields(&raw[..header], &[b"subject", b"from", b"x"], not);
        assert!(fields.ends_with(b"\r\n"));
        assert!(fields.len() <= header + 2);
    }

    let s = Structure::parse(raw);
    let envelope = s.envelope();
    let extended = s.body_structure(true);
    let basic = s.body_structure(false);
    let mut response = b"* 1 FETCH (ENVELOPE ".to_vec();
    response.extend_from_slice(&envelope);
    response.extend_from_slice(b" BODYSTRUCTURE ");
    response.extend_from_slice(&extended);
    response.extend_from_slice(b" BODY ");
    response.extend_from_slice(&basic);
    response.extend_from_slice(b")\r\n");
    match ResponseCodec::default().decode(&response) {
        Ok((rest, _)) => assert!(rest.is_empty(), "bytes left after the FETCH response"),
        Err(e) => panic!(
            "roost wrote a FETCH response that is not IMAP ({e:?}):\n{}",
            String::from_utf8_lossy(&response)
        ),
    }

    for path in paths() {
        for text in [
            SectionText::Content,
            SectionText::Header,
            SectionText::Text,
            SectionText::Mime,
        ] {
            if let Some(range) = s.section(&path, text) {
                assert!(
                    range.start <= range.end && range.end <= raw.len(),
                    "section {path:?} {text:?} is {range:?}, outside the {} byte message",
                    raw.len()
                );
            }
        }
        let _ = s.decoded_section(&path);
    }
}
