//! Maildir folders: `cur/ new/ tmp/`, UIDs in `dovecot-uidlist` and in the file names,
//! keywords in `dovecot-keywords`, flags in the `:2,` suffix.
//!
//! Durable order for every write, so a crash at any point leaves nothing a sync cannot repair:
//! message to `tmp/`, fsync, rename into `cur/` (or `new/`), fsync the directory, then the
//! uidlist (itself written temp + fsync + rename). A message whose name carries `,U=` is never
//! renumbered, even if the uidlist that should list it was lost or torn.

pub mod filename;
mod files;
pub mod folders;
pub mod journal;
pub mod keywords;
mod numbering;
mod sync;
pub mod uidlist;

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use self::filename::MaildirName;
use self::keywords::Keywords;
use self::uidlist::Uidlist;
use crate::cache::FieldCache;
use crate::durable::sync_dir;
use crate::index::{Mapped, Stamp};
use crate::mailbox::{
    counted_crlf_size, Changes, FlagChange, Flags, Mailbox, MessageInfo, MessageReader, Snapshot,
    SyncHeader, Uid,
};
use crate::quota::Quota;
use crate::staging::{Staged, Staging};
use crate::Error;

/// Prefix of the empty marker file whose name records UIDVALIDITY a second time.
const UIDVALIDITY_MARKER: &str = "roost-uidvalidity.";
/// The field cache file.
const CACHE_FILE: &str = "roost.cache";
/// The lock file serialising writers of one folder (among roost processes).
const LOCK_FILE: &str = "roost.lock";

/// One maildir folder on disk.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    /// The messages in `cur/` as of the last sync, by UID.
    files: files::Files,
    uidlist: Option<Uidlist>,
    keywords: Keywords,
    cache: Option<FieldCache>,
    highestmodseq: u64,
    /// The stamps of `cur/`, `new/` and the uidlist that `files` describes; while they hold,
    /// a sync reads nothing.
    current: Option<sync::Stamps>,
    /// The index this view was built from or wrote (see `journal`).
    index_id: Option<u64>,
    /// How far this view has read the journal.
    journal_at: u64,
    /// What syncs took in from elsewhere since [`Mailbox::outside_changes`] last asked.
    outside: sync::Outside,
    /// The uidlist still lists expunged messages: rewritten with the next index, not on every
    /// EXPUNGE (it costs O(messages); entries for gone files are harmless and dropped then).
    uidlist_stale: bool,
    /// Where the UIDVALIDITY values of this folder's tree are handed out (see
    /// [`crate::uidvalidity`]); `None` for a folder opened on its own.
    uidvalidity_file: Option<PathBuf>,
    /// The owner's quota, checked before a message is added and charged for each change.
    quota: Option<Quota>,
}

/// A message file as found on disk: made from the index record when asked for (see
/// `files`), or kept for messages that changed since the index was written. Flags and
/// keywords as bits; the rest of what the name says is parsed again where needed (renames,
/// numbering).
#[derive(Debug, Clone)]
struct Entry {
    /// Its actual file name.
    file: Box<str>,
    /// Size in bytes (the name's `,S=`, else from the index or a stat).
    size: u64,
    /// Internal date: the file's mtime (from the index or a stat).
    date: Stamp,
    /// MODSEQ.
    modseq: u64,
    /// Keyword letters `a`..`z` as bits 0..25.
    keywords: u32,
    /// System flags.
    flags: Flags,
    /// Its directory.
    place: Place,
}

/// What a session knows of a message without opening it or reading its name.
#[derive(Debug, Clone, Copy)]
struct Meta {
    size: u64,
    date: Stamp,
    modseq: u64,
    /// Keyword letters `a`..`z` as bits 0..25.
    keywords: u32,
    flags: Flags,
}

/// The maildir subdirectory a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Cur,
    New,
    Tmp,
}

impl Entry {
    /// A file whose name says `name`; size, date and MODSEQ are filled in by the caller.
    fn new(place: Place, file: String, name: &MaildirName) -> Self {
        Self {
            file: file.into_boxed_str(),
            size: name.size.unwrap_or(0),
            date: Stamp::default(),
            modseq: 0,
            keywords: letter_bits(&name.keyword_letters),
            flags: name.flags,
            place,
        }
    }

