//! Bringing a maildir's view up to date: from a current index without touching the messages,
//! or by listing `cur/` and `new/`, numbering what is new (`numbering.rs`), and repairing what
//! is lost.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::filename::{self, MaildirName};
use super::files::Files;
use super::journal;
use super::keywords::Keywords;
use super::uidlist::{self, Uidlist};
use super::{scan, Entry, Maildir, Place, UIDVALIDITY_MARKER};
use crate::durable::sync_dir;
use crate::index::{self, Index, IndexRecord, Mapped, Record, Stamp};
use crate::mailbox::{next_modseq, Changes, Delta, Uid};
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

/// What syncs took in from elsewhere and the shared view has not heard of yet.
#[derive(Debug, Default)]
pub(super) enum Outside {
    /// Nothing.
    #[default]
    Nothing,
    /// These messages changed, arrived or left (from another session's journal records, or
    /// an index that differs from this view in them only).
    Messages(BTreeSet<Uid>),
    /// Anything may have (the folder was listed, or UIDVALIDITY changed).
    Everything,
}

impl Outside {
    /// Adds messages that changed.
    fn add(&mut self, uids: impl IntoIterator<Item = Uid>) {
        match self {
            Self::Nothing => *self = Self::Messages(uids.into_iter().collect()),
            Self::Messages(known) => known.extend(uids),
            Self::Everything => {}
        }
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
        if std::mem::take(&mut self.uidlist_stale) {
            self.write_uidlist()?;
        }
        let stamps = self.stamps();
        self.write_index(stamps)?;
        self.current = Some(stamps);
        Ok(())
    }

    /// The sync proper; the caller holds the lock. Cheapest first: nothing changed, another
    /// session's journaled flag changes, a current index; else list the folder. What it takes
    /// in is noted in `outside` for the shared view.
    pub(super) fn sync_locked(&mut self) -> Result<(), Error> {
        let before = self.stamps();
        if self.unchanged() {
            // Nothing changed since this session last looked: no index read, no listing.
            return Ok(());
        }
        if self.catch_up_from_journal(before) {
            // Another session changed flags: its journal records say how, nothing else moved.
            return Ok(());
        }
        let index = self.read_index()?;
        if let Some(index) = &index {
            if self.load_current_index(index, before)? {
                return Ok(());
            }
        }
        self.outside = Outside::Everything;
        self.list_folder(index.as_deref(), before)
    }

    /// Hands over what syncs took in from elsewhere since the last call.
    pub(super) fn take_outside(&mut self) -> Result<Option<Changes>, Error> {
        Ok(match std::mem::take(&mut self.outside) {
            Outside::Nothing => None,
            Outside::Everything => Some(Changes::All),
            Outside::Messages(uids) => {
                let Some(list) = &self.uidlist else {
                    return Ok(None);
                };
                let (present, removed) = uids
                    .iter()
                    .partition::<Vec<Uid>, _>(|u| self.files.contains(**u));
                Some(Changes::Some(Delta {
                    uidvalidity: list.uidvalidity,
                    uidnext: list.uidnext,
                    highestmodseq: self.highestmodseq.max(1),
                    present: self.infos(&present),
                    removed,
                }))
            }
        })
    }

    /// Takes the view from the index plus the flag changes journaled since it was written, if
    /// together they describe the folder as it is (`before`); false if the folder must be listed.
    fn load_current_index(&mut self, index: &Arc<Mapped>, before: Stamps) -> Result<bool, Error> {
        let header = *index.header();
        let id = journal::index_id(&header);
        let (journaled, journal_end) = journal::read(&self.root, id, 0).unwrap_or_default();
        let current = match journaled.last() {
            Some(r) => Stamps::from(r.after),
            None => Stamps {
                cur: header.cur,
                new: header.new,
                uidlist: header.uidlist,
            },
        };
        let marker = self
            .root
            .join(format!("{UIDVALIDITY_MARKER}{:08x}", header.uidvalidity));
        let trusted = before.cur != Stamp::default() && before.uidlist != Stamp::default();
        if current != before || !trusted || !marker.exists() {
            return Ok(false);
        }
        let uidvalidity_before = self.uidlist.as_ref().map(|l| l.uidvalidity);
        let previous = self.load_index(index)?;
        if !self.apply_journal(&journaled) {
            return Ok(false);
        }
        if uidvalidity_before == Some(header.uidvalidity) {
            self.outside
                .add(differing(&previous, &Files::from_index(index.clone())));
            self.outside.add(journaled.iter().map(|r| r.uid));
        } else {
            self.outside = Outside::Everything;
        }
        self.index_id = Some(id);
        self.journal_at = journal_end;
        self.current = Some(before);
        Ok(true)
    }

