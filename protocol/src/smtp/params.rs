//! ESMTP parameters of MAIL FROM (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461
//! RET and ENVID) and of RCPT TO (RFC 3461 NOTIFY and ORCPT), with the xtext they are written in.

use super::Reply;

/// The longest ENVID accepted (RFC 3461 4.4: 100 characters).
const MAX_ENVID: usize = 100;
/// The longest ORCPT accepted (RFC 3461 4.2: 500 characters).
const MAX_ORCPT: usize = 500;

/// What a failure DSN returns of the message (RFC 3461 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: the header only.
    Hdrs,
}

impl Ret {
    /// The keyword, as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Hdrs => "HDRS",
        }
    }

    /// Parses `FULL` or `HDRS`, case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "FULL" => Some(Self::Full),
            "HDRS" => Some(Self::Hdrs),
            _ => None,
        }
    }
}

impl std::fmt::Display for Ret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Ret {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Self, ParamError> {
        Self::parse(s).ok_or(ParamError::Bad("RET", "expected FULL or HDRS"))
    }
}

impl std::str::FromStr for Notify {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Self, ParamError> {
        Self::parse(s)
    }
}

/// When the sender wants a DSN for one recipient (RFC 3461 4.1); all false is `NEVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    /// On delivery (or relay to a server without DSN).
    pub success: bool,
    /// On failure.
    pub failure: bool,
    /// On delay.
    pub delay: bool,
}

impl Notify {
    /// Parses `NEVER` or a comma list of `SUCCESS`, `FAILURE`, `DELAY`.
    pub fn parse(value: &str) -> Result<Self, ParamError> {
        let bad = |why| ParamError::Bad("NOTIFY", why);
        if value.eq_ignore_ascii_case("NEVER") {
            return Ok(Self::default());
        }
        let mut out = Self::default();
        for word in value.split(',') {
            let slot = match word.to_ascii_uppercase().as_str() {
                "SUCCESS" => &mut out.success,
                "FAILURE" => &mut out.failure,
                "DELAY" => &mut out.delay,
                "NEVER" => return Err(bad("NEVER cannot be combined with other values")),
                _ => return Err(bad("expected NEVER or SUCCESS, FAILURE, DELAY")),
            };
            if *slot {
                return Err(bad("a value is repeated"));
            }
            *slot = true;
        }
        Ok(out)
    }

    /// `NEVER`: no DSN at all.
    pub fn is_never(&self) -> bool {
        !(self.success || self.failure || self.delay)
    }
}

impl std::fmt::Display for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_never() {
            return f.write_str("NEVER");
        }
        let words = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let set: Vec<&str> = words
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
        f.write_str(&set.join(","))
    }
}

/// Whether `text` is xtext (RFC 3461 4): printable ASCII but `+`, `=` and space, or `+HH`.
pub fn is_xtext(text: &str) -> bool {
    xtext_decode(text).is_some()
}

/// Decodes xtext; `None` when it is not xtext.
pub fn xtext_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'+' {
            let hex = bytes.get(i + 1..i + 3)?;
            let upper = |c: &u8| c.is_ascii_digit() || (b'A'..=b'F').contains(c);
            if !hex.iter().all(upper) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else if (33..=126).contains(&b) && b != b'=' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `value` is an ORCPT value: `addr-type;xtext` (RFC 3461 4.2).
pub fn is_orcpt(value: &str) -> bool {
    let Some((addr_type, address)) = value.split_once(';') else {
        return false;
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || c == '-';
    value.len() <= MAX_ORCPT
        && !addr_type.is_empty()
        && addr_type.chars().all(atom)
        && !address.is_empty()
        && is_xtext(address)
}

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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    /// The announced message size, if any.
    pub size: Option<u64>,
    /// The declared body type.
    pub body: Body,
    /// Whether the client asked for internationalized addresses and headers.
    pub smtputf8: bool,
    /// What a failure DSN should return of the message.
    pub ret: Option<Ret>,
    /// The sender's envelope id, as xtext (checked).
    pub envid: Option<String>,
}

/// What one RCPT TO's parameters said (RFC 3461).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    /// When to send a DSN; `None` is the default (failures, and delays if the server will).
    pub notify: Option<Notify>,
    /// The original recipient, `addr-type;xtext` as given (checked).
    pub orcpt: Option<String>,
}

impl RcptParams {
    /// Parses `NOTIFY=` and `ORCPT=`, keywords case-insensitively; each at most once.
    pub fn parse(params: &[String]) -> Result<Self, ParamError> {
        let mut out = Self::default();
        for param in params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "NOTIFY" if out.notify.is_some() => return Err(twice("NOTIFY")),
                "NOTIFY" => out.notify = Some(Notify::parse(value)?),
                "ORCPT" if out.orcpt.is_some() => return Err(twice("ORCPT")),
                "ORCPT" if is_orcpt(value) => out.orcpt = Some(value.to_string()),
                "ORCPT" => {
                    return Err(ParamError::Bad(
                        "ORCPT",
                        "expected addr-type;address in xtext, at most 500 characters",
                    ))
                }
                _ => return Err(unsupported(key)),
            }
        }
        Ok(out)
    }

    /// The parameters, as written on the wire (each after a space).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(notify) = self.notify {
            out.push_str(&format!(" NOTIFY={notify}"));
        }
        if let Some(orcpt) = &self.orcpt {
            out.push_str(&format!(" ORCPT={orcpt}"));
        }
        out
    }
}

