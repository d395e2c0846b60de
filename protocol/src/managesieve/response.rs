//! ManageSieve responses as bytes: `OK`/`NO`/`BYE` with RFC 5804 response codes, capability
//! and LISTSCRIPTS lines, strings quoted or as literals.

use super::MAX_QUOTED;

/// RFC 5804 response codes roost sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The named script does not exist.
    NonExistent,
    /// The active script cannot be deleted.
    Active,
    /// The new name of a RENAMESCRIPT is taken.
    AlreadyExists,
    /// The user has as many scripts as allowed.
    QuotaMaxScripts,
    /// The script is larger than allowed.
    QuotaMaxSize,
    /// Plaintext authentication refused without TLS.
    EncryptNeeded,
    /// A temporary failure; try again later.
    TryLater,
    /// `NOOP`'s echo of the client's tag.
    Tag(Vec<u8>),
    /// The command succeeded, but there is something the user should know (RFC 5804 1.3).
    Warnings,
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>) {
        let word: &[u8] = match self {
            Self::NonExistent => b"NONEXISTENT",
            Self::Active => b"ACTIVE",
            Self::AlreadyExists => b"ALREADYEXISTS",
            Self::QuotaMaxScripts => b"QUOTA/MAXSCRIPTS",
            Self::QuotaMaxSize => b"QUOTA/MAXSIZE",
            Self::EncryptNeeded => b"ENCRYPT-NEEDED",
            Self::TryLater => b"TRYLATER",
            Self::Warnings => b"WARNINGS",
            Self::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                string_into(tag, out);
                return;
            }
        };
        out.extend_from_slice(word);
    }
}

/// The three kinds of final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Failure.
    No,
    /// The server closes the connection.
    Bye,
}

/// `OK|NO|BYE [(code)] ["text"]\r\n`
pub fn response(status: Status, code: Option<&Code>, text: &str) -> Vec<u8> {
    let mut out = match status {
        Status::Ok => b"OK".to_vec(),
        Status::No => b"NO".to_vec(),
        Status::Bye => b"BYE".to_vec(),
    };
    if let Some(code) = code {
        out.extend_from_slice(b" (");
        code.encode(&mut out);
        out.push(b')');
    }
    if !text.is_empty() {
        out.push(b' ');
        string_into(text.as_bytes(), &mut out);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `OK "text"\r\n`
pub fn ok(text: &str) -> Vec<u8> {
    response(Status::Ok, None, text)
}

/// `NO [(code)] "text"\r\n`
pub fn no(code: Option<&Code>, text: &str) -> Vec<u8> {
    response(Status::No, code, text)
}

/// `BYE "text"\r\n`
pub fn bye(text: &str) -> Vec<u8> {
    response(Status::Bye, None, text)
}

/// One capability line: `"NAME"` or `"NAME" "value"`.
pub fn capability(name: &str, value: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(name.as_bytes(), &mut out);
    if let Some(value) = value {
        out.push(b' ');
        string_into(value.as_bytes(), &mut out);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One LISTSCRIPTS line: `"name"` or `"name" ACTIVE`.
pub fn script_line(name: &str, active: bool) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(name.as_bytes(), &mut out);
    if active {
        out.extend_from_slice(b" ACTIVE");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A string on its own line, always as a literal (GETSCRIPT's script, SASL challenges).
pub fn literal_line(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// A string on its own line, quoted when it can be (SASL challenges).
pub fn string_line(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    string_into(bytes, &mut out);
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `bytes` as a quoted string when it is short UTF-8 text without line breaks, else
/// as a literal.
fn string_into(bytes: &[u8], out: &mut Vec<u8>) {
    let quotable = bytes.len() <= MAX_QUOTED
        && std::str::from_utf8(bytes).is_ok()
        && !bytes.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if !quotable {
        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &b in bytes {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}
