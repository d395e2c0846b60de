//! ESMTP parameters of MAIL FROM (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8).

use super::Reply;

/// The body type a client declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Body {
    /// `BODY=7BIT` or nothing.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// What MAIL FROM's parameters said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailParams {
    /// The announced message size, if any.
    pub size: Option<u64>,
    /// The declared body type.
    pub body: Body,
    /// Whether the client asked for internationalized addresses and headers.
    pub smtputf8: bool,
}

/// Parameters roost does not understand or that are malformed: 501 or 555 (RFC 5321 4.1.1.11).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    /// A known parameter with a bad value.
    #[error("Invalid {0} parameter")]
    Invalid(&'static str),
    /// A parameter this server does not implement.
    #[error("Unsupported parameter {0}")]
    Unsupported(String),
}

impl ParamError {
    /// The reply this error deserves.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Invalid(_) => Reply::new(501, "5.5.4", &self.to_string()),
            Self::Unsupported(_) => Reply::new(555, "5.5.4", &self.to_string()),
        }
    }
}

impl MailParams {
    /// Parses `SIZE=n`, `BODY=7BIT|8BITMIME` and `SMTPUTF8`, case-insensitively.
    pub fn parse(params: &[String]) -> Result<Self, ParamError> {
        let mut out = Self::default();
        for param in params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => out.size = Some(value.parse().map_err(|_| ParamError::Invalid("SIZE"))?),
                "BODY" => {
                    out.body = match value.to_ascii_uppercase().as_str() {
                        "7BIT" => Body::SevenBit,
                        "8BITMIME" => Body::EightBitMime,
                        _ => return Err(ParamError::Invalid("BODY")),
                    }
                }
                "SMTPUTF8" if value.is_empty() => out.smtputf8 = true,
                _ => {
                    return Err(ParamError::Unsupported(
                        key.chars().take(32).collect::<String>(),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The parameters to repeat when relaying the message onwards.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(size) = self.size {
            out.push_str(&format!(" SIZE={size}"));
        }
        if self.body == Body::EightBitMime {
            out.push_str(" BODY=8BITMIME");
        }
        if self.smtputf8 {
            out.push_str(" SMTPUTF8");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Result<MailParams, ParamError> {
        MailParams::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn params_parse_and_refuse() {
        let ok = p(&["size=100", "BODY=8bitmime", "SMTPUTF8"]).unwrap();
        assert_eq!(ok.size, Some(100));
        assert_eq!(ok.body, Body::EightBitMime);
        assert!(ok.smtputf8);
        assert_eq!(ok.encode(), " SIZE=100 BODY=8BITMIME SMTPUTF8");
        assert_eq!(p(&["SIZE=x"]).unwrap_err().reply().code, 501);
        assert_eq!(p(&["BODY=BINARYMIME"]).unwrap_err().reply().code, 501);
        assert_eq!(p(&["RET=FULL"]).unwrap_err().reply().code, 555);
    }
}