fn twice(param: &'static str) -> ParamError {
    ParamError::Bad(param, "given more than once")
}

fn unsupported(key: &str) -> ParamError {
    ParamError::Unsupported(key.chars().take(32).collect::<String>())
}

/// Parameters roost does not understand or that are malformed: 501 or 555 (RFC 5321 4.1.1.11).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    /// A known parameter with a bad value.
    #[error("Invalid {0} parameter")]
    Invalid(&'static str),
    /// A known parameter with a bad value, and what is wrong with it.
    #[error("Invalid {0} parameter: {1}")]
    Bad(&'static str, &'static str),
    /// A parameter this server does not implement.
    #[error("Unsupported parameter {0}")]
    Unsupported(String),
}

impl ParamError {
    /// The reply this error deserves.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Invalid(_) | Self::Bad(..) => Reply::new(501, "5.5.4", &self.to_string()),
            Self::Unsupported(_) => Reply::new(555, "5.5.4", &self.to_string()),
        }
    }
}

impl MailParams {
    /// Parses `SIZE=n`, `BODY=7BIT|8BITMIME`, `SMTPUTF8`, `RET=FULL|HDRS` and `ENVID=xtext`,
    /// keywords case-insensitively.
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
                "RET" if out.ret.is_some() => return Err(twice("RET")),
                "RET" => out.ret = Some(value.parse()?),
                "ENVID" if out.envid.is_some() => return Err(twice("ENVID")),
                "ENVID" if !value.is_empty() && value.len() <= MAX_ENVID && is_xtext(value) => {
                    out.envid = Some(value.to_string())
                }
                "ENVID" => {
                    return Err(ParamError::Bad(
                        "ENVID",
                        "expected xtext of 1 to 100 characters",
                    ))
                }
                _ => return Err(unsupported(key)),
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
        out.push_str(&self.encode_dsn());
        out
    }

    /// Only the DSN parameters (`RET`, `ENVID`), for a relayhost that offers DSN.
    pub fn encode_dsn(&self) -> String {
        let mut out = String::new();
        if let Some(ret) = self.ret {
            out.push_str(&format!(" RET={}", ret.as_str()));
        }
        if let Some(envid) = &self.envid {
            out.push_str(&format!(" ENVID={envid}"));
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
        assert_eq!(p(&["X-FOO=1"]).unwrap_err().reply().code, 555);
    }

    #[test]
    fn dsn_parameters_parse_and_refuse_with_501() {
        let ok = p(&["ret=hdrs", "ENVID=QQ+2B1"]).unwrap();
        assert_eq!(ok.ret, Some(Ret::Hdrs));
        assert_eq!(ok.envid.as_deref(), Some("QQ+2B1"));
        assert_eq!(ok.encode(), " RET=HDRS ENVID=QQ+2B1");
        for bad in [
            &["RET=ALL"][..],
            &["RET=FULL", "RET=HDRS"],
            &["ENVID="],
            &["ENVID=a+zz"],
            &["ENVID=a=b"],
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.reply().code, 501, "{bad:?}");
            assert_eq!(e.reply().enhanced, Some("5.5.4"));
        }
        let r = |list: &[&str]| {
            RcptParams::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let ok = r(&["notify=success,DELAY", "ORCPT=rfc822;bob+40x.example"]).unwrap();
        let notify = ok.notify.unwrap();
        assert!(notify.success && notify.delay && !notify.failure);
        assert_eq!(
            ok.encode(),
            " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+40x.example"
        );
        assert!(r(&["NOTIFY=NEVER"]).unwrap().notify.unwrap().is_never());
        for bad in [
            &["NOTIFY=NEVER,SUCCESS"][..],
            &["NOTIFY=SOMETIMES"],
            &["NOTIFY=SUCCESS,SUCCESS"],
            &["NOTIFY=FAILURE", "NOTIFY=DELAY"],
            &["ORCPT=bob@x.example"],
            &["ORCPT=rfc822;"],
            &["ORCPT=rfc822;a b"],
        ] {
            let e = r(bad).unwrap_err();
            assert_eq!(e.reply().code, 501, "{bad:?}");
            assert!(e.to_string().starts_with("Invalid "), "{e}");
        }
        assert_eq!(r(&["FOO=1"]).unwrap_err().reply().code, 555);
        assert_eq!(xtext_decode("a+2Bb+0D").as_deref(), Some("a+b\r"));
        assert_eq!(xtext_decode("a+2b"), None);
    }
}
