//! The client side of SMTP, for relaying to a smarthost: reading a server's (possibly
//! multi-line) reply, and what an EHLO reply offers.

/// A reply from a server, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// The three-digit code.
    pub code: u16,
    /// The text of every line, without code and separator.
    pub lines: Vec<String>,
}

impl ServerReply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Code and text on one line, for logs and bounces.
    pub fn summary(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }

    /// Whether an EHLO reply lists an extension keyword (the first word of a line after the
    /// greeting line), case-insensitively.
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_ascii_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

/// A line that is not `NNN text` / `NNN-text`, or a multi-line reply whose codes disagree.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("malformed reply line from the server: {0:?}")]
pub struct ReplyError(pub String);

/// Collects reply lines until the last one (`NNN ` or a bare `NNN`).
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyDecoder {
    /// A decoder waiting for the first line of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (without CRLF); returns the reply when it was the last.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<ServerReply>, ReplyError> {
        let text = String::from_utf8_lossy(line);
        let bad = || ReplyError(text.chars().take(80).collect());
        let code: u16 = text
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        if self.code.is_some_and(|c| c != code) {
            return Err(bad());
        }
        self.code = Some(code);
        let (last, rest) = match text.as_bytes().get(3) {
            None => (true, ""),
            Some(b' ') => (true, &text[4..]),
            Some(b'-') => (false, &text[4..]),
            Some(_) => return Err(bad()),
        };
        self.lines.push(rest.to_string());
        if !last {
            return Ok(None);
        }
        self.code = None;
        Ok(Some(ServerReply {
            code,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_and_extensions() {
        let mut d = ReplyDecoder::new();
        assert_eq!(d.line(b"250-mx.example greets you").unwrap(), None);
        assert_eq!(d.line(b"250-SIZE 1000").unwrap(), None);
        let r = d.line(b"250 8BITMIME").unwrap().unwrap();
        assert!(r.is_positive() && r.has_extension("8bitmime") && r.has_extension("SIZE"));
        assert!(!r.has_extension("mx.example"));
        let r = d.line(b"554").unwrap().unwrap();
        assert!(r.is_permanent());
        assert_eq!(r.summary(), "554 ");
        assert!(d.line(b"25x hi").is_err());
        assert!(d.line(b"250-a").unwrap().is_none());
        assert!(d.line(b"251 b").is_err());
    }
}
