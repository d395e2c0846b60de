//! The extra fields of a passwd-file line (its 8th field): space-separated `key=value` pairs,
//! as Dovecot reads them.
//!
//! Access fields are enforced: `nologin` (with `reason=`), `deny` (and Dovecot's `fail`),
//! `allow_nets=`. `userdb_uid`, `userdb_gid` and `userdb_home` override the uid, gid and home
//! fields; `userdb_quota_rule` (and `userdb_quota_rule2`, …) set the user's quota. Other
//! `userdb_*` fields only shape the mail session (mail location…); they are accepted and
//! reported as ignored. Any other passdb field could change who may log in (`proxy`, `host`,
//! `nopassword`, `user`, `allow_real_nets`…), so an unknown one is an error rather than
//! something silently skipped.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::Network;

/// Who may log in with a passwd-file entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `deny` / `fail`: every login fails, as with a wrong password.
    pub deny: bool,
    /// `nologin`: the right password is still refused, with `reason` if given.
    pub nologin: bool,
    /// `reason=`: the text a `nologin` refusal shows the client.
    pub reason: Option<String>,
    /// `allow_nets=`: the only client networks a login may come from (`None`: anywhere).
    pub allow_nets: Option<Vec<Network>>,
}

impl Access {
    /// Whether a client at `peer` may try this entry's password (`deny` and `allow_nets`).
    pub fn admits(&self, peer: IpAddr) -> bool {
        !self.deny
            && self
                .allow_nets
                .as_ref()
                .is_none_or(|nets| nets.iter().any(|n| n.contains(peer)))
    }
}

/// What the extra fields of one line say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExtraFields {
    /// The access restrictions.
    pub access: Access,
    /// `userdb_uid=`, overriding the uid field.
    pub uid: Option<u32>,
    /// `userdb_gid=`, overriding the gid field.
    pub gid: Option<u32>,
    /// `userdb_home=`, overriding the home field.
    pub home: Option<PathBuf>,
    /// `userdb_quota_rule=`, `userdb_quota_rule2=`…: this user's quota rules (Dovecot's
    /// `*:storage=1G` form), applied over the configured default in order.
    pub quota_rules: Vec<String>,
    /// Keys accepted but not acted upon (harmless `userdb_*` fields, `nodelay`).
    pub ignored: Vec<String>,
}

/// An extra field roost cannot honour, or a malformed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct FieldError {
    /// The field's key, as written.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

fn error(key: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Longest `reason=` text kept (a line on the client's screen).
const MAX_REASON: usize = 200;

/// Parses the extra fields; words after `reason=` that are not fields themselves continue
/// the reason, so `reason=Closed for the move` reads as one text.
pub fn parse(text: &str) -> Result<ExtraFields, FieldError> {
    let mut out = ExtraFields::default();
    let mut in_reason = false;
    for word in text.split_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let is_field = value.is_some() || FLAGS.contains(&key);
        if in_reason && !is_field {
            if let Some(reason) = out.access.reason.as_mut() {
                reason.push(' ');
                reason.push_str(word);
            }
            continue;
        }
        in_reason = key == "reason";
        field(&mut out, key, value)?;
    }
    if let Some(reason) = out.access.reason.as_mut() {
        *reason = clean_reason(reason);
    }
    Ok(out)
}

/// Keys that may stand alone, without `=value`.
const FLAGS: &[&str] = &["nologin", "deny", "fail", "nodelay"];

/// Applies one `key[=value]`.
fn field(out: &mut ExtraFields, key: &str, value: Option<&str>) -> Result<(), FieldError> {
    match key {
        "nologin" => out.access.nologin = flag(key, value)?,
        "deny" | "fail" => out.access.deny |= flag(key, value)?,
        "reason" => out.access.reason = Some(value.unwrap_or_default().to_owned()),
        "allow_nets" => out.access.allow_nets = Some(networks(key, value.unwrap_or_default())?),
        "userdb_uid" => out.uid = Some(number(key, value)?),
        "userdb_gid" => out.gid = Some(number(key, value)?),
        "userdb_home" => {
            out.home = Some(PathBuf::from(
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| error(key, "needs a directory"))?,
            ))
        }
        _ if is_quota_rule(key) => {
            let rule = value.unwrap_or_default();
            roost_storage::quota::QuotaLimits::default()
                .apply_rule(rule)
                .map_err(|e| error(key, e.to_string()))?;
            out.quota_rules.push(rule.to_owned());
        }
        "" => return Err(error(key, "empty field name")),
        "nodelay" => out.ignored.push(key.to_owned()),
        _ if key.starts_with("userdb_") => out.ignored.push(key.to_owned()),
        _ => {
            return Err(error(
                key,
                "unsupported passdb extra field (roost enforces nologin, reason, deny, fail \
                 and allow_nets; it will not ignore a field that may decide who logs in)",
            ))
        }
    }
    Ok(())
}

