//! Bringing a maildir's view up to date: from a current index without touching the messages,
//! or by listing `cur/` and `new/`, numbering what is new, and repairing what is lost.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::filename::MaildirName;
use super::journal;
use super::keywords::Keywords;
use super::uidlist::{self, Uidlist};
use super::{new_uidvalidity, scan, Entry, Maildir, Place, UIDVALIDITY_MARKER};
use crate::durable::sync_dir;
use crate::index::{self, Index, IndexRecord, Stamp};
use crate::mailbox::{next_modseq, Snapshot, Uid};
use crate::{repair, Error};

/// How old an unfinished delivery in `tmp/` must be before a sync removes it.
const TMP_LIFETIME: std::time::Duration = std::time::Duration::from_secs(36 * 3600);

/// The mtimes that tell whether an index still describes the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamps {
    cur: Stamp,
    new: Stamp,
    uidlist: Stamp,
}

impl From<[Stamp; 3]> for Stamps {
    fn from([cur, new, uidlist]: [Stamp; 3]) -> Self {
        Self { cur, new, uidlist }
    }
}

impl From<Stamps> for [Stamp; 3] {
    fn from(s: Stamps) -> Self {
        [s.cur, s.new, s.uidlist]
    }
}

impl Maildir {
    fn stamps(&self) -> Stamps {
        Stamps {
            cur: Stamp::of(&self.cur()),
            new: Stamp::of(&self.root.join("new")),
            uidlist: Stamp::of(&self.root.join(uidlist::FILE_NAME)),
        }
    }

    /// Whether nothing changed on disk since this session last looked (three stats, no lock:
    /// the view in memory was consistent when it was taken, and any later change moves a
    /// directory's or the uidlist's mtime).
    pub(super) fn unchanged(&self) -> bool {
        let before = self.stamps();
        self.current == Some(before)
            && before.cur != Stamp::default()
            && self.root.join(index::FILE_NAME).exists()
    }

    /// After this session changed the folder (under the lock): the index describes the folder
    /// as it now is, so other sessions load it instead of listing `cur/` and re-reading every
    /// name, and this session's next check finds nothing to do.
    ///
    /// A non-roost writer (a MUA renaming in `cur/` without our lock) that renames between our
    /// last rename and the stat here would be hidden until the next change; the window is the
    /// few microseconds between the two system calls.
    pub(super) fn commit_view(&mut self) -> Result<(), Error> {
        let stamps = self.stamps();
        self.write_index(stamps)?;
        self.current = Some(stamps);
        Ok(())
    }

