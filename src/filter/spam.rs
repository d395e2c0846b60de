//! The content scanner in the delivery path: SpamAssassin's `spamd` (spamc protocol 1.5) or
//! rspamd (HTTP `checkv2`), asked once per message, before any filter runs. The verdict becomes
//! header fields on top of the message (`X-Spam-Flag`, `X-Spam-Status`, and `X-Spam-Score` or
//! `X-Spamd-Result`); fields of those names the sender wrote are dropped, so nobody can
//! pretend to have been scanned.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::spam::{ScannerAddress, ScannerKind, SpamConfig};

/// The most of a scanner's answer read (spamd's symbol list, rspamd's JSON).
const MAX_ANSWER: u64 = 256 * 1024;

/// The scanner's opinion of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the scanner calls it spam.
    pub is_spam: bool,
    /// Its score.
    pub score: f64,
    /// The score from which it calls mail spam.
    pub required: f64,
    /// The rules that matched.
    pub tests: Vec<String>,
    /// rspamd's action (`no action`, `add header`, `reject`, ...); `None` for spamd.
    pub action: Option<String>,
}

/// Why a message could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Connecting, writing or reading failed.
    #[error("spam scanner unreachable: {0}")]
    Io(#[from] std::io::Error),
    /// It took longer than `[spam] timeout_secs`.
    #[error("spam scanner did not answer within {0:?}")]
    Timeout(Duration),
    /// It answered something this client does not understand.
    #[error("spam scanner answered {0}")]
    Protocol(String),
}

/// What the scanner is told about the message besides its text.
#[derive(Debug, Clone, Default)]
pub struct ScanEnvelope {
    /// The envelope sender, empty for `<>`.
    pub from: String,
    /// The recipients.
    pub rcpts: Vec<String>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's HELO name.
    pub helo: Option<String>,
    /// The queue id.
    pub id: String,
}

/// Asks the configured scanner about `message` (the whole message as it will be stored).
pub async fn scan(
    config: &SpamConfig,
    message: &[u8],
    envelope: &ScanEnvelope,
) -> Result<Verdict, ScanError> {
    let ask = async {
        match &config.address {
            ScannerAddress::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str()).await?;
                converse(config, stream, message, envelope).await
            }
            ScannerAddress::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                converse(config, stream, message, envelope).await
            }
        }
    };
    tokio::time::timeout(config.timeout, ask)
        .await
        .map_err(|_| ScanError::Timeout(config.timeout))?
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    config: &SpamConfig,
    mut stream: S,
    message: &[u8],
    envelope: &ScanEnvelope,
) -> Result<Verdict, ScanError> {
    let head = match config.kind {
        ScannerKind::Spamd => spamd_request(message.len()),
        ScannerKind::Rspamd => rspamd_request(message.len(), envelope),
    };
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(message).await?;
    stream.flush().await?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await?;
    let answer = String::from_utf8_lossy(&answer);
    match config.kind {
        ScannerKind::Spamd => parse_spamd(&answer),
        ScannerKind::Rspamd => parse_rspamd(&answer),
    }
}

fn spamd_request(len: usize) -> String {
    format!("SYMBOLS SPAMC/1.5\r\nContent-length: {len}\r\n\r\n")
}

/// Envelope facts go in request headers; a value with a line break is left out.
fn rspamd_request(len: usize, envelope: &ScanEnvelope) -> String {
    let mut head = format!("POST /checkv2 HTTP/1.0\r\nContent-Length: {len}\r\n");
    let clean = |v: &str| !v.contains(['\r', '\n']);
    let mut field = |name: &str, value: &str| {
        if clean(value) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    };
    field("From", &envelope.from);
    for rcpt in &envelope.rcpts {
        field("Rcpt", rcpt);
    }
    if let Some(ip) = &envelope.ip {
        field("IP", ip);
    }
    if let Some(helo) = &envelope.helo {
        field("Helo", helo);
    }
    field("Queue-Id", &envelope.id);
    head.push_str("\r\n");
    head
}

/// `SPAMD/1.1 0 EX_OK`, headers with `Spam: True ; 1000.0 / 5.0`, a blank line, the symbols.
fn parse_spamd(answer: &str) -> Result<Verdict, ScanError> {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("SPAMD/") || status.split_whitespace().nth(1) != Some("0") {
        return Err(ScanError::Protocol(format!("{status:?}")));
    }
    let spam_line = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("Spam"))
        .map(|(_, value)| value.trim())
        .ok_or_else(|| ScanError::Protocol("no Spam: line".into()))?;
    let bad = || ScanError::Protocol(format!("Spam: {spam_line:?}"));
    let (flag, scores) = spam_line.split_once(';').ok_or_else(bad)?;
    let (score, required) = scores.split_once('/').ok_or_else(bad)?;
    let tests = body
        .split([',', '\r', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Verdict {
        is_spam: matches!(flag.trim().to_ascii_lowercase().as_str(), "true" | "yes"),
        score: score.trim().parse().map_err(|_| bad())?,
        required: required.trim().parse().map_err(|_| bad())?,
        tests,
        action: None,
    })
}