/// `userdb_quota_rule`, `userdb_quota_rule2`, … (Dovecot numbers further rules).
fn is_quota_rule(key: &str) -> bool {
    key.strip_prefix("userdb_quota_rule")
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// A yes/no field: present alone or with y/yes/true/1 means yes.
fn flag(key: &str, value: Option<&str>) -> Result<bool, FieldError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "y" | "yes" | "true" | "1") => Ok(true),
        Some("n" | "no" | "false" | "0") => Ok(false),
        Some(_) => Err(error(key, "must be y or n")),
    }
}

fn number(key: &str, value: Option<&str>) -> Result<u32, FieldError> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| error(key, "must be a number"))
}

/// `allow_nets=10.0.0.0/8,::1,local`; `local` (non-IP connections) matches no client here.
fn networks(key: &str, list: &str) -> Result<Vec<Network>, FieldError> {
    let mut nets = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "local" {
            continue;
        }
        nets.push(item.parse::<Network>().map_err(|e| error(key, e))?);
    }
    if nets.is_empty() && !list.split(',').any(|i| i.trim() == "local") {
        return Err(error(key, "needs at least one network"));
    }
    Ok(nets)
}

/// A reason fit for one reply line: no control characters, bounded length.
fn clean_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn empty_means_no_restrictions() {
        let fields = parse("").unwrap();
        assert_eq!(fields, ExtraFields::default());
        assert!(fields.access.admits(ip("203.0.113.1")));
    }

    #[test]
    fn access_fields() {
        for text in ["nologin", "nologin=y", "nologin=yes", "nologin=Y"] {
            let fields = parse(text).unwrap();
            assert!(fields.access.nologin, "{text}");
        }
        assert!(!parse("nologin=n").unwrap().access.nologin);
        for text in ["deny", "deny=y", "fail", "fail=yes"] {
            let access = parse(text).unwrap().access;
            assert!(access.deny && !access.admits(ip("127.0.0.1")), "{text}");
        }
        let access = parse("nologin reason=Moved to the new server, see https://x.test/ deny=n")
            .unwrap()
            .access;
        assert!(access.nologin && !access.deny);
        assert_eq!(
            access.reason.as_deref(),
            Some("Moved to the new server, see https://x.test/")
        );
        assert!(
            access.admits(ip("192.0.2.1")),
            "nologin is checked after the password"
        );
    }

    #[test]
    fn allow_nets_matches_both_families_and_mapped_ipv4() {
        let access = parse("allow_nets=10.0.0.0/8,::1,2001:db8::/32,local")
            .unwrap()
            .access;
        for ok in ["10.9.8.7", "::ffff:10.1.1.1", "::1", "2001:db8:5::1"] {
            assert!(access.admits(ip(ok)), "{ok}");
        }
        for bad in ["11.0.0.1", "127.0.0.1", "2001:db9::1", "::2"] {
            assert!(!access.admits(ip(bad)), "{bad}");
        }
        let local_only = parse("allow_nets=local").unwrap().access;
        assert!(!local_only.admits(ip("127.0.0.1")));
    }

    #[test]
    fn userdb_fields() {
        let fields =
            parse("userdb_uid=5000 userdb_gid=5001 userdb_home=/srv/u userdb_mail=maildir:~/M userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:messages=50 nodelay")
                .unwrap();
        assert_eq!((fields.uid, fields.gid), (Some(5000), Some(5001)));
        assert_eq!(fields.home, Some(PathBuf::from("/srv/u")));
        assert_eq!(fields.quota_rules, ["*:storage=1G", "*:messages=50"]);
        assert_eq!(fields.ignored, ["userdb_mail", "nodelay"]);
    }

    #[test]
    fn refused_fields_name_the_key() {
        let cases = [
            ("proxy=y host=10.0.0.2", "proxy"),
            ("nopassword", "nopassword"),
            ("allow_real_nets=10.0.0.0/8", "allow_real_nets"),
            ("user=other", "user"),
            ("allow_nets=10.0.0.0/33", "allow_nets"),
            ("allow_nets=", "allow_nets"),
            ("allow_nets=10.0.0.1,nonsense", "allow_nets"),
            ("nologin=perhaps", "nologin"),
            ("userdb_uid=vmail", "userdb_uid"),
            ("userdb_quota_rule=*:storage=lots", "userdb_quota_rule"),
            ("userdb_quota_rule2=*:inodes=5", "userdb_quota_rule2"),
            ("=x", ""),
            ("deny typo", "typo"),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
    }

    #[test]
    fn reason_is_one_clean_bounded_line() {
        let long = format!("reason={}", "x".repeat(1000));
        assert_eq!(
            parse(&long).unwrap().access.reason.unwrap().len(),
            MAX_REASON
        );
        let fields = parse("reason=a\rb\u{7}c").unwrap();
        assert_eq!(fields.access.reason.as_deref(), Some("a b c"));
    }
}
