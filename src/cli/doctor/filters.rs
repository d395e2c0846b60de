//! The spam scanner, asked for real: a GTUBE test message must come back scored as spam. A
//! scanner that does not answer is a failure when `on_failure = "tempfail"` (every scanned
//! message would be deferred), a warning when mail passes unscanned.

use super::{Finding, Level};
use crate::config::spam::SpamConfig;
use crate::config::Config;
use crate::filter::spam::{scan, ScanEnvelope};

/// SpamAssassin's and rspamd's Generic Test for Unsolicited Bulk Email.
const GTUBE: &str = "Subject: roost doctor\r\nFrom: <doctor@localhost>\r\n\r\n\
    XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

/// Asks the configured scanner about GTUBE.
pub fn spam_scanner(config: &Config) -> Vec<Finding> {
    let Some(spam) = &config.spam else {
        return Vec::new();
    };
    let subject = format!("spam scanner {}", spam.address);
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(scan(spam, GTUBE.as_bytes(), &ScanEnvelope::default()))
                .map_err(|e| e.to_string())
        });
    vec![match asked {
        Ok(verdict) if verdict.is_spam => Finding::new(
            Level::Ok,
            subject,
            format!("answers; GTUBE scored {:.1} (spam)", verdict.score),
        ),
        Ok(verdict) => Finding::new(
            Level::Warn,
            subject,
            format!(
                "answers, but GTUBE scored {:.1}, not spam: are its rules installed?",
                verdict.score
            ),
        ),
        Err(e) => unreachable_scanner(spam, subject, &e),
    }]
}

fn unreachable_scanner(spam: &SpamConfig, subject: String, why: &str) -> Finding {
    match spam.accept_on_failure {
        true => Finding::new(
            Level::Warn,
            subject,
            format!("{why}: mail passes unscanned until it answers (on_failure = \"accept\")"),
        ),
        false => Finding::new(
            Level::Fail,
            subject,
            format!("{why}: port 25 and LMTP mail is deferred (451) until it answers; start it, or set [spam] on_failure = \"accept\""),
        ),
    }
}