    /// The sync proper; the caller holds the lock.
    pub(super) fn sync_locked(&mut self) -> Result<Snapshot, Error> {
        let before = self.stamps();
        if self.unchanged() {
            // Nothing changed since this session last looked: no index read, no listing.
            return self.snapshot();
        }
        if self.catch_up_from_journal(before) {
            // Another session changed flags: its journal records say how, nothing else moved.
            return self.snapshot();
        }
        let index = self.read_index()?;
        if let Some(index) = &index {
            // The index plus the flag changes journaled since it was written.
            let id = journal::index_id(index);
            let (journaled, journal_end) = journal::read(&self.root, id, 0).unwrap_or_default();
            let current = match journaled.last() {
                Some(r) => Stamps::from(r.after),
                None => Stamps {
                    cur: index.cur,
                    new: index.new,
                    uidlist: index.uidlist,
                },
            };
            let marker = self
                .root
                .join(format!("{UIDVALIDITY_MARKER}{:08x}", index.uidvalidity));
            let trusted = before.cur != Stamp::default() && before.uidlist != Stamp::default();
            if current == before && trusted && marker.exists() {
                if let Some(()) = self.load_index(index)? {
                    if self.apply_journal(&journaled) {
                        self.index_id = Some(id);
                        self.journal_at = journal_end;
                        self.current = Some(before);
                        return self.snapshot();
                    }
                }
            }
        }
        let cached: HashMap<&str, &IndexRecord> = index
            .iter()
            .flat_map(|i| i.records.iter())
            .filter_map(|r| Some((r.file.split([',', ':']).next()?, r)))
            .collect();
        self.clean_tmp();
        let mut scanned = scan(&self.root, Place::Cur)?;
        if let Some(index) = &index {
            self.highestmodseq = self.highestmodseq.max(index.highestmodseq);
        }
        let mut changed = None;
        for entry in &mut scanned {
            let record = cached.get(entry.name.key.as_str()).copied();
            fill_size_and_date(&self.root, entry, record);
            entry.modseq = match record {
                // Flags as the index knew them: the message keeps its MODSEQ.
                Some(r)
                    if r.flags == entry.name.flags.bits() && r.keywords == keyword_bits(entry) =>
                {
                    r.modseq
                }
                // Changed behind our back (or unknown): one new MODSEQ for this sync.
                _ => *changed.get_or_insert_with(|| {
                    self.highestmodseq = next_modseq(self.highestmodseq);
                    self.highestmodseq
                }),
            };
        }
        let (known, rebuilt) = self.load_uidlist(&scanned)?;
        let (mut files, uidlist, renamed) = self.number(scanned, &known, !rebuilt)?;
        for entry in files.values_mut().filter(|e| e.modseq == 0) {
            // New mail from new/.
            entry.modseq = *changed.get_or_insert_with(|| {
                self.highestmodseq = next_modseq(self.highestmodseq);
                self.highestmodseq
            });
        }
        if uidlist != known {
            sync_dir(&self.cur())?;
            uidlist.write(&self.root)?;
        }
        self.keywords = self.load_keywords(index.as_ref())?;
        self.files = files;
        self.uidlist = Some(Uidlist {
            entries: Default::default(),
            ..uidlist
        });
        // Our own renames changed cur/: record an unknown stamp so the next open lists cur/ once
        // more instead of trusting a stamp that could hide someone else's change.
        let after = self.stamps();
        let cur = if renamed {
            Stamp::default()
        } else {
            before.cur
        };
        let described = Stamps {
            cur,
            new: before.new,
            uidlist: after.uidlist,
        };
        self.write_index(described)?;
        self.current = Some(described);
        self.snapshot()
    }

    /// Gives every message a UID: the uidlist's, else the one in its name, else a new one.
    /// Returns the messages, the new uidlist, and whether any file was renamed.
    fn number(
        &mut self,
        scanned: Vec<Entry>,
        known: &Uidlist,
        report_unlisted: bool,
    ) -> Result<(BTreeMap<Uid, Entry>, Uidlist, bool), Error> {
        let mut uidlist = Uidlist::new(known.uidvalidity);
        uidlist.uidnext = known.uidnext;
        let mut files: BTreeMap<Uid, Entry> = BTreeMap::new();
        let mut unnumbered = Vec::new();
        let mut unlisted = 0;
        for entry in scanned {
            // The uidlist keeps one line per key. When two files share a key (a copied file),
            // the line describes the one whose base it names; the other keeps the UID in its
            // own name, or every open would renumber one of them.
            let listed = known
                .entries
                .get(&entry.name.key)
                .filter(|(_, base)| entry.name.uid.is_none() || *base == entry.name.base)
                .map(|(uid, _)| *uid);
            // A file roost numbered (`,U=` in its name) is always in the list, whatever the
            // list's N says (appended lines leave N behind): missing means the list lost it.
            if listed.is_none() && entry.name.uid.is_some() {
                unlisted += 1;
            }
            match listed.or(entry.name.uid) {
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
            let mut name = entry.name.clone();
            name.set_uid(uid);
            files.insert(uid, self.rename_entry(&entry, name)?);
            renamed = true;
        }
        for (uid, entry) in files.iter_mut() {
            if entry.name.uid != Some(*uid) {
                // Record the UID in the name too (once per message), so it outlives the uidlist.
                let mut name = entry.name.clone();
                name.set_uid(*uid);
                *entry = self.rename_entry(entry, name)?;
                renamed = true;
            }
            uidlist
                .entries
                .insert(entry.name.key.clone(), (*uid, entry.name.base.clone()));
        }
        Ok((files, uidlist, renamed))
    }

    /// Removes what crashed deliveries left in `tmp/` (older than 36 hours, as Dovecot does:
    /// a delivery still writing is never that old).
    fn clean_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let limit = std::time::SystemTime::now() - TMP_LIFETIME;
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < limit);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Reads the index; a corrupt one is reported and ignored (the sync rebuilds it).
    fn read_index(&self) -> Result<Option<Index>, Error> {
        match Index::read(&self.root)? {
            Some(Ok(index)) => Ok(Some(index)),
            Some(Err(corrupt)) => {
                let why = format!("{} is corrupt ({})", index::FILE_NAME, corrupt.0);
                repair::report(
                    &self.root,
                    &why,
                    "rebuilt it from dovecot-uidlist and the file names",
                );
                Ok(None)
            }
            None => {
                // No index beside a folder that has been opened before: someone deleted it.
                if self.root.join(uidlist::FILE_NAME).exists() {
                    let why = format!("{} is missing", index::FILE_NAME);
                    repair::report(
                        &self.root,
                        &why,
                        "rebuilt it from dovecot-uidlist and the file names",
                    );
                }
                Ok(None)
            }
        }
    }

