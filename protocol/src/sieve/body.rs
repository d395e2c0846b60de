//! The `body` test's values (RFC 5173): the raw body, or the decoded text of the MIME parts
//! whose content type matches (`:text` is `:content "text"`).

use mail_parser::{MimeHeaders, PartType};

use super::ir::BodyTransform;
use super::message::Mail;

/// Whether a part of type `ctype/subtype` is one of `wanted` (`""` = any, `type`, `type/sub`).
fn wanted_type(wanted: &[String], ctype: &str, subtype: &str) -> bool {
    wanted.iter().any(|w| {
        let w = w.trim();
        match w.split_once('/') {
            None => w.is_empty() || w.eq_ignore_ascii_case(ctype),
            Some((t, s)) => t.eq_ignore_ascii_case(ctype) && s.eq_ignore_ascii_case(subtype),
        }
    })
}

/// The strings a `body` test compares.
pub(crate) fn values(mail: &Mail<'_>, transform: &BodyTransform) -> Vec<String> {
    let wanted = match transform {
        BodyTransform::Raw => return vec![mail.raw_body()],
        BodyTransform::Text => vec!["text".to_string()],
        BodyTransform::Content(types) => types.clone(),
    };
    let Some(message) = mail.parsed() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in &message.parts {
        let (ctype, subtype) = match part.content_type() {
            Some(ct) => (
                ct.c_type.to_string(),
                ct.c_subtype.as_deref().unwrap_or("").to_string(),
            ),
            None => ("text".to_string(), "plain".to_string()),
        };
        if !wanted_type(&wanted, &ctype, &subtype) {
            continue;
        }
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => out.push(t.to_string()),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                out.push(String::from_utf8_lossy(b).into_owned())
            }
            PartType::Message(_) | PartType::Multipart(_) => {}
        }
    }
    out
}
