//! Addresses as Sieve sees them: the parts `:all` `:localpart` `:domain` and, with
//! subaddress (RFC 5233), `:user` and `:detail`; the addresses of a header; a plain check of
//! a `redirect` target.

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};

use super::ir::AddrPart;

/// The subaddress separator (`user+detail@domain`).
pub(crate) const SEPARATOR: char = '+';

/// Splits a plain mailbox (`local@domain`, optionally in angle brackets) into its local part
/// and domain; `None` if it is not one.
pub(crate) fn mailbox(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    let text = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text);
    let (local, domain) = text.rsplit_once('@')?;
    let bad_local = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\".contains(c);
    let good_domain = |c: char| c.is_alphanumeric() || ".-[]:_".contains(c);
    let ok = !local.is_empty()
        && local.len() <= 64
        && !local.chars().any(bad_local)
        && !domain.is_empty()
        && domain.len() <= 255
        && domain.chars().all(good_domain);
    ok.then_some((local, domain))
}

/// One part of an address; `None` when it has no such part (`:detail` without a `+`).
pub(crate) fn part(address: &str, part: AddrPart) -> Option<String> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (address, ""),
    };
    let value = match part {
        AddrPart::All => address,
        AddrPart::LocalPart => local,
        AddrPart::Domain => domain,
        AddrPart::User => local.split_once(SEPARATOR).map_or(local, |(u, _)| u),
        AddrPart::Detail => local.split_once(SEPARATOR)?.1,
    };
    Some(value.to_string())
}

/// The addresses in a raw header value (groups flattened; display names dropped).
pub(crate) fn in_header(raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |a: &mail_parser::Addr<'_>| {
        if let Some(addr) = &a.address {
            out.push(addr.to_string());
        }
    };
    let mut value = raw.to_vec();
    if !value.ends_with(b"\n") {
        value.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&value).parse_address() {
        HeaderValue::Address(Address::List(list)) => list.iter().for_each(&mut push),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .for_each(&mut push),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_an_address() {
        let a = "ken+sieve@example.org";
        assert_eq!(part(a, AddrPart::LocalPart).as_deref(), Some("ken+sieve"));
        assert_eq!(part(a, AddrPart::User).as_deref(), Some("ken"));
        assert_eq!(part(a, AddrPart::Detail).as_deref(), Some("sieve"));
        assert_eq!(part("ken@example.org", AddrPart::Detail), None);
        assert_eq!(part(a, AddrPart::Domain).as_deref(), Some("example.org"));
        assert!(mailbox("a@b.example").is_some());
        assert!(mailbox("a b@c").is_none());
        assert!(mailbox("nobody").is_none());
        let list = in_header(b" \"Ken\" <ken@example.org>, bob@example.com\r\n");
        assert_eq!(list, ["ken@example.org", "bob@example.com"]);
        assert_eq!(in_header(b"Ken <ken@example.org>"), ["ken@example.org"]);
        assert_eq!(in_header(b"ken@example.org"), ["ken@example.org"]);
    }
}
