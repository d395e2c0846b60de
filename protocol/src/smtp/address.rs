//! Mailbox addresses in SMTP paths (RFC 5321 4.1.2): split into local part and domain, checked
//! for what would break a header, a file name or a log line, and with source routes dropped.

/// The longest local part (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// The longest domain (RFC 5321 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;

/// An address as roost routes it: `local@domain`, or a bare local part (`postmaster`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// The local part, as the client spelled it.
    pub local: String,
    /// The domain, lowercased; `None` for a bare local part.
    pub domain: Option<String>,
}

/// Why an address was refused; becomes 501 (or 553) with this text.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Nothing before the `@`.
    #[error("Empty local part")]
    EmptyLocalPart,
    /// A part over the RFC 5321 limits.
    #[error("Address too long")]
    TooLong,
    /// Spaces, control characters, or a malformed domain.
    #[error("Invalid address syntax")]
    Syntax,
}

impl Address {
    /// Parses the text between `<` and `>` (not the null path, which callers handle).
    pub fn parse(path: &str) -> Result<Self, AddressError> {
        // "@a.example,@b.example:user@c.example": the route is ignored (RFC 5321 C).
        let mailbox = match path.strip_prefix('@') {
            Some(_) => path.split_once(':').ok_or(AddressError::Syntax)?.1,
            None => path,
        };
        if mailbox
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
        {
            return Err(AddressError::Syntax);
        }
        let (local, domain) = match mailbox.rsplit_once('@') {
            Some((local, domain)) => (local, Some(domain)),
            None => (mailbox, None),
        };
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if local.len() > MAX_LOCAL_PART {
            return Err(AddressError::TooLong);
        }
        let domain = domain.map(check_domain).transpose()?;
        Ok(Self {
            local: local.to_string(),
            domain,
        })
    }

    /// The local part lowercased, the key for alias and user lookups.
    pub fn local_key(&self) -> String {
        self.local.to_lowercase()
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{}@{d}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

fn check_domain(domain: &str) -> Result<String, AddressError> {
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    let literal = domain.starts_with('[') && domain.ends_with(']') && domain.len() > 2;
    let name_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    if literal || name_ok {
        Ok(domain.to_lowercase())
    } else {
        Err(AddressError::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_and_check() {
        let a = Address::parse("Alice@Example.COM").unwrap();
        assert_eq!(
            (a.local.as_str(), a.domain.as_deref()),
            ("Alice", Some("example.com"))
        );
        assert_eq!(a.local_key(), "alice");
        assert_eq!(a.to_string(), "Alice@example.com");
        assert_eq!(Address::parse("postmaster").unwrap().domain, None);
        assert_eq!(
            Address::parse("@relay.example:bob@b.example").unwrap(),
            Address::parse("bob@b.example").unwrap()
        );
        assert_eq!(Address::parse("jörg@bücher.example").unwrap().local, "jörg");
        assert!(Address::parse("x@[192.0.2.1]").is_ok());
        for bad in [
            "@x.example",
            "a b@c.example",
            "a@",
            "a@b..c",
            "a@-b.c",
            "a\r@b.c",
            "a@b c",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Address::parse(&format!("{}@x.example", "a".repeat(65))),
            Err(AddressError::TooLong)
        );
    }
}