    /// The slow path: lists `cur/` and `new/`, numbers what is new, writes the uidlist if it
    /// changed, then the index describing the folder as listed.
    fn list_folder(&mut self, index: Option<&Mapped>, before: Stamps) -> Result<(), Error> {
        self.clean_tmp();
        let mut changed = None;
        let scanned = self.list_cur(index, &mut changed)?;
        let (known, rebuilt) = self.load_uidlist(&scanned)?;
        let (mut files, uidlist, renamed) = self.number(scanned, &known, !rebuilt)?;
        for entry in files.values_mut().filter(|e| e.modseq == 0) {
            // New mail from new/.
            entry.modseq = self.sync_modseq(&mut changed);
        }
        if uidlist != known {
            sync_dir(&self.cur())?;
            uidlist.write(&self.root)?;
        }
        self.keywords = self.load_keywords(index.map(Mapped::keywords))?;
        self.files = Files::from_entries(files);
        self.uidlist = Some(Uidlist {
            entries: Default::default(),
            ..uidlist
        });
        self.describe_listed(before, renamed)
    }

    /// Lists `cur/`, taking size, date and MODSEQ from the index where it knows a message with
    /// the same flags; a message whose flags changed behind our back gets this sync's MODSEQ.
    fn list_cur(
        &mut self,
        index: Option<&Mapped>,
        changed: &mut Option<u64>,
    ) -> Result<Vec<Entry>, Error> {
        let cached: HashMap<&str, Record<'_>> = index
            .iter()
            .flat_map(|i| i.iter())
            .filter_map(|r| Some((r.file().split([',', ':']).next()?, r)))
            .collect();
        let mut scanned = scan(&self.root, Place::Cur)?;
        if let Some(index) = index {
            self.highestmodseq = self.highestmodseq.max(index.header().highestmodseq);
        }
        for entry in &mut scanned {
            let record = cached.get(entry.key());
            fill_size_and_date(&self.root, entry, record);
            entry.modseq = match record {
                // Flags as the index knew them: the message keeps its MODSEQ.
                Some(r) if r.flags == entry.flags.bits() && r.keywords == entry.keywords => {
                    r.modseq
                }
                // Changed behind our back (or unknown): one new MODSEQ for this sync.
                _ => self.sync_modseq(changed),
            };
        }
        Ok(scanned)
    }

    /// The one new MODSEQ a listing gives every changed or new message, taken at the first.
    fn sync_modseq(&mut self, changed: &mut Option<u64>) -> u64 {
        *changed.get_or_insert_with(|| {
            self.highestmodseq = next_modseq(self.highestmodseq);
            self.highestmodseq
        })
    }

    /// Writes the index for the view just listed. Our own renames changed `cur/`: then it
    /// records an unknown stamp, so the next open lists `cur/` once more instead of trusting a
    /// stamp that could hide someone else's change.
    fn describe_listed(&mut self, before: Stamps, renamed: bool) -> Result<(), Error> {
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
        Ok(())
    }

