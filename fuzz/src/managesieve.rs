//! ManageSieve (RFC 5804) client input: the command decoder (atoms, quoted strings, `{N+}` and
//! `{N}` literals, the line and literal caps with a refused command's rest skipped) and the
//! command and SASL-answer parsers behind it.

use bytes::BytesMut;
use roost_protocol::managesieve::{sasl_answer, Command, Decoder, ParseError, MAX_LINE};

/// The literal cap the fuzzed decoder uses (small, so refusals are reached).
const MAX_LITERAL: u64 = 1024;

/// What the decoder and parser made of `data`, fed `chunk` bytes at a time.
fn commands(data: &[u8], chunk: usize) -> Vec<Result<Command, ParseError>> {
    let mut decoder = Decoder::new(MAX_LITERAL);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(tokens)) => {
                    let _ = sasl_answer(tokens.clone());
                    out.push(Command::from_tokens(tokens));
                }
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
        let most = MAX_LINE as u64 + 2 * MAX_LITERAL + 64 + chunk as u64;
        assert!(
            buf.len() as u64 <= most,
            "the decoder holds {} bytes, more than one command",
            buf.len()
        );
    }
    out
}

/// Every command comes out the same whatever the read sizes were, and nothing panics.
pub fn managesieve(data: &[u8]) {
    let whole = commands(data, data.len());
    for chunk in [1, 7] {
        assert_eq!(
            commands(data, chunk),
            whole,
            "commands depend on read size {chunk}"
        );
    }
}