    /// Takes the whole view from a current index; `None` if a record does not parse.
    fn load_index(&mut self, index: &Index) -> Result<Option<()>, Error> {
        let mut files = BTreeMap::new();
        // Entries whose file is unchanged are kept as they are: after another session's change
        // only the renamed messages are parsed again.
        let mut previous = std::mem::take(&mut self.files);
        for r in &index.records {
            if let Some(mut entry) = previous.remove(&r.uid).filter(|e| e.file == r.file) {
                entry.size = r.size;
                entry.date = r.date;
                entry.modseq = r.modseq;
                files.insert(r.uid, entry);
                continue;
            }
            let Some(name) = MaildirName::parse(&r.file) else {
                self.files = previous;
                return Ok(None);
            };
            let entry = Entry {
                place: Place::Cur,
                file: r.file.clone(),
                name,
                size: r.size,
                date: r.date,
                modseq: r.modseq,
            };
            files.insert(r.uid, entry);
        }
        self.highestmodseq = self.highestmodseq.max(index.highestmodseq);
        let mut header = Uidlist::new(index.uidvalidity);
        header.uidnext = index.uidnext;
        self.keywords = self.load_keywords(Some(index))?;
        self.files = files;
        self.uidlist = Some(header);
        Ok(Some(()))
    }

    /// Reads `dovecot-keywords`; if it is gone or empty while the index remembers keywords,
    /// restores it from the index (reported as a repair).
    fn load_keywords(&self, index: Option<&Index>) -> Result<Keywords, Error> {
        let found = Keywords::read(&self.root)?;
        let remembered = index.filter(|i| !i.keywords.is_empty());
        match (found, remembered) {
            (Some(table), _) if !table.is_empty() => Ok(table),
            (found, Some(index)) => {
                let table = Keywords::parse(&index.keywords);
                let why = if found.is_some() {
                    "dovecot-keywords is empty"
                } else {
                    "dovecot-keywords is missing"
                };
                repair::report(&self.root, why, "restored it from roost.index");
                table.write(&self.root)?;
                Ok(table)
            }
            (found, None) => Ok(found.unwrap_or_default()),
        }
    }

    fn write_index(&mut self, stamps: Stamps) -> Result<(), Error> {
        let Some(list) = &self.uidlist else {
            return Ok(());
        };
        let records = self
            .files
            .iter()
            .map(|(uid, e)| IndexRecord {
                uid: *uid,
                flags: e.name.flags.bits(),
                keywords: keyword_bits(e),
                size: e.name.size.unwrap_or(e.size),
                date: e.date,
                file: e.file.clone(),
                modseq: e.modseq,
            })
            .collect();
        let index = Index {
            uidvalidity: list.uidvalidity,
            uidnext: list.uidnext,
            cur: stamps.cur,
            new: stamps.new,
            uidlist: stamps.uidlist,
            records,
            keywords: self.keywords.render(),
            highestmodseq: self.highestmodseq,
        };
        index.write(&self.root)?;
        // The index says it all now: the journal starts over with the next flag change.
        journal::remove(&self.root);
        self.index_id = Some(journal::index_id(&index));
        self.journal_at = 0;
        Ok(())
    }

