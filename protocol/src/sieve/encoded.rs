//! The `encoded-character` extension (RFC 5228 §2.4.2.4): `${hex:C3 A9}` and
//! `${unicode:e9}` in strings stand for the characters they encode. Malformed sequences are
//! left as written; well-formed ones that are not UTF-8 or not a character are errors.

/// Decodes every encoded character sequence in `text`.
pub(crate) fn decode(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        match sequence(after)? {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = after.get(used..).unwrap_or_default();
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `hex:...}` or `unicode:...}` after a `${`: the text and the bytes it used.
fn sequence(after: &str) -> Result<Option<(String, usize)>, String> {
    let Some(end) = after.find('}') else {
        return Ok(None);
    };
    let body = after.get(..end).unwrap_or_default();
    let Some((kind, list)) = body.split_once(':') else {
        return Ok(None);
    };
    let words: Vec<&str> = list.split_whitespace().collect();
    let hex = |w: &&str| !w.is_empty() && w.chars().all(|c| c.is_ascii_hexdigit());
    if !words.iter().all(hex) {
        return Ok(None);
    }
    let decoded = match kind.to_ascii_lowercase().as_str() {
        "hex" => {
            let mut bytes = Vec::new();
            for w in &words {
                if w.len() % 2 != 0 {
                    return Ok(None);
                }
                for pair in w.as_bytes().chunks(2) {
                    let pair = std::str::from_utf8(pair).unwrap_or("");
                    bytes.push(u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?);
                }
            }
            String::from_utf8(bytes).map_err(|_| format!("${{{body}}} is not UTF-8"))?
        }
        "unicode" => {
            let mut s = String::new();
            for w in &words {
                let digits = w.trim_start_matches('0');
                if digits.len() > 6 {
                    return Err(format!("${{{body}}} is not a character"));
                }
                let n = u32::from_str_radix(digits, 16).unwrap_or(0);
                s.push(char::from_u32(n).ok_or_else(|| format!("${{{body}}} is not a character"))?);
            }
            s
        }
        _ => return Ok(None),
    };
    Ok(Some((decoded, end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_characters() {
        assert_eq!(decode("${hex:40}").unwrap(), "@");
        assert_eq!(decode("a${hex: 43 3a}b").unwrap(), "aC:b");
        assert_eq!(
            decode("${unicode:40}${UNICODE:263a 20}").unwrap(),
            "@\u{263a} "
        );
        assert_eq!(
            decode("${hex:zz} ${foo} ${hex:4}").unwrap(),
            "${hex:zz} ${foo} ${hex:4}"
        );
        assert_eq!(decode("${unicode:}").unwrap(), "");
        assert!(decode("${hex:ff}").is_err());
        assert!(decode("${unicode:D800}").is_err());
        assert!(decode("${unicode:110000}").is_err());
    }
}