    /// Removes what crashed deliveries left in `tmp/` (neither accessed nor modified for 36
    /// hours, as Dovecot does: a delivery still writing is never that old).
    fn clean_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        use std::os::unix::fs::MetadataExt;
        let limit = std::time::SystemTime::now() - TMP_LIFETIME;
        let limit = limit
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for entry in entries.flatten() {
            // Access time as well as modification time, as Dovecot does: an APPEND staged
            // here has its mtime set to the message's INTERNALDATE (possibly years ago) while
            // it waits for the lock, but was created, so accessed, just now.
            let old = entry
                .metadata()
                .is_ok_and(|m| m.atime().max(m.mtime()) < limit);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Opens the index; a corrupt one is reported and ignored (the sync rebuilds it).
    fn read_index(&self) -> Result<Option<Arc<Mapped>>, Error> {
        match Mapped::open(&self.root)? {
            Some(Ok(index)) => Ok(Some(Arc::new(index))),
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

    /// Takes the whole view from a current index (read in place, nothing copied); returns the
    /// view it replaced.
    fn load_index(&mut self, index: &Arc<Mapped>) -> Result<Files, Error> {
        let header = index.header();
        self.highestmodseq = self.highestmodseq.max(header.highestmodseq);
        let mut list = Uidlist::new(header.uidvalidity);
        list.uidnext = header.uidnext;
        self.keywords = self.load_keywords(Some(index.keywords()))?;
        self.uidlist = Some(list);
        Ok(std::mem::replace(
            &mut self.files,
            Files::from_index(index.clone()),
        ))
    }

    /// Reads `dovecot-keywords`; if it is gone or empty while the index remembers keywords,
    /// restores it from the index (reported as a repair).
    fn load_keywords(&self, remembered: Option<&str>) -> Result<Keywords, Error> {
        let found = Keywords::read(&self.root)?;
        let remembered = remembered.filter(|text| !text.is_empty());
        match (found, remembered) {
            (Some(table), _) if !table.is_empty() => Ok(table),
            (found, Some(text)) => {
                let table = Keywords::parse(text);
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
                uid,
                flags: e.flags.bits(),
                keywords: e.keywords,
                size: e.size,
                date: e.date,
                file: e.file.to_string(),
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
        let written = index.write(&self.root)?;
        drop(index);
        // The index says it all now: the journal starts over with the next flag change.
        journal::remove(&self.root);
        self.index_id = Some(journal::index_id(written.header()));
        self.journal_at = 0;
        // What was written is the view: its records are read from the map from now on.
        self.files = Files::from_index(Arc::new(written));
        Ok(())
    }

    /// Applies changes other sessions journaled; false if one does not fit this view (the
    /// caller then falls back to the index or a listing).
    fn apply_journal(&mut self, records: &[journal::Record]) -> bool {
        for r in records {
            match r.change {
                journal::Change::Removed => {
                    if self.files.remove(r.uid).is_none() {
                        return false;
                    }
                }
                journal::Change::Flags | journal::Change::Added { .. } => {
                    let Some(name) = MaildirName::parse(&r.file) else {
                        return false;
                    };
                    let (size, date) = match (r.change, self.files.get(r.uid)) {
                        (journal::Change::Flags, Some(entry)) => (entry.size, entry.date),
                        (journal::Change::Added { size, date }, None) => {
                            if let Some(list) = self.uidlist.as_mut() {
                                list.uidnext = list.uidnext.max(r.uid.saturating_add(1));
                            }
                            (size, date)
                        }
                        _ => return false,
                    };
                    let entry = Entry {
                        size,
                        date,
                        modseq: r.modseq,
                        ..Entry::new(Place::Cur, r.file.clone(), &name)
                    };
                    self.files.insert(r.uid, entry);
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
        if !explains {
            return false;
        }
        if !self.apply_journal(&records) {
            // Partly applied: the view no longer says which messages the table lacks.
            self.outside = Outside::Everything;
            return false;
        }
        self.outside.add(records.iter().map(|r| r.uid));
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
        let usable = self.index_id.is_some() && self.journal_at < journal::limit(self.files.len());
        if new_keywords || !usable {
            return self.commit_view();
        }
        let after = self.stamps();
        let records: Vec<journal::Record> = changes
            .iter()
            .map(|(uid, change)| journal::Record {
                change: *change,
                uid: *uid,
                modseq: self
                    .files
                    .get(*uid)
                    .map_or(self.highestmodseq, |e| e.modseq),
                after: after.into(),
                file: self
                    .files
                    .get(*uid)
                    .map(|e| e.file.to_string())
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
}

/// Size and date from the index when it knows the message, else from a stat.
pub(super) fn fill_size_and_date(root: &Path, entry: &mut Entry, cached: Option<&Record<'_>>) {
    match cached {
        Some(r) => {
            entry.size = r.size;
            entry.date = r.date;
        }
        None => {
            let path = entry.path(root);
            // The name's `,S=` is the size; a stat only for names without one.
            if filename::field::<u64>(&entry.file, "S=").is_none() {
                entry.size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            }
            entry.date = Stamp::of(&path);
        }
    }
}

/// The messages whose files differ between two views of one folder (changed, new or gone).
fn differing(before: &Files, after: &Files) -> BTreeSet<Uid> {
    let mut differ = BTreeSet::new();
    let mut old = before.iter().peekable();
    let mut new = after.iter().peekable();
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return differ,
            (Some((a, x)), Some((b, y))) if a == b => {
                if x.file != y.file {
                    differ.insert(*a);
                }
                old.next();
                new.next();
            }
            (Some((a, _)), Some((b, _))) if a < b => {
                differ.insert(*a);
                old.next();
            }
            (Some((a, _)), None) => {
                differ.insert(*a);
                old.next();
            }
            (_, Some((b, _))) => {
                differ.insert(*b);
                new.next();
            }
        }
    }
}