    /// A file named `file` in `place` of which `meta` is known.
    fn with_meta(file: Box<str>, place: Place, meta: Meta) -> Self {
        let Meta {
            size,
            date,
            modseq,
            keywords,
            flags,
        } = meta;
        Self {
            file,
            size,
            date,
            modseq,
            keywords,
            flags,
            place,
        }
    }

    /// What is known of it besides its name.
    fn meta(&self) -> Meta {
        Meta {
            size: self.size,
            date: self.date,
            modseq: self.modseq,
            keywords: self.keywords,
            flags: self.flags,
        }
    }

    /// What the file name says, parsed again (an entry is only made from a name that parses).
    fn name(&self) -> Result<MaildirName, Error> {
        MaildirName::parse(&self.file).ok_or(Error::Unsupported("maildir name"))
    }

    /// The unique part of the name (up to the first `,` or `:`), the message's identity.
    fn key(&self) -> &str {
        filename::key_of(&self.file)
    }

    /// The keyword letters, in order.
    fn letters(&self) -> impl Iterator<Item = char> {
        letters_of(self.keywords)
    }

    fn path(&self, root: &Path) -> PathBuf {
        let sub = match self.place {
            Place::Cur => "cur",
            Place::New => "new",
            Place::Tmp => "tmp",
        };
        let mut path = root.join(sub);
        path.push(&*self.file);
        path
    }
}

impl Maildir {
    /// The same folder, as a member of the tree rooted at `tree`: its UIDVALIDITY values come
    /// from the tree's one issuer, so a folder deleted and created again gets a new one.
    pub fn in_tree(mut self, tree: &Path) -> Self {
        self.uidvalidity_file = Some(tree.join(crate::uidvalidity::FILE_NAME));
        self
    }

    /// The same folder, under its owner's quota (`None`: unlimited).
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// A UIDVALIDITY above any this folder had and any its tree handed out.
    fn new_uidvalidity(&self, previous: Option<u32>) -> u32 {
        let floor = previous.map_or(1, |p| p.saturating_add(1));
        crate::uidvalidity::issue(self.uidvalidity_file.as_deref(), floor)
    }

