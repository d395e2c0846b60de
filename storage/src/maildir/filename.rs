//! Maildir file names: `base[,S=size][,W=crlf-size][,U=uid]:2,FLAGS`.
//!
//! `base` is the unique name the delivering agent chose. roost adds `,U=<uid>` when it takes a
//! message into `cur/`, so the UID is recorded in the mail itself and survives the loss of every
//! file kept beside it. Flags are the standard letters (D F P R S T) plus `a`..`z` for keywords,
//! as Dovecot writes them.

use crate::mailbox::{Flags, Uid};

/// A parsed maildir file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirName {
    /// The unique part, up to the first `,` or `:`; identifies the message for its lifetime.
    pub key: String,
    /// Everything before `:2,` (key plus `,S=`/`,U=`/other fields), as uidlists record it.
    pub base: String,
    /// The UID recorded in the name.
    pub uid: Option<Uid>,
    /// The size recorded in the name (`,S=`).
    pub size: Option<u64>,
    /// The size with CRLF line endings (`,W=`, Dovecot's "virtual size").
    pub crlf_size: Option<u64>,
    /// System flags.
    pub flags: Flags,
    /// Keyword letters `a`..`z`, sorted.
    pub keyword_letters: Vec<char>,
    /// `P` (passed/forwarded), kept as found; IMAP has no flag for it.
    pub passed: bool,
}

/// Everything before `:2,`: the key plus its `,S=`/`,U=`/other fields, as uidlists record it.
pub fn base_of(file_name: &str) -> &str {
    file_name.split(':').next().unwrap_or_default()
}

/// The unique part of a file name, up to the first `,` or `:`.
pub fn key_of(file_name: &str) -> &str {
    file_name.split([',', ':']).next().unwrap_or_default()
}

/// The number in a `,X=` field of the base (`U=`, `S=`, `W=`), read without parsing the whole
/// name (FETCH RFC822.SIZE asks per message). The key is never a field, whatever it looks like.
pub fn field<T: std::str::FromStr>(file_name: &str, prefix: &str) -> Option<T> {
    base_of(file_name)
        .split(',')
        .skip(1)
        .filter_map(|f| f.strip_prefix(prefix))
        .last()
        .and_then(|v| v.parse().ok())
}

impl MaildirName {
    /// Parses a file name from `new/` or `cur/`; `None` for dot files and other non-messages.
    pub fn parse(file_name: &str) -> Option<Self> {
        if file_name.is_empty() || file_name.starts_with('.') {
            return None;
        }
        let base = base_of(file_name);
        let info = file_name.split_once(':').map(|(_, info)| info);
        let key = Some(key_of(file_name))
            .filter(|k| !k.is_empty())?
            .to_string();
        let mut name = Self {
            key,
            base: base.to_string(),
            uid: field(file_name, "U=").filter(|u| *u > 0),
            size: field(file_name, "S="),
            crlf_size: field(file_name, "W="),
            flags: Flags::empty(),
            keyword_letters: Vec::new(),
            passed: false,
        };
        if let Some(letters) = info.and_then(|i| i.strip_prefix("2,")) {
            for c in letters.chars() {
                match c {
                    'P' => name.passed = true,
                    'a'..='z' => name.keyword_letters.push(c),
                    _ => {
                        if let Some((flag, _, _)) = Flags::ALL.iter().find(|(_, _, l)| *l == c) {
                            name.flags = name.flags.union(*flag);
                        }
                    }
                }
            }
        }
        name.keyword_letters.sort_unstable();
        name.keyword_letters.dedup();
        Some(name)
    }

    /// The `cur/` file name for this message.
    pub fn file_name(&self) -> String {
        let mut letters: Vec<char> = Flags::ALL
            .iter()
            .filter(|(f, _, _)| self.flags.contains(*f))
            .map(|(_, _, l)| *l)
            .collect();
        if self.passed {
            letters.push('P');
        }
        letters.extend(&self.keyword_letters);
        letters.sort_unstable();
        format!(
            "{}:2,{}",
            self.base,
            letters.into_iter().collect::<String>()
        )
    }

    /// Records `uid` in the base name (replacing any previous `,U=`).
    pub fn set_uid(&mut self, uid: Uid) {
        // The first field is the key, whatever it looks like (a key `U=6` stays).
        let fields: Vec<&str> = self
            .base
            .split(',')
            .enumerate()
            .filter(|(i, f)| *i == 0 || !f.starts_with("U="))
            .map(|(_, f)| f)
            .collect();
        self.base = format!("{},U={uid}", fields.join(","));
        self.uid = Some(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_and_roost_names_parse() {
        let n = MaildirName::parse("1700000000.M1P2Q3.host,S=1234,W=1260:2,FRSab").unwrap();
        assert_eq!(n.key, "1700000000.M1P2Q3.host");
        assert_eq!(n.base, "1700000000.M1P2Q3.host,S=1234,W=1260");
        assert_eq!(n.size, Some(1234));
        assert_eq!(n.uid, None);
        assert!(n
            .flags
            .contains(Flags::SEEN.union(Flags::FLAGGED).union(Flags::ANSWERED)));
        assert_eq!(n.keyword_letters, vec!['a', 'b']);
        assert_eq!(
            n.file_name(),
            "1700000000.M1P2Q3.host,S=1234,W=1260:2,FRSab"
        );

        let mut n = MaildirName::parse("123.abc.host").unwrap();
        assert_eq!(n.flags, Flags::empty());
        n.set_uid(42);
        n.flags = Flags::SEEN.union(Flags::DELETED);
        assert_eq!(n.file_name(), "123.abc.host,U=42:2,ST");
        let again = MaildirName::parse(&n.file_name()).unwrap();
        assert_eq!((again.uid, again.key.as_str()), (Some(42), "123.abc.host"));
        n.set_uid(43);
        assert_eq!(n.base, "123.abc.host,U=43");

        // A key that looks like a UID field is still the key (found by fuzzing).
        let mut n = MaildirName::parse("U=6,U=2:2,S").unwrap();
        n.set_uid(7);
        assert_eq!(n.file_name(), "U=6,U=7:2,S");
        let again = MaildirName::parse(&n.file_name()).unwrap();
        assert_eq!((again.uid, again.key.as_str()), (Some(7), "U=6"));
    }

    #[test]
    fn junk_is_not_a_message_and_odd_names_do_not_panic() {
        for junk in ["", ".nfs123", ".", ":2,S"] {
            assert_eq!(MaildirName::parse(junk), None, "{junk:?}");
        }
        for odd in ["x,U=abc:2,S", "x,U=0", "x:1,garbage", "x,S=-5:2,ZZZ\u{e9}"] {
            let n = MaildirName::parse(odd).unwrap();
            assert_eq!(n.uid, None, "{odd}");
        }
    }
}
