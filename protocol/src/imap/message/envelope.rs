//! ENVELOPE (RFC 3501 7.4.2): the header fields a client lists messages by, addresses parsed.

use mail_parser::{Addr, Address, HeaderName, HeaderValue, MessagePart};

use super::raw_header;
use crate::imap::strings::{push_nstring, push_string};

/// Appends the ENVELOPE of the message whose top part is `part`.
pub(super) fn envelope(out: &mut Vec<u8>, raw: &[u8], part: &MessagePart<'_>) {
    out.push(b'(');
    for name in ["Date", "Subject"] {
        push_nstring(out, raw_header(raw, part, name).as_deref());
        out.push(b' ');
    }
    let from = addresses(part, &HeaderName::From);
    for (i, header) in [
        HeaderName::From,
        HeaderName::Sender,
        HeaderName::ReplyTo,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
    ]
    .iter()
    .enumerate()
    {
        let list = addresses(part, header);
        // RFC 3501: Sender and Reply-To default to From.
        let list = if list.is_none() && (i == 1 || i == 2) {
            from
        } else {
            list
        };
        push_address_list(out, list);
        out.push(b' ');
    }
    push_nstring(out, raw_header(raw, part, "In-Reply-To").as_deref());
    out.push(b' ');
    push_nstring(out, raw_header(raw, part, "Message-ID").as_deref());
    out.push(b')');
}

fn addresses<'a, 'm>(part: &'a MessagePart<'m>, name: &HeaderName<'_>) -> Option<&'a Address<'m>> {
    part.headers
        .iter()
        .find(|h| &h.name == name)
        .and_then(|h| match &h.value {
            HeaderValue::Address(a) => Some(a),
            _ => None,
        })
}

fn push_address_list(out: &mut Vec<u8>, list: Option<&Address<'_>>) {
    let mut items = Vec::new();
    match list {
        Some(Address::List(addrs)) => {
            for a in addrs {
                push_address(&mut items, a);
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                let named = g.name.is_some();
                if named {
                    items.extend_from_slice(b"(NIL NIL ");
                    push_nstring(&mut items, g.name.as_deref().map(str::as_bytes));
                    items.extend_from_slice(b" NIL)");
                }
                for a in &g.addresses {
                    push_address(&mut items, a);
                }
                if named {
                    items.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&items);
        out.push(b')');
    }
}

/// `(name adl mailbox host)`; a non-ASCII display name goes out as an RFC 2047 word, as the
/// header had it before the parser decoded it.
fn push_address(out: &mut Vec<u8>, addr: &Addr<'_>) {
    let Some(address) = addr.address.as_deref() else {
        return;
    };
    out.push(b'(');
    match addr.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) if name.is_ascii() => push_string(out, name.as_bytes()),
        Some(name) => push_string(out, encoded_word(name).as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let (adl, address) = source_route(address);
    push_nstring(out, adl.map(str::as_bytes));
    out.push(b' ');
    let (mailbox, host) = match address.rsplit_once('@') {
        Some((m, h)) => (m, Some(h)),
        None => (address, None),
    };
    push_string(out, mailbox.as_bytes());
    out.push(b' ');
    push_nstring(out, host.map(str::as_bytes));
    out.push(b')');
}

/// Splits an obsolete source route off an address (RFC 5322 4.4 obs-route, kept by the
/// parser inside the address): `@a,@b:user@host` is the route `@a,@b` and `user@host`.
fn source_route(address: &str) -> (Option<&str>, &str) {
    match address.split_once(':') {
        Some((route, rest)) if route.starts_with('@') && !rest.is_empty() => {
            (Some(route.trim()), rest.trim())
        }
        _ => (None, address),
    }
}

fn encoded_word(text: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("=?utf-8?b?{b64}?=")
}