    /// Applies changes other sessions journaled; false if one does not fit this view (the
    /// caller then falls back to the index or a listing).
    fn apply_journal(&mut self, records: &[journal::Record]) -> bool {
        for r in records {
            match r.change {
                journal::Change::Removed => {
                    if self.files.remove(&r.uid).is_none() {
                        return false;
                    }
                }
                journal::Change::Flags | journal::Change::Added { .. } => {
                    let Some(name) = MaildirName::parse(&r.file) else {
                        return false;
                    };
                    let entry = match (r.change, self.files.get_mut(&r.uid)) {
                        (journal::Change::Flags, Some(entry)) => entry,
                        (journal::Change::Added { size, date }, None) => {
                            if let Some(list) = self.uidlist.as_mut() {
                                list.uidnext = list.uidnext.max(r.uid.saturating_add(1));
                            }
                            self.files.entry(r.uid).or_insert(Entry {
                                place: Place::Cur,
                                file: String::new(),
                                name: name.clone(),
                                size,
                                date,
                                modseq: 0,
                            })
                        }
                        _ => return false,
                    };
                    entry.place = Place::Cur;
                    entry.file = r.file.clone();
                    entry.name = name;
                    entry.modseq = r.modseq;
                }
            }
            self.highestmodseq = self.highestmodseq.max(r.modseq);
        }
        true
    }

    /// The journal fast path: the journal's new records account for exactly what changed
    /// since this view.
    fn catch_up_from_journal(&mut self, now: Stamps) -> bool {
        let (Some(id), Some(_)) = (self.index_id, self.current) else {
            return false;
        };
        if now.cur == Stamp::default() || now.uidlist == Stamp::default() {
            return false;
        }
        let Some((records, end)) = journal::read(&self.root, id, self.journal_at) else {
            return false;
        };
        let explains = records.last().is_some_and(|r| Stamps::from(r.after) == now);
        if !explains || !self.apply_journal(&records) {
            return false;
        }
        self.journal_at = end;
        self.current = Some(now);
        true
    }

    /// After a change under the lock (STORE, APPEND, EXPUNGE): journal it instead of
    /// rewriting the index; the index is rewritten when the journal grew long or keywords were
    /// added (the journal does not carry the keyword table).
    pub(super) fn journal_changes(
        &mut self,
        changes: &[(Uid, journal::Change)],
        new_keywords: bool,
    ) -> Result<(), Error> {
        let usable = self.index_id.is_some() && self.journal_at < journal::MAX_LEN;
        if new_keywords || !usable {
            return self.commit_view();
        }
        let after = self.stamps();
        let records: Vec<journal::Record> = changes
            .iter()
            .map(|(uid, change)| journal::Record {
                change: *change,
                uid: *uid,
                modseq: self.files.get(uid).map_or(self.highestmodseq, |e| e.modseq),
                after: after.into(),
                file: self
                    .files
                    .get(uid)
                    .map(|e| e.file.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let id = self.index_id.unwrap_or_default();
        match journal::append(&self.root, id, &records) {
            Ok(end) => {
                self.journal_at = end;
                self.current = Some(after);
                Ok(())
            }
            Err(_) => self.commit_view(),
        }
    }

    /// Reads the uidlist, repairing what it can and logging what it did; the flag says it had to be started afresh (and that was reported).
    fn load_uidlist(&mut self, scanned: &[Entry]) -> Result<(Uidlist, bool), Error> {
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
                let fresh = scanned.is_empty() && marker.is_none() && self.uidlist.is_none();
                let kept_uids = scanned.iter().all(|e| e.name.uid.is_some());
                let uidvalidity = match (marker, kept_uids) {
                    (Some(v), true) => v,
                    _ => new_uidvalidity(marker),
                };
                if !fresh {
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
}

/// The keyword letters of a message as index bits.
fn keyword_bits(entry: &Entry) -> u32 {
    entry
        .name
        .keyword_letters
        .iter()
        .fold(0u32, |bits, l| bits | 1 << (*l as u32 - 'a' as u32))
}

/// Size and date from the index when it knows the message, else from a stat.
fn fill_size_and_date(root: &Path, entry: &mut Entry, cached: Option<&IndexRecord>) {
    match cached {
        Some(r) => {
            entry.size = r.size;
            entry.date = r.date;
        }
        None => {
            let path = entry.path(root);
            entry.size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            entry.date = Stamp::of(&path);
        }
    }
}
