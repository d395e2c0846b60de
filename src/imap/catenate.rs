//! CATENATE (RFC 4469): a message APPENDed from parts, `TEXT` sent with the command and `URL`s
//! naming messages or body parts already in the user's mailboxes (RFC 5092 IMAP URLs:
//! `/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=1.2`, or `imap://user@host/...` of the same user).
//! No URLAUTH: a URL reaches only the mailboxes of the user who sends it. A URL that cannot be
//! followed is `NO [BADURL "url"]`; a message larger than the session's literal limit is
//! `NO [TOOBIG]`.

use roost_protocol::imap::message::{SectionText, Structure};
use roost_protocol::imap::multiappend::CatPart;
use roost_storage::{SharedMailbox, Uid};

use super::message::whole_message_of;
use super::state::Account;

/// Why a CATENATE message could not be put together.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This URL names nothing this user can read (RFC 4469 BADURL).
    BadUrl(String),
    /// The message would be larger than the session accepts (TOOBIG).
    TooBig,
}

/// The message the parts make, at most `limit` bytes.
pub fn assemble(
    account: &Account<'_>,
    parts: &[CatPart],
    limit: usize,
) -> Result<Vec<u8>, Refusal> {
    let mut message = Vec::new();
    for part in parts {
        match part {
            CatPart::Text(text) => message.extend_from_slice(text),
            CatPart::Url(url) => {
                let bytes = follow(account, url, limit.saturating_sub(message.len()))
                    .ok_or_else(|| Refusal::BadUrl(url.clone()))?;
                message.extend_from_slice(&bytes?);
            }
        }
        if message.len() > limit {
            return Err(Refusal::TooBig);
        }
    }
    Ok(message)
}

/// What a URL names; `None` when it names nothing (BADURL), `Some(Err)` when it is too big.
fn follow(account: &Account<'_>, url: &str, room: usize) -> Option<Result<Vec<u8>, Refusal>> {
    let target = Target::parse(url, account.name())?;
    let shared = SharedMailbox::open(&account.store, &target.mailbox).ok()?;
    if target
        .uidvalidity
        .is_some_and(|v| v != shared.uidvalidity())
    {
        return None;
    }
    let mut mailbox = shared.mailbox();
    // A whole message the room cannot hold is refused before it is read (its size is cached).
    if target.section.is_none() && mailbox.crlf_size(target.uid).ok()? > room as u64 {
        return Some(Err(Refusal::TooBig));
    }
    let whole = whole_message_of(&mut *mailbox, target.uid).ok()?;
    drop(mailbox);
    let Some((path, text)) = &target.section else {
        return Some(Ok(whole));
    };
    let range = Structure::parse(&whole).section(path, *text)?;
    Some(Ok(whole.get(range)?.to_vec()))
}

/// An IMAP URL, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    mailbox: String,
    uidvalidity: Option<u32>,
    uid: Uid,
    section: Option<(Vec<u32>, SectionText)>,
}

impl Target {
    /// Reads `[imap://user@host]/mailbox[;UIDVALIDITY=n]/;UID=m[/;SECTION=s]`; a URL of
    /// another user, or in any other form, is `None`.
    fn parse(url: &str, user: &str) -> Option<Self> {
        let path = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("imap://") => {
                let rest = &url[7..];
                let slash = rest.find('/')?;
                let authority = &rest[..slash];
                let (who, _host) = authority.rsplit_once('@')?;
                let who = who.split(';').next()?;
                if percent_decode(who)? != user {
                    return None;
                }
                &rest[slash..]
            }
            _ => url,
        };
        let path = path.strip_prefix('/')?;
        let mut pieces = path.split("/;");
        let first = pieces.next().filter(|p| !p.is_empty())?;
        let (mailbox, validity) = match first.split_once(';') {
            Some((name, param)) => (name, Some(param)),
            None => (first, None),
        };
        let uidvalidity = match validity {
            Some(param) => Some(param_value(param, "UIDVALIDITY")?.parse().ok()?),
            None => None,
        };
        let uid: Uid = param_value(pieces.next()?, "UID")?.parse().ok()?;
        let section = match pieces.next() {
            Some(param) => Some(section(&percent_decode(param_value(param, "SECTION")?)?)?),
            None => None,
        };
        if pieces.next().is_some() || uid == 0 {
            return None;
        }
        Some(Self {
            mailbox: percent_decode(mailbox)?,
            uidvalidity,
            uid,
            section,
        })
    }
}

/// The value of `NAME=value`, the name in any case.
fn param_value<'a>(param: &'a str, name: &str) -> Option<&'a str> {
    let (key, value) = param.split_once('=')?;
    key.eq_ignore_ascii_case(name).then_some(value)
}

/// `1.2`, `1.2.HEADER`, `TEXT`, `2.MIME` … as part numbers and what of the part.
fn section(text: &str) -> Option<(Vec<u32>, SectionText)> {
    let mut path = Vec::new();
    let mut kind = SectionText::Content;
    for (i, piece) in text.split('.').enumerate() {
        if let Ok(n) = piece.parse::<u32>() {
            if kind != SectionText::Content || n == 0 || path.len() != i {
                return None;
            }
            path.push(n);
            continue;
        }
        kind = match piece.to_ascii_uppercase().as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !path.is_empty() => SectionText::Mime,
            _ => return None,
        };
        if i + 1 != text.split('.').count() {
            return None;
        }
    }
    Some((path, kind))
}

/// `%XX` escapes decoded (RFC 3986); `None` for a broken escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Option<Target> {
        Target::parse(url, "alice")
    }

    #[test]
    fn urls_of_the_same_user_are_read() {
        assert_eq!(
            target("/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2.MIME"),
            Some(Target {
                mailbox: "INBOX".into(),
                uidvalidity: Some(385759045),
                uid: 20,
                section: Some((vec![1, 2], SectionText::Mime)),
            })
        );
        assert_eq!(
            target("imap://alice@mail.example/Drafts%20Old/;UID=3/;section=HEADER"),
            Some(Target {
                mailbox: "Drafts Old".into(),
                uidvalidity: None,
                uid: 3,
                section: Some((vec![], SectionText::Header)),
            })
        );
        assert_eq!(target("/INBOX/;UID=7").map(|t| t.section), Some(None));
    }

    #[test]
    fn other_users_and_broken_urls_are_refused() {
        for url in [
            "imap://bob@mail.example/INBOX/;UID=1",
            "imap://mail.example/INBOX/;UID=1",
            "INBOX/;UID=1",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX;UIDVALIDITY=z/;UID=1",
            "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)",
            "/INBOX/;UID=1/;SECTION=1.0",
            "/INBOX/;UID=1/;SECTION=TEXT.1",
            "/INBOX/;UID=1/;SECTION=MIME",
            "/INBOX/;UID=1/;URLAUTH=anonymous",
            "/IN%ZZBOX/;UID=1",
            "/",
        ] {
            assert_eq!(target(url), None, "{url}");
        }
    }
}
