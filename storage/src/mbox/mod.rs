//! mbox folders (mboxrd): one file per folder, messages separated by `From ` lines.
//!
//! UIDs live in the mail itself (`X-UID:` per message, `X-IMAPbase: UIDVALIDITY UIDNEXT` in the
//! first), as UW-imapd and Dovecot write them, so other readers and servers keep them. Messages
//! an MTA appended since the last rewrite have no `X-UID` yet: their UIDs are kept in a side file
//! until the next rewrite (expunge or flag change) writes them into the mail. Rewrites are whole:
//! new file beside the old, fsync, rename, fsync the directory; a kill at any point leaves the
//! old or the new mbox, never a mix. Every operation holds the dotlock and the fcntl lock.

pub mod date;
pub mod folders;
pub mod index;
pub mod lock;
pub mod parse;
pub mod reader;
mod state;

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use self::index::FileId;
use self::lock::{with_privileged_group, MboxLock};
use self::parse::{is_hidden_header, RawMessage};
use self::reader::{MessageView, ReadAt};
use self::state::UidState;
use crate::cache::FieldCache;
use crate::durable;
use crate::mailbox::{
    next_modseq, FlagChange, Flags, Mailbox, MessageInfo, MessageReader, Snapshot, Uid,
};
use crate::Error;

/// One mbox folder.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    state_path: PathBuf,
    uidvalidity: u32,
    uidnext: Uid,
    /// Messages in file order with their UIDs.
    messages: Vec<(Uid, RawMessage)>,
    /// The last scan and the file it described, to skip or shorten the next one.
    last_scan: Option<(FileId, parse::Scan)>,
    /// The open file the offsets in `messages` were found in, and its identity then. Every
    /// read of a message goes to it, so a rewrite that renamed a new file into place (another
    /// session's STORE or EXPUNGE) cannot make a FETCH or COPY return another message's bytes.
    held: Option<(FileId, Arc<File>)>,
    /// The file identity the index on disk describes.
    last_scan_on_disk: Option<FileId>,
    /// Whether recording X-IMAPbase in the mail was attempted already.
    based: bool,
    /// HIGHESTMODSEQ.
    highestmodseq: u64,
    /// Whether this is the INBOX spool the admin configured (see [`Mbox::spool_inbox`]).
    spool: bool,
    cache: Option<FieldCache>,
    /// The owner's quota: a new message is refused once it is full (the size of a message
    /// being written is not known ahead, so the last one may go over), and every change is
    /// charged.
    quota: Option<crate::quota::Quota>,
}

fn file_id(file: &File, path: &Path) -> Result<FileId, Error> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    Ok(FileId {
        inode: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
    })
}

