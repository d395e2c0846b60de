//! Giving every message of a maildir a UID, and keeping the files that remember them: the
//! `dovecot-uidlist` (read, repaired, rebuilt) and the empty marker file whose name records
//! UIDVALIDITY a second time. A UID comes from the uidlist, else from the `,U=` in the file's
//! name, else it is new; once given, it is written into the name too, so it outlives the list.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use super::sync::fill_size_and_date;
use super::uidlist::Uidlist;
use super::{scan, Entry, Maildir, Place, UIDVALIDITY_MARKER};
use crate::durable::sync_dir;
use crate::mailbox::Uid;
use crate::{repair, Error};

impl Maildir {
    /// Reads the uidlist, repairing what it can and logging what it did; the flag says it had
    /// to be started afresh (and that was reported).
    pub(super) fn load_uidlist(&mut self, scanned: &[Entry]) -> Result<(Uidlist, bool), Error> {
        let marker = self.read_marker()?;
        let mut rebuilt = false;
        let list = match Uidlist::read(&self.root)? {
            Some(Ok(list)) => list,
            found => {
                rebuilt = true;
                let why = match found {
                    Some(Err(corrupt)) => format!("dovecot-uidlist is corrupt ({})", corrupt.0),
                    _ => "dovecot-uidlist is missing".to_string(),
                };
                let with_uid = scanned
                    .iter()
                    .filter(|e| e.name().is_ok_and(|n| n.uid.is_some()))
                    .count();
                let uidvalidity = match (marker, with_uid == scanned.len()) {
                    (Some(v), true) => v,
                    _ => self.new_uidvalidity(marker),
                };
                // A maildir no IMAP server has numbered yet (no marker, no UID in any file
                // name: mail delivered by procmail or an MTA, a Courier maildir) loses nothing:
                // its first numbering is no repair.
                let numbered_before = marker.is_some() || self.uidlist.is_some() || with_uid > 0;
                if !numbered_before && !scanned.is_empty() {
                    tracing::info!(
                        mailbox = %self.root.display(),
                        messages = scanned.len(),
                        "numbering a maildir no IMAP server has seen before"
                    );
                } else if numbered_before {
                    let done = if Some(uidvalidity) == marker {
                        "rebuilt it from the UIDs in the file names; UIDVALIDITY and UIDs kept"
                    } else {
                        "rebuilt it with a new UIDVALIDITY: the old UIDs could not all be recovered"
                    };
                    repair::report(&self.root, &why, done);
                }
                let list = Uidlist::new(uidvalidity);
                if scanned.is_empty() {
                    // Written at once, so the next session finds it even if no mail ever
                    // arrives; with messages, the sync writes it with their UIDs.
                    list.write(&self.root)?;
                }
                list
            }
        };
        if marker != Some(list.uidvalidity) {
            self.write_marker(list.uidvalidity)?;
        }
        Ok((list, rebuilt))
    }

    /// The UIDVALIDITY the marker file records (the highest, should there be several).
    fn read_marker(&self) -> Result<Option<u32>, Error> {
        let entries = fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                u32::from_str_radix(name.strip_prefix(UIDVALIDITY_MARKER)?, 16).ok()
            })
            .max())
    }

    /// Replaces any marker file with one for `uidvalidity`, durably.
    fn write_marker(&self, uidvalidity: u32) -> Result<(), Error> {
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(UIDVALIDITY_MARKER)
                {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let path = self
            .root
            .join(format!("{UIDVALIDITY_MARKER}{uidvalidity:08x}"));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.root)
    }

    /// Gives every message a UID: the uidlist's, else the one in its name, else a new one.
    /// Returns the messages, the new uidlist, and whether any file was renamed.
    pub(super) fn number(
        &mut self,
        scanned: Vec<Entry>,
        known: &Uidlist,
        report_unlisted: bool,
    ) -> Result<(BTreeMap<Uid, Entry>, Uidlist, bool), Error> {
        let mut uidlist = Uidlist::new(known.uidvalidity);
        uidlist.uidnext = known.uidnext;
        let (mut files, mut unnumbered) =
            self.keep_uids(scanned, known, &mut uidlist, report_unlisted);
        let mut fresh = scan(&self.root, Place::New)?;
        for entry in &mut fresh {
            fill_size_and_date(&self.root, entry, None);
        }
        unnumbered.extend(fresh);
        // New mail is numbered in delivery order: mtime, then the name (MTAs start it with the
        // time), never the directory's hash order.
        unnumbered.sort_by(|a, b| {
            (a.date.secs, a.date.nanos, &a.file).cmp(&(b.date.secs, b.date.nanos, &b.file))
        });
        let mut renamed = false;
        for entry in unnumbered {
            let uid = uidlist.uidnext;
            uidlist.uidnext += 1;
            let mut name = entry.name()?;
            name.set_uid(uid);
            files.insert(uid, self.rename_entry(&entry, name)?);
            renamed = true;
        }
        let named = self.name_uids(&mut files, &mut uidlist)?;
        Ok((files, uidlist, renamed || named))
    }

    /// The messages that keep a UID (the uidlist's, else the one in their name, unless another
    /// file took it), and those left to number. Raises `uidlist.uidnext` past every kept UID.
    fn keep_uids(
        &self,
        scanned: Vec<Entry>,
        known: &Uidlist,
        uidlist: &mut Uidlist,
        report_unlisted: bool,
    ) -> (BTreeMap<Uid, Entry>, Vec<Entry>) {
        let mut files: BTreeMap<Uid, Entry> = BTreeMap::new();
        let mut unnumbered = Vec::new();
        let mut unlisted = 0;
        for entry in scanned {
            let Ok(name) = entry.name() else {
                continue;
            };
            // The uidlist keeps one line per key. When two files share a key (a copied file),
            // the line describes the one whose base it names; the other keeps the UID in its
            // own name, or every open would renumber one of them.
            let listed = known
                .entries
                .get(&name.key)
                .filter(|(_, base)| name.uid.is_none() || *base == name.base)
                .map(|(uid, _)| *uid);
            // A file roost numbered (`,U=` in its name) is always in the list, whatever the
            // list's N says (appended lines leave N behind): missing means the list lost it.
            if listed.is_none() && name.uid.is_some() {
                unlisted += 1;
            }
            match listed.or(name.uid) {
                Some(uid) if !files.contains_key(&uid) => {
                    uidlist.uidnext = uidlist.uidnext.max(uid.saturating_add(1));
                    files.insert(uid, entry);
                }
                _ => unnumbered.push(entry),
            }
        }
        if unlisted > 0 && report_unlisted {
            let why = format!("dovecot-uidlist lacked {unlisted} messages roost had numbered");
            repair::report(&self.root, &why, "took their UIDs from the file names");
        }
        (files, unnumbered)
    }

    /// Records each UID in its file's name too (once per message, so it outlives the uidlist)
    /// and lists every message in `uidlist`; true if a file was renamed.
    fn name_uids(
        &self,
        files: &mut BTreeMap<Uid, Entry>,
        uidlist: &mut Uidlist,
    ) -> Result<bool, Error> {
        let mut renamed = false;
        for (uid, entry) in files.iter_mut() {
            let mut name = entry.name()?;
            if name.uid != Some(*uid) {
                name.set_uid(*uid);
                *entry = self.rename_entry(entry, name.clone())?;
                renamed = true;
            }
            uidlist.entries.insert(name.key, (*uid, name.base));
        }
        Ok(renamed)
    }
}
