//! The selected mailbox (RFC 3501 selected state): the messages as this client knows them, so
//! sequence numbers stay stable until the session reports a change, and the untagged EXISTS /
//! EXPUNGE / FETCH FLAGS responses that bring the client up to date with the disk.

use std::collections::BTreeSet;

use roost_protocol::imap::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use roost_storage::view::MailboxGuard;
use roost_storage::{Error as StorageError, MessageInfo, SessionView, Store, Uid};

use roost_protocol::imap::extended::{Saved, EMPTY_SET};
use roost_protocol::imap::response::{
    compact_set, Code, FetchItem, ListKind, MailboxName, Response,
};

use super::live::{self, LiveSearch};
use super::mailboxes::SEPARATOR;
use super::reply::{flag_names, message_flags};

/// Keywords every mailbox offers in FLAGS, so clients know they may set them (as Dovecot does).
const COMMON_KEYWORDS: [&str; 4] = ["$Forwarded", "$Junk", "$NotJunk", "$MDNSent"];

/// A sequence set that names messages the client does not have.
#[derive(Debug, thiserror::Error)]
#[error("Invalid message sequence number (the mailbox has {0} messages).")]
pub struct BadSequence(pub usize);

/// Which protocol dialect the SELECT response speaks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelectStyle {
    /// IMAP4rev2 is enabled.
    pub rev2: bool,
    /// Mailbox names are UTF-8 on the wire.
    pub utf8: bool,
}

/// One selected mailbox: this session's view of the process's shared one.
pub struct Selected {
    /// Its IMAP name.
    pub name: String,
    /// The messages as the client knows them, over the shared table and backend.
    pub view: SessionView,
    /// EXAMINE: no flag changes, no expunges.
    pub read_only: bool,
    /// Keywords announced in the last FLAGS response besides the common ones, which every
    /// FLAGS response names.
    announced_keywords: BTreeSet<String>,
    /// QRESYNC is enabled: expunges are reported as VANISHED.
    pub qresync: bool,
    /// The last `SEARCH RETURN (SAVE)` result, as UIDs (RFC 5182); what `$` names.
    pub saved: Vec<Uid>,
    /// IMAP4rev2 is enabled: no `\Recent` (RFC 9051 drops it).
    rev2: bool,
    /// Search results kept current for the client (RFC 5267 `RETURN (UPDATE)`).
    pub live: Vec<LiveSearch>,
    /// The shared mailbox's change mark when the live results were last brought up to date.
    pub live_mark: (u64, Uid),
}

impl Selected {
    /// Opens `name` and writes the SELECT/EXAMINE untagged responses into `out`.
    pub fn open(
        store: &Store,
        name: &str,
        read_only: bool,
        style: SelectStyle,
        out: &mut Vec<u8>,
    ) -> Result<Self, StorageError> {
        let mut selected = Self {
            name: name.to_string(),
            view: SessionView::open(store, name)?,
            read_only,
            announced_keywords: BTreeSet::new(),
            qresync: false,
            saved: Vec::new(),
            rev2: style.rev2,
            live: Vec::new(),
            live_mark: (0, 0),
        };
        selected.take_recent();
        selected.announce_flags(out);
        selected.announce_size(style, out);
        Ok(selected)
    }

    /// How many messages the client knows.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// The UID of message `i` (sequence number - 1).
    pub fn uid(&self, i: usize) -> Uid {
        self.view.uid(i)
    }

    /// Message `i` as it is now.
    pub fn info(&self, i: usize) -> MessageInfo {
        self.view.info(i)
    }