/// `HTTP/1.x 200`, headers, a blank line, then the JSON result.
fn parse_rspamd(answer: &str) -> Result<Verdict, ScanError> {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| ScanError::Protocol("no HTTP header".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(ScanError::Protocol(format!("{status:?}")));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        score: f64,
        required_score: f64,
        action: String,
        #[serde(default)]
        symbols: std::collections::BTreeMap<String, serde_json::Value>,
    }
    let parsed: Answer =
        serde_json::from_str(body).map_err(|e| ScanError::Protocol(format!("bad JSON: {e}")))?;
    let is_spam = matches!(
        parsed.action.as_str(),
        "reject" | "add header" | "rewrite subject"
    );
    Ok(Verdict {
        is_spam,
        score: parsed.score,
        required: parsed.required_score,
        tests: parsed.symbols.into_keys().collect(),
        action: Some(parsed.action),
    })
}

impl Verdict {
    /// The header fields that carry the verdict, CRLF-terminated.
    pub fn header_fields(&self) -> String {
        let yes_no = if self.is_spam { "Yes" } else { "No" };
        let tests = self.tests.join(",");
        let mut out = String::new();
        if self.is_spam {
            out.push_str("X-Spam-Flag: YES\r\n");
        }
        let status = format!(
            "X-Spam-Status: {yes_no}, score={:.1} required={:.1} tests=",
            self.score, self.required
        );
        let folded = fold_list(&tests, status.len());
        out.push_str(&format!("{status}{folded}\r\n"));
        match &self.action {
            None => out.push_str(&format!("X-Spam-Score: {:.1}\r\n", self.score)),
            Some(action) => out.push_str(&format!(
                "X-Spamd-Result: default: {} [{:.2} / {:.2}]; action={action}\r\n",
                if self.is_spam { "True" } else { "False" },
                self.score,
                self.required
            )),
        }
        out
    }
}

/// A comma list folded so no header line passes 78 characters, the first line already
/// holding `start` characters.
fn fold_list(list: &str, start: usize) -> String {
    let mut out = String::new();
    let mut width = start;
    for (i, item) in list.split(',').filter(|s| !s.is_empty()).enumerate() {
        if i > 0 {
            out.push(',');
            width += 1;
            if width + item.len() > 77 {
                out.push_str("\r\n\t");
                width = 8;
            }
        }
        out.push_str(item);
        width += item.len();
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// Whether a header field name is one the scanner's verdict owns.
fn is_verdict_field(line: &[u8]) -> bool {
    let name = line.split(|&b| b == b':').next().unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    lower.starts_with(b"x-spam-") || lower.starts_with(b"x-spamd-") || lower == b"x-spam"
}

/// The longest header line filtered; past it the rest is copied as it is.
const MAX_FILTERED_LINE: u64 = 64 * 1024;

/// Copies `message` to `out` with `fields` on top and the sender's own verdict fields (with
/// their continuation lines) left out of the header; the body is copied unchanged.
pub fn rewrite(fields: &str, message: &mut dyn Read, out: &mut dyn Write) -> std::io::Result<u64> {
    out.write_all(fields.as_bytes())?;
    let mut reader = BufReader::with_capacity(64 * 1024, message);
    let mut line = Vec::new();
    let mut skipping = false;
    let mut written = fields.len() as u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_FILTERED_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(written);
        }
        let end_of_header = line == b"\r\n" || line == b"\n";
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = !end_of_header && is_verdict_field(&line);
        }
        if !skipping {
            out.write_all(&line)?;
            written += n as u64;
        }
        if end_of_header || !line.ends_with(b"\n") {
            break;
        }
    }
    let rest = std::io::copy(&mut reader, out)?;
    Ok(written + rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spamd_answers_are_read() {
        let answer = "SPAMD/1.1 0 EX_OK\r\nContent-length: 13\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED";
        let v = parse_spamd(answer).unwrap();
        assert!(v.is_spam);
        assert_eq!((v.score, v.required), (1000.0, 5.0));
        assert_eq!(v.tests, ["GTUBE", "NO_RECEIVED"]);
        let ham = parse_spamd("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n").unwrap();
        assert!(!ham.is_spam && ham.tests.is_empty());
        for bad in [
            "",
            "SPAMD/1.1 76 EX_PROTOCOL\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: x\r\n\r\n",
        ] {
            assert!(parse_spamd(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rspamd_answers_are_read() {
        let answer = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"score\":16.5,\"required_score\":15.0,\"action\":\"reject\",\"symbols\":{\"GTUBE\":{\"score\":0}}}";
        let v = parse_rspamd(answer).unwrap();
        assert!(v.is_spam);
        assert_eq!(v.tests, ["GTUBE"]);
        assert!(v
            .header_fields()
            .contains("X-Spamd-Result: default: True [16.50 / 15.00]"));
        assert!(parse_rspamd("HTTP/1.0 500 Oops\r\n\r\n{}").is_err());
    }

    #[test]
    fn the_verdict_goes_on_top_and_the_senders_own_is_dropped() {
        let message = b"Received: by x\r\nX-Spam-Flag: YES\r\nX-Spam-Status: No,\r\n\tfolded\r\nSubject: hi\r\n\r\nX-Spam-Flag: body text\r\n";
        let mut out = Vec::new();
        let n = rewrite("X-Spam-Status: No\r\n", &mut &message[..], &mut out).unwrap();
        assert_eq!(n as usize, out.len());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-Spam-Status: No\r\nReceived: by x\r\nSubject: hi\r\n\r\nX-Spam-Flag: body text\r\n"
        );
    }

    #[test]
    fn long_test_lists_are_folded() {
        let v = Verdict {
            is_spam: false,
            score: 1.0,
            required: 5.0,
            tests: (0..30).map(|i| format!("SOME_LONG_RULE_{i}")).collect(),
            action: None,
        };
        assert!(v.header_fields().lines().all(|l| l.len() <= 78));
    }
}
