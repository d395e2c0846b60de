//! Carrying out what Sieve decided about storing: each `keep` and `fileinto` becomes one
//! append, with its flags. A folder that does not exist is made only when the script said
//! `:create`; otherwise (and for a name that cannot be a folder) the copy goes to INBOX, as
//! RFC 5228 4.1 wants a failed `fileinto` to keep the message rather than lose it.

use std::collections::BTreeSet;
use std::io::Read;

use roost_protocol::imap::mutf7;
use roost_storage::{Error, Flags, Store};

/// One copy of the message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The folder as the script named it (UTF-8); `None` for INBOX.
    pub folder: Option<String>,
    /// IMAP flags and keywords for the copy.
    pub flags: Vec<String>,
    /// Whether the folder may be created.
    pub create: bool,
}

/// The system flags and keywords a list of Sieve flag names stands for; `\Recent` and names
/// that cannot be IMAP keywords are dropped.
fn split_flags(names: &[String]) -> (Flags, BTreeSet<String>) {
    let mut flags = Flags::empty();
    let mut keywords = BTreeSet::new();
    for name in names {
        if name.starts_with('\\') {
            if let Some(flag) = Flags::from_imap(name) {
                flags = flags.union(flag);
            }
        } else if is_keyword(name) {
            keywords.insert(name.clone());
        }
    }
    (flags, keywords)
}

/// An IMAP atom usable as a keyword (RFC 3501 flag-keyword).
fn is_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// The folders every user is meant to have (made at first login): a script filing into one
/// before the user ever logged in gets it made rather than the copy sent to INBOX.
fn is_special_use(name: &str) -> bool {
    roost_storage::names::SPECIAL_USE
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The stored (modified UTF-7) name for a script's folder name; `None` for INBOX.
fn stored_name(folder: &str) -> Option<String> {
    let name = folder.trim_matches('/');
    if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
        return None;
    }
    Some(mutf7::encode(name))
}

/// Stores every placement, folders first and INBOX last. `message` yields the message afresh
/// for each copy. An over-quota error is returned as is (the caller answers "mailbox full");
/// a folder that cannot be used sends its copy to INBOX.
pub fn store_all<'m>(
    store: &mut Store,
    user: &str,
    placements: &[Placement],
    message: &mut dyn FnMut() -> Box<dyn Read + 'm>,
) -> Result<(), Error> {
    let mut to_inbox: Vec<&[String]> = Vec::new();
    for placement in placements {
        let Some(name) = placement.folder.as_deref().and_then(stored_name) else {
            to_inbox.push(&placement.flags);
            continue;
        };
        match store_in_folder(store, &name, placement, &mut *message) {
            Ok(()) => tracing::info!(user, folder = %name, "delivered by Sieve"),
            Err(Error::OverQuota) => return Err(Error::OverQuota),
            Err(e) => {
                tracing::warn!(user, folder = %name, "fileinto failed, keeping in INBOX: {e}");
                to_inbox.push(&placement.flags);
            }
        }
    }
    // Two keeps with the same flags are one copy (RFC 5228 2.10.3).
    to_inbox.dedup();
    for flags in to_inbox {
        let (flags, keywords) = split_flags(flags);
        store
            .inbox()
            .append(&mut message(), flags, &keywords, None)?;
    }
    Ok(())
}

fn store_in_folder<'m>(
    store: &mut Store,
    name: &str,
    placement: &Placement,
    message: &mut dyn FnMut() -> Box<dyn Read + 'm>,
) -> Result<(), Error> {
    let (flags, keywords) = split_flags(&placement.flags);
    let mut folder = match store.folders().open(name) {
        Ok(folder) => folder,
        Err(Error::NoSuchMailbox(_)) if placement.create || is_special_use(name) => {
            match store.folders().create(name) {
                Ok(()) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
            store.set_subscribed(name, true)?;
            store.folders().open(name)?
        }
        Err(e) => return Err(e),
    };
    folder.append(&mut message(), flags, &keywords, None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_system_flags_and_keywords() {
        let names: Vec<String> = ["\\Seen", "\\flagged", "$Label1", "\\Recent", "bad word", ""]
            .map(String::from)
            .into();
        let (flags, keywords) = split_flags(&names);
        assert!(flags.contains(Flags::SEEN) && flags.contains(Flags::FLAGGED));
        assert_eq!(keywords.into_iter().collect::<Vec<_>>(), ["$Label1"]);
    }

    #[test]
    fn folder_names_are_stored_in_modified_utf7_and_inbox_is_inbox() {
        assert_eq!(stored_name("INBOX"), None);
        assert_eq!(stored_name("inbox/"), None);
        assert_eq!(stored_name("Lists/rust").as_deref(), Some("Lists/rust"));
        assert_eq!(stored_name("Entwürfe").as_deref(), Some("Entw&APw-rfe"));
    }
}