    /// A maildir rooted at `root` (not touched until used).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files: files::Files::default(),
            uidlist: None,
            keywords: Keywords::default(),
            cache: None,
            highestmodseq: 0,
            current: None,
            index_id: None,
            journal_at: 0,
            outside: sync::Outside::Nothing,
            uidlist_stale: false,
            uidvalidity_file: None,
            quota: None,
        }
    }

    /// The folder's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the folder and its `cur/ new/ tmp/` with mode 0700 where missing.
    pub fn ensure(&self) -> Result<(), Error> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for sub in ["cur", "new", "tmp"] {
            let dir = self.root.join(sub);
            builder.create(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    /// Stores a message durably in `new/`, as an MTA would, and returns its file name.
    pub fn deliver(&self, message: &mut dyn Read) -> Result<String, Error> {
        self.ensure()?;
        let staged = Staging::new(self.root.join("tmp")).write(message, None)?;
        let name = format!(
            "{},S={},W={}",
            staged.key(),
            staged.size(),
            staged.crlf_size()
        );
        let target = self.root.join("new").join(&name);
        fs::rename(staged.path(), &target).map_err(|e| Error::io(&target, e))?;
        staged.taken();
        sync_dir(&self.root.join("new"))?;
        Ok(name)
    }

    fn lock(&self) -> Result<File, Error> {
        crate::durable::lock_exclusive(&self.root.join(LOCK_FILE))
    }

    fn cur(&self) -> PathBuf {
        self.root.join("cur")
    }

    /// Renames a message to its canonical `cur/` name for `name`.
    fn rename_entry(&self, entry: &Entry, name: MaildirName) -> Result<Entry, Error> {
        let moved = Entry {
            size: entry.size,
            date: entry.date,
            modseq: entry.modseq,
            ..Entry::new(Place::Cur, name.file_name(), &name)
        };
        let (from, to) = (entry.path(&self.root), moved.path(&self.root));
        if from != to {
            fs::rename(&from, &to).map_err(|e| Error::io(from, e))?;
        }
        Ok(moved)
    }

    /// Writes the uidlist for the current messages (the in-memory list keeps only its header:
    /// the entries are derived from `files`, so a folder opened from its index builds them only
    /// when it writes).
    fn write_uidlist(&self) -> Result<(), Error> {
        let Some(header) = &self.uidlist else {
            return Ok(());
        };
        let mut list = Uidlist::new(header.uidvalidity);
        list.uidnext = header.uidnext;
        for (uid, e) in self.files.iter() {
            let base = filename::base_of(&e.file);
            list.entries
                .insert(e.key().to_string(), (uid, base.to_string()));
        }
        list.write(&self.root)
    }

    /// The folder's field cache, opened on first use (after a sync, which knows UIDVALIDITY).
    fn open_field_cache(&mut self) -> Option<&mut FieldCache> {
        let uidvalidity = self.uidlist.as_ref()?.uidvalidity;
        let path = self.root.join(CACHE_FILE);
        Some(
            self.cache
                .get_or_insert_with(|| FieldCache::open(path, uidvalidity)),
        )
    }

    /// A new MODSEQ, above every earlier one.
    fn bump_modseq(&mut self) -> u64 {
        self.highestmodseq = crate::mailbox::next_modseq(self.highestmodseq);
        self.highestmodseq
    }

    /// What the last sync established about the folder as a whole.
    fn sync_header(&self) -> Result<SyncHeader, Error> {
        let uidlist = self
            .uidlist
            .as_ref()
            .ok_or(Error::Unsupported("snapshot before sync"))?;
        Ok(SyncHeader {
            uidvalidity: uidlist.uidvalidity,
            uidnext: uidlist.uidnext,
            highestmodseq: self.highestmodseq.max(1),
        })
    }

    /// Brings the view up to date with the disk: three stats when nothing moved.
    fn update(&mut self) -> Result<(), Error> {
        if self.uidlist.is_none() {
            self.ensure()?;
        } else if self.unchanged() {
            return Ok(());
        }
        let _lock = self.lock()?;
        self.sync_locked()
    }

    /// The messages among `uids` (each once, in UID order) as the view has them now.
    fn infos(&self, uids: &[Uid]) -> Vec<MessageInfo> {
        let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
        wanted
            .into_iter()
            .filter_map(|uid| Some(self.info(uid, self.files.meta(uid)?)))
            .collect()
    }

    /// What a session knows of one message without opening it.
    fn info(&self, uid: Uid, entry: Meta) -> MessageInfo {
        MessageInfo {
            uid,
            flags: entry.flags,
            keywords: letters_of(entry.keywords)
                .filter_map(|l| self.keywords.name(l).map(str::to_string))
                .collect(),
            size: entry.size,
            internal_date: entry.date.to_system_time(),
            modseq: entry.modseq.max(1),
        }
    }

    fn letters_for(&mut self, keywords: &BTreeSet<String>) -> Result<Vec<char>, Error> {
        let mut letters = Vec::new();
        let mut changed = false;
        for keyword in keywords {
            if let Some((letter, new)) = self.keywords.letter(keyword) {
                letters.push(letter);
                changed |= new;
            }
        }
        if changed {
            self.keywords.write(&self.root)?;
        }
        Ok(letters)
    }
}

impl Mailbox for Maildir {
    fn sync(&mut self) -> Result<Snapshot, Error> {
        let mut messages = Vec::with_capacity(self.files.len());
        let header = self.sync_each(&mut |m| messages.push(m))?;
        Ok(Snapshot::of(header, messages))
    }

    fn sync_each(&mut self, each: &mut dyn FnMut(MessageInfo)) -> Result<SyncHeader, Error> {
        self.update()?;
        let header = self.sync_header()?;
        for (uid, meta) in self.files.metas() {
            each(self.info(uid, meta));
        }
        Ok(header)
    }

    fn count_hint(&self) -> usize {
        self.files.len()
    }

    fn outside_changes(&mut self, sync: bool) -> Result<Option<Changes>, Error> {
        if sync {
            self.update()?;
        }
        self.take_outside()
    }

    fn message_info(&mut self, uid: Uid) -> Result<Option<MessageInfo>, Error> {
        Ok(self.files.meta(uid).map(|meta| self.info(uid, meta)))
    }

    fn open_message(&self, uid: Uid) -> Result<Box<dyn MessageReader>, Error> {
        let entry = self.files.get(uid).ok_or(Error::NoSuchMessage(uid))?;
        let path = entry.path(&self.root);
        match File::open(&path) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Another process changed its flags (renamed it): find it by its unique key.
                let moved = scan(&self.root, Place::Cur)?
                    .into_iter()
                    .find(|e| e.key() == entry.key());
                let path = moved.ok_or(Error::NoSuchMessage(uid))?.path(&self.root);
                match File::open(&path) {
                    Ok(file) => Ok(Box::new(file)),
                    // Expunged by another session meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchMessage(uid)),
                    Err(e) => Err(Error::io(path, e)),
                }
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn append(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &BTreeSet<String>,
        internal_date: Option<SystemTime>,
    ) -> Result<Uid, Error> {
        self.ensure()?;
        let staged = Staging::new(self.root.join("tmp")).write(message, internal_date)?;
        self.append_staged(staged, flags, keywords)
    }

    fn staging(&self) -> Option<Staging> {
        // A synced folder has its directories; only a first append creates them.
        if self.uidlist.is_none() {
            self.ensure().ok()?;
        }
        Some(Staging::new(self.root.join("tmp")))
    }

    fn append_staged(
        &mut self,
        staged: Staged,
        flags: Flags,
        keywords: &BTreeSet<String>,
    ) -> Result<Uid, Error> {
        // The staged file lies in tmp/: the folder exists.
        let _lock = self.lock()?;
        self.sync_locked()?;
        let (key, size) = (staged.key().to_string(), staged.size());
        let crlf_size = staged.crlf_size();
        if let Some(quota) = &self.quota {
            // Refused: the staged file is dropped, so removed.
            quota.admit(staged.crlf_size())?;
        }
        let uid = self.uidlist.as_ref().map_or(1, |l| l.uidnext);
        let mut name = MaildirName::parse(&format!("{key},S={size},W={}", staged.crlf_size()))
            .ok_or(Error::Unsupported("maildir name"))?;
        name.set_uid(uid);
        name.flags = flags;
        let keywords_before = self.keywords.render();
        name.keyword_letters = self.letters_for(keywords)?;
        let new_keywords = self.keywords.render() != keywords_before;
        let base = name.base.clone();
        let tmp_entry = Entry {
            size,
            date: Stamp::of(staged.path()),
            modseq: self.bump_modseq(),
            ..Entry::new(Place::Tmp, key, &name)
        };
        let entry = self.rename_entry(&tmp_entry, name)?;
        staged.taken();
        sync_dir(&self.cur())?;
        if let Some(quota) = &self.quota {
            quota.charge(crlf_size as i64, 1);
        }
        self.files.insert(uid, entry);
        if let Some(list) = self.uidlist.as_mut() {
            list.uidnext = uid + 1;
        }
        // One line appended, not the whole list rewritten (85 ms at 100,000 messages before).
        if Uidlist::append_line(&self.root, uid, &base).is_err() {
            self.write_uidlist()?;
        }
        let added = self.files.get(uid).map(|e| journal::Change::Added {
            size: e.size,
            date: e.date,
        });
        match added {
            Some(change) => self.journal_changes(&[(uid, change)], new_keywords)?,
            None => self.commit_view()?,
        }
        Ok(uid)
    }

    fn store(
        &mut self,
        uids: &[Uid],
        change: FlagChange,
        flags: Flags,
        keywords: &BTreeSet<String>,
    ) -> Result<Vec<MessageInfo>, Error> {
        let _lock = self.lock()?;
        self.sync_locked()?;
        let keywords_before = self.keywords.render();
        let letters: BTreeSet<char> = self.letters_for(keywords)?.into_iter().collect();
        let new_keywords = self.keywords.render() != keywords_before;
        let mut modseq = None;
        let mut renamed = Vec::new();
        for uid in uids {
            let Some(entry) = self.files.get(*uid) else {
                continue;
            };
            let had: BTreeSet<char> = entry.letters().collect();
            let (new_flags, new_letters) = change.apply((entry.flags, &had), (flags, &letters));
            if new_flags != entry.flags || new_letters != had {
                let mut updated = entry.name()?;
                updated.flags = new_flags;
                updated.keyword_letters = new_letters.into_iter().collect();
                let mut moved = self.rename_entry(&entry, updated)?;
                moved.modseq = *modseq.get_or_insert_with(|| self.bump_modseq());
                self.files.insert(*uid, moved);
                renamed.push(*uid);
            }
        }
        if !renamed.is_empty() {
            let changes: Vec<_> = renamed
                .iter()
                .map(|u| (*u, journal::Change::Flags))
                .collect();
            self.journal_changes(&changes, new_keywords)?;
        }
        Ok(self.infos(uids))
    }

    fn field_cache(&mut self) -> Option<&mut FieldCache> {
        self.open_field_cache()
    }

    fn highestmodseq(&self) -> Option<u64> {
        Some(self.highestmodseq.max(1))
    }

    fn watch_path(&self) -> &Path {
        &self.root
    }

    fn mapped_index(&self) -> Option<&Arc<Mapped>> {
        self.files.base()
    }

    fn mapped_messages(&self) -> Option<crate::mailbox::MappedMessages> {
        Some(crate::mailbox::MappedMessages {
            index: Arc::clone(self.files.base()?),
            keyword_names: self.keywords.names().to_vec(),
            header: self.sync_header().ok()?,
            changed: self.files.changed_uids().collect(),
        })
    }

    fn recent_mark(&self) -> Option<crate::recent::RecentMark> {
        Some(crate::recent::RecentMark::new(
            self.root.join(crate::recent::FILE_NAME),
        ))
    }

    fn crlf_size(&mut self, uid: Uid) -> Result<u64, Error> {
        match self
            .files
            .get(uid)
            .and_then(|e| filename::field(&e.file, "W="))
        {
            Some(size) => Ok(size),
            None => counted_crlf_size(self, uid),
        }
    }

    fn expunge(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, Error> {
        let _lock = self.lock()?;
        self.sync_locked()?;
        self.bump_modseq();
        let mut removed = Vec::new();
        let mut freed = 0u64;
        for uid in uids {
            let Some(entry) = self.files.remove(*uid) else {
                continue;
            };
            let path = entry.path(&self.root);
            match fs::remove_file(&path) {
                Ok(()) => removed.push(*uid),
                Err(e) if e.kind() == io::ErrorKind::NotFound => removed.push(*uid),
                Err(e) => {
                    self.charge_removed(freed, removed.len());
                    return Err(Error::io(path, e));
                }
            }
            freed += filename::field(&entry.file, "W=").unwrap_or(entry.size);
        }
        self.charge_removed(freed, removed.len());
        sync_dir(&self.cur())?;
        self.uidlist_stale = true;
        let changes: Vec<_> = removed
            .iter()
            .map(|u| (*u, journal::Change::Removed))
            .collect();
        self.journal_changes(&changes, false)?;
        Ok(removed)
    }
}

impl Maildir {
    /// Gives back to the quota what expunged messages took.
    fn charge_removed(&self, bytes: u64, messages: usize) {
        if let Some(quota) = &self.quota {
            quota.charge(-(bytes as i64), -(messages as i64));
        }
    }
}

/// Lists the messages in `cur/` or `new/`.
fn scan(root: &Path, place: Place) -> Result<Vec<Entry>, Error> {
    let dir = root.join(if place == Place::New { "new" } else { "cur" });
    let dir = dir.as_path();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(name) = MaildirName::parse(&file) {
            found.push(Entry::new(place, file, &name));
        }
    }
    Ok(found)
}

/// The index bit of keyword letter `a`..`z` (0 for anything else).
fn letter_bit(letter: char) -> u32 {
    match letter {
        'a'..='z' => 1 << (letter as u32 - 'a' as u32),
        _ => 0,
    }
}

/// The keyword letters of bits 0..25, in order.
fn letters_of(bits: u32) -> impl Iterator<Item = char> {
    ('a'..='z').filter(move |l| bits & letter_bit(*l) != 0)
}

/// Keyword letters as bits 0..25, as the index and [`Entry`] keep them.
fn letter_bits(letters: &[char]) -> u32 {
    letters.iter().fold(0, |bits, l| bits | letter_bit(*l))
}