impl Mbox {
    /// The mbox at `path`, keeping its side state (UIDs not yet written into the mail) in
    /// `state_path`, which should live in the user's own mail directory.
    pub fn new(path: impl Into<PathBuf>, state_path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            state_path: state_path.into(),
            uidvalidity: 0,
            uidnext: 1,
            messages: Vec::new(),
            last_scan: None,
            held: None,
            last_scan_on_disk: None,
            based: false,
            highestmodseq: 0,
            spool: false,
            cache: None,
            quota: None,
        }
    }

    /// The same mbox, under its owner's quota (`None`: unlimited).
    pub fn with_quota(mut self, quota: Option<crate::quota::Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// Marks this mbox as the INBOX spool of the mail location (`INBOX=/var/mail/%u`): the
    /// privileged group may create its dotlock, the file itself and a rewrite's temporary file
    /// there, and in a shared directory the file must be the session user's own.
    pub fn spool_inbox(mut self) -> Self {
        self.spool = true;
        self
    }

    /// Scans the mbox: not at all if unchanged, only the tail if something was appended (the
    /// last known `From ` line still where it was), else the whole file.
    fn scan(&mut self) -> Result<(FileId, parse::Scan, File), Error> {
        let path = self.path.clone();
        let io_err = |e| Error::io(&path, e);
        let mut file = open_nofollow(&self.path).map_err(io_err)?;
        let id = file_id(&file, &path)?;
        let previous = match self.last_scan.take() {
            Some(previous) => Some(previous),
            None => self.read_index(),
        };
        let scan = match previous {
            Some((old, scan)) if old == id => scan,
            Some((old, scan))
                if old.inode == id.inode && id.len > old.len && tail_intact(&mut file, &scan)? =>
            {
                let last = scan.messages.last().map_or(0, |m| m.from_line);
                file.seek(SeekFrom::Start(last)).map_err(io_err)?;
                let tail = parse::scan(&mut BufReader::new(&mut file)).map_err(io_err)?;
                let mut merged = scan;
                merged.messages.pop();
                merged
                    .messages
                    .extend(tail.messages.into_iter().map(|m| RawMessage {
                        from_line: m.from_line + last,
                        start: m.start + last,
                        end: m.end + last,
                        ..m
                    }));
                merged.len = last + tail.len;
                merged
            }
            _ => {
                // The checks above may have moved the file position.
                file.seek(SeekFrom::Start(0)).map_err(io_err)?;
                parse::scan(&mut BufReader::new(&mut file)).map_err(io_err)?
            }
        };
        Ok((id, scan, file))
    }

    /// Gives each message its MODSEQ: kept while its flags stay as they were, a new one (one per
    /// sync) when they changed or the message is new; then saves scan and MODSEQs to the index.
    fn assign_modseqs(
        &mut self,
        id: FileId,
        mut scan: parse::Scan,
        previous: HashMap<Uid, (Flags, BTreeSet<String>, u64)>,
    ) -> Result<(), Error> {
        let mut fresh = None;
        let mut changed = self.last_scan_on_disk != Some(id);
        for (i, (uid, m)) in self.messages.iter_mut().enumerate() {
            let before = previous
                .get(uid)
                .filter(|(f, k, modseq)| *modseq != 0 && *f == m.flags && *k == m.keywords);
            let modseq = match (m.modseq, before) {
                (_, Some((_, _, modseq))) => *modseq,
                (known, None) if known != 0 && previous.is_empty() => known,
                _ => *fresh.get_or_insert_with(|| {
                    self.highestmodseq = next_modseq(self.highestmodseq);
                    self.highestmodseq
                }),
            };
            m.modseq = modseq;
            self.highestmodseq = self.highestmodseq.max(modseq);
            if let Some(raw) = scan.messages.get_mut(i) {
                changed |= raw.modseq != modseq;
                raw.modseq = modseq;
            }
        }
        if changed {
            index::write(&self.index_path(), id, &scan)?;
            self.last_scan_on_disk = Some(id);
        }
        self.last_scan = Some((id, scan));
        Ok(())
    }

    /// Syncs under the lock: scans, numbers, and rewrites the mail at most once when the
    /// UIDs it records need fixing (the rewrite is followed by one more, final, sync).
    fn sync_locked(&mut self) -> Result<Snapshot, Error> {
        match self.sync_once(true)? {
            Some(snapshot) => Ok(snapshot),
            None => Ok(self.sync_once(false)?.unwrap_or_else(|| self.snapshot())),
        }
    }

    /// One sync; `None` when it rewrote the mail (allowed only if `may_rewrite`) and the
    /// caller must scan again.
    fn sync_once(&mut self, may_rewrite: bool) -> Result<Option<Snapshot>, Error> {
        let previous = self
            .messages
            .iter()
            .map(|(uid, m)| (*uid, (m.flags, m.keywords.clone(), m.modseq)))
            .collect();
        let (id, scan, file) = self.scan()?;
        let state = UidState::read(&self.state_path, &self.path)?;
        // A new mbox takes its UIDVALIDITY from the tree's issuer, beside the side files.
        let issuer = self
            .state_path
            .with_file_name(crate::uidvalidity::FILE_NAME);
        let numbering = state::number(&scan, &state, || {
            crate::uidvalidity::issue(Some(&issuer), 1)
        });
        self.report_renumbering(&numbering);
        let needs_rewrite = numbering.repaired > 0 || numbering.restarted;
        self.uidvalidity = numbering.uidvalidity;
        self.uidnext = numbering.uidnext;
        // The offsets and the file they are offsets into change together.
        self.messages = numbering.messages;
        self.held = Some((id, Arc::new(file)));
        let unbased = scan.imapbase.is_none() && !self.messages.is_empty() && !self.based;
        if may_rewrite && (needs_rewrite || unbased) {
            // A new mbox (delivered to by an MTA, never opened by roost or Dovecot), or UIDs
            // that had to be fixed: record UIDVALIDITY and the UIDs in the mail, so no side
            // file is needed to keep them. Where the directory forbids it (/var/mail without
            // the mail group), the side file alone keeps them.
            self.based = true;
            match self.rewrite(|_, m| Some((m.flags, m.keywords.clone()))) {
                Ok(()) => return Ok(None),
                Err(e) => {
                    tracing::debug!(mbox = %self.path.display(), "cannot record UIDs in the mail: {e}")
                }
            }
        }
        let fresh = UidState {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            pending: self.pending(),
        };
        if Some(&fresh) != state.as_ref() {
            fresh.write(&self.state_path)?;
        }
        self.assign_modseqs(id, scan, previous)?;
        Ok(Some(self.snapshot()))
    }

    /// Logs (as repairs) UIDs that a numbering could not trust.
    fn report_renumbering(&self, numbering: &state::Numbering) {
        if numbering.restarted {
            crate::repair::report(
                &self.path,
                "the UID space is exhausted",
                &format!(
                    "renumbered the messages under the new UIDVALIDITY {}",
                    numbering.uidvalidity
                ),
            );
        } else if numbering.repaired > 0 {
            crate::repair::report(
                &self.path,
                &format!(
                    "{} X-UID header(s) out of order or at or beyond UIDNEXT",
                    numbering.repaired
                ),
                "gave those messages new UIDs",
            );
        }
    }

    /// The view of the last sync.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            highestmodseq: self.highestmodseq.max(1),
            messages: self
                .messages
                .iter()
                .map(|(uid, m)| MessageInfo {
                    uid: *uid,
                    flags: m.flags,
                    keywords: m.keywords.clone(),
                    size: m.size,
                    internal_date: date::parse_from_line(&m.envelope)
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    modseq: m.modseq.max(1),
                })
                .collect(),
        }
    }

    /// Rewrites the whole mbox: `change` gives each message's new flags, or `None` to drop it.
    fn rewrite(
        &mut self,
        change: impl Fn(Uid, &RawMessage) -> Option<(Flags, BTreeSet<String>)>,
    ) -> Result<(), Error> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.roost-rewrite.{}", std::process::id()));
        let spool = self.spool;
        let written = (|| -> io::Result<()> {
            let src = self.held_file()?;
            let mut out = BufWriter::new(create_beside(&tmp, &src, spool)?);
            let mut first = true;
            for (uid, msg) in &self.messages {
                let Some((flags, keywords)) = change(*uid, msg) else {
                    continue;
                };
                writeln!(out, "{}", msg.envelope)?;
                let base = first.then_some((self.uidvalidity, self.uidnext));
                first = false;
                copy_with_headers(
                    &src,
                    msg,
                    &mut out,
                    &bookkeeping(base, *uid, flags, &keywords),
                )?;
                out.write_all(b"\n")?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            with_privileged_group(spool, || fs::rename(&tmp, &self.path))?;
            durable::fsync_dir(&dir)
        })();
        written.map_err(|e| {
            let _ = with_privileged_group(spool, || fs::remove_file(&tmp));
            Error::io(&self.path, e)
        })
    }
}

