//! Modified UTF-7 (RFC 3501 5.1.3), the form IMAP4rev1 mailbox names take on the wire and roost
//! keeps on disk (as Dovecot does), and its conversion to and from UTF-8 for clients that enabled
//! UTF8=ACCEPT or IMAP4rev2 (RFC 6855, RFC 9051).

use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::{alphabet, Engine};

const ENGINE: GeneralPurpose = GeneralPurpose::new(&alphabet::IMAP_MUTF7, NO_PAD);

/// A name that is not valid modified UTF-7.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not valid modified UTF-7")]
pub struct Invalid;

/// UTF-8 → modified UTF-7: printable ASCII stays, `&` becomes `&-`, the rest goes as base64 of
/// UTF-16 between `&` and `-`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&ENGINE.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Modified UTF-7 → UTF-8.
pub fn decode(name: &str) -> Result<String, Invalid> {
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Invalid);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('-').ok_or(Invalid)?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).map_err(|_| Invalid)?;
            if bytes.len() % 2 != 0 {
                return Err(Invalid);
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).map_err(|_| Invalid)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.chars().any(|c| c.is_control()) {
        return Err(Invalid);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_3501_examples() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(decode("Entw&APw-rfe").unwrap(), "Entwürfe");
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode("&2D3eAA-").unwrap(), "😀");
        assert!(decode("&AGE").is_err());
        assert!(decode("&A-").is_err());
        assert!(
            decode("Entwürfe").is_err(),
            "raw UTF-8 is not modified UTF-7"
        );
    }
}
