//! `[spam]`: the content scanner every message passes before the filters, SpamAssassin's
//! `spamd` or `rspamd`, and what to do when it is down or the score is high.
//!
//! ```toml
//! [spam]
//! scanner = "spamd"               # or "rspamd"
//! address = "127.0.0.1:783"       # spamd: host:port or a unix socket path;
//!                                 # rspamd: host:port of its normal worker (11333)
//! timeout_secs = 30
//! on_failure = "tempfail"         # or "accept": deliver unscanned when the scanner is away
//! reject_score = 15.0             # port 25 only: refuse (550 5.7.1) at or above this score
//! max_size = 2097152              # larger messages pass unscanned, as spamc's -s does
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::validate::Checker;

/// `[spam]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpam {
    pub scanner: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub timeout_secs: Option<Spanned<u64>>,
    pub on_failure: Option<Spanned<String>>,
    pub reject_score: Option<Spanned<f64>>,
    pub max_size: Option<Spanned<u64>>,
}

/// Which scanner, and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerKind {
    /// SpamAssassin's `spamd` (the spamc protocol).
    Spamd,
    /// rspamd's HTTP `checkv2` API.
    Rspamd,
}

/// Where the scanner listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerAddress {
    /// `host:port`.
    Tcp(String),
    /// A unix socket path (spamd's `--socketpath`).
    Unix(PathBuf),
}

impl std::fmt::Display for ScannerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => f.write_str(addr),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `[spam]`, validated.
#[derive(Debug, Clone)]
pub struct SpamConfig {
    /// The scanner.
    pub kind: ScannerKind,
    /// Its address.
    pub address: ScannerAddress,
    /// How long one scan may take.
    pub timeout: Duration,
    /// Deliver unscanned (`true`) or answer "try again later" (`false`) when the scanner
    /// cannot be asked.
    pub accept_on_failure: bool,
    /// At or above this score, mail on port 25 is refused during the SMTP dialogue.
    pub reject_score: Option<f64>,
    /// Larger messages are not scanned.
    pub max_size: u64,
}

/// Validates `[spam]`; `None` when no scanner is configured.
pub(super) fn spam(c: &mut Checker<'_>, raw: &RawSpam) -> Option<SpamConfig> {
    let scanner = raw.scanner.as_ref()?;
    let kind = match scanner.get_ref().as_str() {
        "spamd" => ScannerKind::Spamd,
        "rspamd" => ScannerKind::Rspamd,
        _ => {
            c.at(scanner, "spam.scanner", "must be \"spamd\" or \"rspamd\"");
            return None;
        }
    };
    let address = match (&raw.address, &kind) {
        (Some(a), _) if a.get_ref().starts_with('/') => ScannerAddress::Unix(a.get_ref().into()),
        (Some(a), _)
            if a.get_ref()
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
        {
            ScannerAddress::Tcp(a.get_ref().clone())
        }
        (Some(a), _) => {
            let text = "must be host:port or the absolute path of a unix socket";
            c.at(a, "spam.address", text);
            return None;
        }
        (None, ScannerKind::Spamd) => ScannerAddress::Tcp("127.0.0.1:783".into()),
        (None, ScannerKind::Rspamd) => ScannerAddress::Tcp("127.0.0.1:11333".into()),
    };
    let accept_on_failure = match raw.on_failure.as_ref() {
        None => false,
        Some(v) if v.get_ref() == "tempfail" => false,
        Some(v) if v.get_ref() == "accept" => true,
        Some(v) => {
            c.at(v, "spam.on_failure", "must be \"tempfail\" or \"accept\"");
            false
        }
    };
    let reject_score = raw.reject_score.as_ref().and_then(|s| {
        let ok = s.get_ref().is_finite();
        if !ok {
            c.at(s, "spam.reject_score", "must be a number");
        }
        ok.then(|| *s.get_ref())
    });
    let secs = raw
        .timeout_secs
        .as_ref()
        .map_or(30, |s| *s.get_ref())
        .max(1);
    Some(SpamConfig {
        kind,
        address,
        timeout: Duration::from_secs(secs),
        accept_on_failure,
        reject_score,
        max_size: raw
            .max_size
            .as_ref()
            .map_or(2 * 1024 * 1024, |s| *s.get_ref()),
    })
}