    /// The flags of a message as FETCH FLAGS shows them: `\Recent` among them where this
    /// session has it as recent (IMAP4rev1).
    pub fn flags_of<'m>(&self, m: &'m MessageInfo) -> Vec<&'m str> {
        let mut flags = message_flags(m);
        if self.is_recent(m.uid) {
            let system = flags.iter().take_while(|f| f.starts_with('\\')).count();
            flags.insert(system, "\\Recent");
        }
        flags
    }

    /// Whether message `uid` is `\Recent` in this session (RFC 3501 2.3.2).
    pub fn is_recent(&self, uid: Uid) -> bool {
        !self.rev2 && self.view.is_recent(uid)
    }

    /// Takes the messages no session has had as `\Recent` yet (EXAMINE only looks). A mark
    /// that cannot be read or written costs the `\Recent` flag, never the SELECT.
    fn take_recent(&mut self) {
        if self.rev2 {
            return;
        }
        if let Err(e) = self.view.take_recent(self.read_only) {
            tracing::warn!("imap: {}: cannot record recent messages: {e}", self.name);
        }
    }

    /// The backend, for reading messages; hold it for one call.
    pub fn mailbox(&self) -> MailboxGuard<'_> {
        self.view.mailbox()
    }

    /// UIDVALIDITY.
    pub fn uidvalidity(&self) -> u32 {
        self.view.uidvalidity()
    }

    /// HIGHESTMODSEQ as of now: the view's value moves only when changes are reported, so
    /// this session's own STOREs since then count too; the shared table has them.
    pub fn highest_modseq_now(&self) -> u64 {
        self.view
            .shared()
            .highestmodseq()
            .max(self.view.highestmodseq())
    }

    /// The rest of the SELECT responses: EXISTS, then RECENT and UNSEEN (IMAP4rev1) or the
    /// LIST line (IMAP4rev2), then UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ.
    fn announce_size(&self, style: SelectStyle, out: &mut Vec<u8>) {
        Response::Exists(self.len() as u32).encode(out);
        if style.rev2 {
            // IMAP4rev2 drops RECENT and UNSEEN and wants the mailbox's LIST line (RFC 9051 6.3.2).
            Response::List {
                kind: ListKind::List,
                attributes: &[],
                separator: SEPARATOR,
                mailbox: MailboxName {
                    name: &self.name,
                    utf8: style.utf8,
                },
                subscribed_children: false,
            }
            .encode(out);
        } else {
            Response::Recent(self.view.recent_count() as u32).encode(out);
            if let Some(first) = self.view.first_unseen() {
                untagged_ok(Code::Unseen(first as u32 + 1), "First unseen.", out);
            }
        }
        let view = &self.view;
        untagged_ok(Code::UidValidity(view.uidvalidity()), "UIDs valid.", out);
        untagged_ok(Code::UidNext(view.uidnext()), "Predicted next UID.", out);
        untagged_ok(Code::HighestModSeq(view.highestmodseq()), "Highest.", out);
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]`, with the keywords in use.
    fn announce_flags(&mut self, out: &mut Vec<u8>) {
        let in_use: BTreeSet<String> = self
            .view
            .keywords_in_use()
            .into_iter()
            .filter(|k| !COMMON_KEYWORDS.contains(&k.as_str()))
            .collect();
        let mut keywords: BTreeSet<String> =
            COMMON_KEYWORDS.iter().map(|k| k.to_string()).collect();
        keywords.extend(in_use.iter().cloned());
        let mut all = flag_names(roost_storage::Flags::ALL_SYSTEM, &keywords);
        Response::Flags(&all).encode(out);
        if self.read_only {
            all.clear();
        } else {
            all.push("\\*");
        }
        untagged_ok(Code::PermanentFlags(&all), "Flags permitted.", out);
        self.announced_keywords = in_use;
    }

    /// A new `* FLAGS` (and PERMANENTFLAGS) when any of `keywords` is one the client was not
    /// told of: a client may reject or drop a keyword it sees in FETCH before FLAGS named it.
    pub fn announce_keywords<'k>(
        &mut self,
        keywords: impl IntoIterator<Item = &'k String>,
        out: &mut Vec<u8>,
    ) {
        if keywords
            .into_iter()
            .any(|k| !COMMON_KEYWORDS.contains(&k.as_str()) && !self.announced_keywords.contains(k))
        {
            self.announce_flags(out);
        }
    }

    /// The SELECT/EXAMINE tagged OK's code.
    pub fn access_code(&self) -> Code<'static> {
        if self.read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        }
    }

    /// Catches up with the shared view and writes what changed since the client last heard:
    /// EXPUNGE for vanished messages (highest sequence number first, so each number is right
    /// when sent), FETCH FLAGS for changed flags, EXISTS for new mail.
    pub fn refresh(&mut self, condstore: bool, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let updates = self.view.catch_up()?;
        if updates.rebuilt {
            // The mailbox was recreated under us: nothing the client knows is valid.
            Response::Bye {
                code: Some(Code::UidValidityChanged),
                text: "The mailbox was rebuilt; please reselect.",
            }
            .encode(out);
        }
        self.announce_keywords(&updates.keywords, out);
        self.report_expunged(&updates.expunged, out);
        for (seq, now) in &updates.flags {
            let flags = self.flags_of(now);
            let mut items = vec![FetchItem::Uid(now.uid), FetchItem::Flags(&flags)];
            if condstore {
                items.push(FetchItem::ModSeq(now.modseq));
            }
            Response::Fetch {
                seq: *seq,
                items: &items,
            }
            .encode(out);
        }
        if let Some(count) = updates.exists {
            Response::Exists(count).encode(out);
            if !self.rev2 {
                self.take_recent();
                Response::Recent(self.view.recent_count() as u32).encode(out);
            }
        }
        live::report_changes(self, out);
        Ok(())
    }

    /// Forgets expunged messages, writing `* n EXPUNGE` for each (highest first), or one
    /// `* VANISHED uids` once the client enabled QRESYNC (RFC 7162 3.2.10).
    pub fn remove_expunged(&mut self, uids: &[Uid], out: &mut Vec<u8>) {
        if uids.is_empty() {
            return;
        }
        let removed = self.view.forget(uids);
        self.report_expunged(&removed, out);
    }

    /// Writes the expunges of `(sequence number, UID)`, highest first.
    fn report_expunged(&mut self, removed: &[(u32, Uid)], out: &mut Vec<u8>) {
        live::report_expunged(self, removed, out);
        if !self.qresync {
            for (seq, _) in removed {
                Response::Expunge(*seq).encode(out);
            }
            return;
        }
        let mut vanished: Vec<Uid> = removed.iter().map(|(_, uid)| *uid).collect();
        if !vanished.is_empty() {
            vanished.sort_unstable();
            Response::Vanished {
                earlier: false,
                uids: &vanished,
            }
            .encode(out);
        }
    }

    /// What `$` stands for now: the saved UIDs still here, and their sequence numbers.
    pub fn saved_sets(&self) -> Saved {
        let mut seqs = Vec::new();
        let mut uids = Vec::new();
        for uid in &self.saved {
            if let Some(i) = self.view.index_of(*uid) {
                uids.push(*uid);
                seqs.push(i as u32 + 1);
            }
        }
        Saved {
            uids: compact_set(uids),
            seqs: compact_set(seqs),
        }
    }

    /// QRESYNC on SELECT (RFC 7162 3.2.5): what the client missed since `modseq`: the UIDs of
    /// `known` (or of everything below UIDNEXT) that are gone, then the flags that changed.
    pub fn resync(&self, modseq: u64, known: Option<&SequenceSet>, out: &mut Vec<u8>) {
        self.vanished_earlier(known, out);
        for (seq, m) in self.view.changed_since(modseq) {
            let flags = self.flags_of(&m);
            Response::Fetch {
                seq,
                items: &[
                    FetchItem::Uid(m.uid),
                    FetchItem::Flags(&flags),
                    FetchItem::ModSeq(m.modseq),
                ],
            }
            .encode(out);
        }
    }

    /// `* VANISHED (EARLIER) uids`: the UIDs of `known` (or of everything below UIDNEXT) that
    /// are not in the mailbox (QRESYNC SELECT, UID FETCH ... (VANISHED)).
    pub fn vanished_earlier(&self, known: Option<&SequenceSet>, out: &mut Vec<u8>) {
        let last = self.view.uidnext().saturating_sub(1);
        let candidates: Vec<(u32, u32)> = match known {
            Some(set) => ranges(set, last),
            None if last > 0 => vec![(1, last)],
            None => Vec::new(),
        };
        // Without an expunge history every absent UID counts as vanished, which RFC 7162
        // allows; the ranges are walked, never expanded blindly past the mailbox.
        let mut vanished = Vec::new();
        for (a, b) in candidates {
            let b = b.min(last);
            let mut uid = a;
            while uid <= b && vanished.len() < 1_000_000 {
                if self.view.index_of(uid).is_none() {
                    vanished.push(uid);
                }
                uid += 1;
            }
        }
        if !vanished.is_empty() {
            vanished.sort_unstable();
            vanished.dedup();
            Response::Vanished {
                earlier: true,
                uids: &vanished,
            }
            .encode(out);
        }
    }

    /// The indexes (sequence number - 1) a sequence set names. Sequence numbers beyond the
    /// mailbox are an error; UIDs that don't exist are simply not there (RFC 3501 6.4.8).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, BadSequence> {
        let count = self.len();
        if uid {
            // Each range is two binary searches in the ascending UIDs: O(log n + result).
            let uids = self.view.uids();
            let largest = uids.last().copied().unwrap_or(0);
            let mut picked: Vec<usize> = Vec::new();
            for (a, b) in ranges(set, largest) {
                let first = uids.partition_point(|u| *u < a);
                let end = uids.partition_point(|u| *u <= b);
                picked.extend(first..end.max(first));
            }
            picked.sort_unstable();
            picked.dedup();
            return Ok(picked);
        }
        let ranges = ranges(set, count as u32);
        let mut picked = Vec::new();
        // `$` while nothing is saved names no message.
        for (a, b) in ranges.into_iter().filter(|r| r.0 != EMPTY_SET) {
            if b as usize > count || a == 0 {
                return Err(BadSequence(count));
            }
            picked.extend((a as usize - 1)..(b as usize));
        }
        picked.sort_unstable();
        picked.dedup();
        Ok(picked)
    }
}

/// `* OK [code] text`.
fn untagged_ok(code: Code<'_>, text: &str, out: &mut Vec<u8>) {
    Response::Ok {
        code: Some(code),
        text,
    }
    .encode(out);
}

/// The sequence set as inclusive ranges, `*` being `largest` (RFC 3501 9, seq-range).
pub fn ranges(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0
        .as_ref()
        .iter()
        .map(|seq| match seq {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            }
        })
        .collect()
}

/// Whether `n` is in the set (for UID-set search keys over UIDs).
pub fn contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    ranges(set, largest)
        .iter()
        .any(|(a, b)| (*a..=*b).contains(&n))
}