/// Creates the temporary file of a rewrite, with the mode of the mbox it replaces: afresh
/// (a leftover of a crash is removed), never through a symlink.
fn create_beside(tmp: &Path, mbox: &File, spool: bool) -> io::Result<File> {
    let mode = mbox
        .metadata()
        .map_or(0o600, |m| m.permissions().mode() & 0o777);
    let _ = with_privileged_group(spool, || fs::remove_file(tmp));
    with_privileged_group(spool, || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)
    })
}

/// The headers roost keeps in each message.
fn bookkeeping(
    imapbase: Option<(u32, Uid)>,
    uid: Uid,
    flags: Flags,
    keywords: &BTreeSet<String>,
) -> String {
    let mut h = String::new();
    if let Some((validity, next)) = imapbase {
        h.push_str(&format!("X-IMAPbase: {validity} {next}\n"));
    }
    h.push_str(&format!("X-UID: {uid}\n"));
    h.push_str(if flags.contains(Flags::SEEN) {
        "Status: RO\n"
    } else {
        "Status: O\n"
    });
    let x: String = [
        (Flags::ANSWERED, 'A'),
        (Flags::FLAGGED, 'F'),
        (Flags::DRAFT, 'T'),
        (Flags::DELETED, 'D'),
    ]
    .iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, c)| *c)
    .collect();
    if !x.is_empty() {
        h.push_str(&format!("X-Status: {x}\n"));
    }
    if !keywords.is_empty() {
        h.push_str(&format!(
            "X-Keywords: {}\n",
            keywords.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    h
}

/// Copies a message's raw bytes, replacing its bookkeeping headers with `headers`.
fn copy_with_headers(
    src: &File,
    msg: &RawMessage,
    out: &mut impl Write,
    headers: &str,
) -> io::Result<()> {
    let mut reader = BufReader::new(ReadAt::new(src, msg.start, msg.end));
    let mut line = Vec::new();
    let mut in_headers = true;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if in_headers && content.is_empty() {
            in_headers = false;
            out.write_all(headers.as_bytes())?;
        } else if in_headers && is_hidden_header(content) {
            continue;
        }
        out.write_all(&line)?;
    }
    if in_headers {
        out.write_all(headers.as_bytes())?;
        out.write_all(b"\n")?;
    }
    if !line.is_empty() && !line.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes an incoming message (APPEND, delivery) mboxrd-quoted (`From ` lines at any depth of
/// `>` gain one more), without the bookkeeping headers a sender may have put in its header
/// block (`X-UID:`, `X-IMAPbase:`, `Status:`, ... with their continuation lines): only roost
/// writes those, which is what Dovecot ensures too. Returns whether it ended with a newline.
fn write_incoming(message: &mut dyn Read, out: &mut impl Write) -> io::Result<bool> {
    let mut reader = BufReader::new(message);
    let mut line = Vec::new();
    let mut ends_with_newline = true;
    let mut in_headers = true;
    let mut dropping = false;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(ends_with_newline);
        }
        if in_headers {
            let content = line.strip_suffix(b"\n").unwrap_or(&line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.is_empty() {
                in_headers = false;
            } else if !content.starts_with(b" ") && !content.starts_with(b"\t") {
                dropping = is_hidden_header(content);
            }
            if dropping && in_headers {
                continue;
            }
        }
        if parse::is_quoted_from(&line) || line.starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(&line)?;
        ends_with_newline = line.ends_with(b"\n");
    }
}

impl Mailbox for Mbox {
    fn sync(&mut self) -> Result<Snapshot, Error> {
        let _lock = MboxLock::acquire(&self.path, self.spool)?;
        self.sync_locked()
    }

    fn open_message(&self, uid: Uid) -> Result<Box<dyn MessageReader>, Error> {
        let (_, msg) = self
            .messages
            .iter()
            .find(|(u, _)| *u == uid)
            .ok_or(Error::NoSuchMessage(uid))?;
        let file = self.held_file().map_err(|e| Error::io(&self.path, e))?;
        self.check_in_place(msg)?;
        Ok(Box::new(MessageView::open(file, &self.path, msg)?))
    }

    fn append(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &BTreeSet<String>,
        internal_date: Option<SystemTime>,
    ) -> Result<Uid, Error> {
        if let Some(quota) = &self.quota {
            quota.admit(0)?;
        }
        let _lock = MboxLock::acquire(&self.path, self.spool)?;
        self.sync_locked()?;
        let uid = self.uidnext;
        // Numbering keeps UIDNEXT below Uid::MAX; checked regardless, never wrapped.
        let next = uid
            .checked_add(1)
            .ok_or_else(|| Error::io(&self.path, io::Error::other("the UID space is exhausted")))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        let old_len = file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        let written = (|| -> io::Result<()> {
            let separator = separator(&file, old_len)?;
            let mut out = BufWriter::new(&mut file);
            out.write_all(separator)?;
            let date = date::format(internal_date.unwrap_or_else(SystemTime::now));
            writeln!(out, "From roost@localhost {date}")?;
            // The first message also records UIDVALIDITY, so the mail alone keeps it.
            let base = (old_len == 0).then_some((self.uidvalidity, next));
            out.write_all(bookkeeping(base, uid, flags, keywords).as_bytes())?;
            if !write_incoming(message, &mut out)? {
                out.write_all(b"\n")?;
            }
            out.write_all(b"\n")?;
            out.flush()?;
            drop(out);
            file.sync_all()
        })();
        if let Err(e) = written {
            // Leave the mbox as it was: a half-written message must not become mail.
            let _ = file.set_len(old_len);
            return Err(Error::io(&self.path, e));
        }
        self.uidnext = next;
        UidState {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            pending: self.pending(),
        }
        .write(&self.state_path)?;
        self.sync_locked()?;
        if let Some(quota) = &self.quota {
            let size = self
                .messages
                .iter()
                .find(|(u, _)| *u == uid)
                .map_or(0, |(_, m)| m.size);
            quota.charge(size as i64, 1);
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
        let _lock = MboxLock::acquire(&self.path, self.spool)?;
        self.sync_locked()?;
        let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
        self.rewrite(|uid, m| {
            if !wanted.contains(&uid) {
                return Some((m.flags, m.keywords.clone()));
            }
            Some(change.apply((m.flags, &m.keywords), (flags, keywords)))
        })?;
        Ok(self.sync_locked()?.only(uids))
    }

    fn field_cache(&mut self) -> Option<&mut FieldCache> {
        self.open_field_cache()
    }

    fn highestmodseq(&self) -> Option<u64> {
        Some(self.highestmodseq.max(1))
    }

    fn watch_path(&self) -> &Path {
        &self.path
    }

    fn recent_mark(&self) -> Option<crate::recent::RecentMark> {
        Some(crate::recent::RecentMark::new(
            self.state_path.with_extension("recent"),
        ))
    }

    fn expunge(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, Error> {
        let _lock = MboxLock::acquire(&self.path, self.spool)?;
        self.sync_locked()?;
        let doomed: BTreeSet<Uid> = uids
            .iter()
            .copied()
            .filter(|u| self.messages.iter().any(|(m, _)| m == u))
            .collect();
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let freed: u64 = self
            .messages
            .iter()
            .filter(|(u, _)| doomed.contains(u))
            .map(|(_, m)| m.size)
            .sum();
        self.rewrite(|uid, m| (!doomed.contains(&uid)).then(|| (m.flags, m.keywords.clone())))?;
        if let Some(quota) = &self.quota {
            quota.charge(-(freed as i64), -(doomed.len() as i64));
        }
        self.sync_locked()?;
        Ok(doomed.into_iter().collect())
    }
}

impl Mbox {
    /// The file the last sync scanned.
    fn held_file(&self) -> io::Result<Arc<File>> {
        self.held
            .as_ref()
            .map(|(_, file)| Arc::clone(file))
            .ok_or_else(|| io::Error::other("read before the mbox was synced"))
    }

    /// Whether `msg` is still where the last sync found it in the held file. Renamed-in
    /// rewrites leave the held file alone; a program that rewrites the file in place (mutt,
    /// Dovecot) changes its length or mtime, and then the message's `From ` line must still
    /// be at its offset, or the read is refused until the next sync.
    fn check_in_place(&self, msg: &RawMessage) -> Result<(), Error> {
        let Some((id, file)) = &self.held else {
            return Ok(());
        };
        if file_id(file, &self.path)? == *id {
            return Ok(());
        }
        let mut line = vec![0u8; msg.envelope.len()];
        match file.read_exact_at(&mut line, msg.from_line) {
            Ok(()) if line == msg.envelope.as_bytes() => Ok(()),
            Ok(()) => Err(Error::Changed(self.path.clone())),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(Error::Changed(self.path.clone()))
            }
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.state_path.with_extension("index")
    }

    /// The index left by an earlier session; a damaged one is reported and ignored.
    fn read_index(&mut self) -> Option<(FileId, parse::Scan)> {
        match index::read(&self.index_path()) {
            Ok(Some(Some((id, scan)))) => {
                self.last_scan_on_disk = Some(id);
                Some((id, scan))
            }
            Ok(Some(None)) => {
                crate::repair::report(
                    &self.path,
                    "the mbox index is corrupt",
                    "scanned the mbox and rebuilt it",
                );
                None
            }
            Ok(None) | Err(_) => None,
        }
    }

    /// The field cache, beside the side file, opened on first use after a sync.
    fn open_field_cache(&mut self) -> Option<&mut FieldCache> {
        if self.uidvalidity == 0 {
            return None;
        }
        let path = self.state_path.with_extension("cache");
        let uidvalidity = self.uidvalidity;
        Some(
            self.cache
                .get_or_insert_with(|| FieldCache::open(path, uidvalidity)),
        )
    }

    fn pending(&self) -> Vec<(u32, Uid)> {
        self.messages
            .iter()
            .filter(|(_, m)| m.uid.is_none())
            .map(|(uid, m)| (m.digest, *uid))
            .collect()
    }
}

/// Whether the last message of an earlier scan still starts where it did, with the same line.
fn tail_intact(file: &mut File, scan: &parse::Scan) -> Result<bool, Error> {
    let Some(last) = scan.messages.last() else {
        return Ok(false);
    };
    let mut line = vec![0u8; last.envelope.len()];
    let read = file
        .seek(SeekFrom::Start(last.from_line))
        .and_then(|_| file.read_exact(&mut line));
    Ok(read.is_ok() && line == last.envelope.as_bytes())
}

/// What must precede a new message so the previous one ends with a blank line.
fn separator(file: &File, len: u64) -> io::Result<&'static [u8]> {
    if len == 0 {
        return Ok(b"");
    }
    let mut tail = [0u8; 2];
    let take = len.min(2) as usize;
    file.read_exact_at(&mut tail[..take], len - take as u64)?;
    Ok(match &tail[..take] {
        b"\n\n" => b"",
        [.., b'\n'] => b"\n",
        _ => b"\n\n",
    })
}

/// Opens a mail file for reading, refusing a symlink in its last component.
fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
