//! The selected mailbox (RFC 3501 selected state): the messages as this client knows them, so
//! sequence numbers stay stable until the session reports a change, and the untagged EXISTS /
//! EXPUNGE / FETCH FLAGS responses that bring the client up to date with the disk.

use std::collections::{BTreeSet, HashMap};

use roost_protocol::imap::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use roost_storage::{Error as StorageError, Flags, Mailbox, MessageInfo, Snapshot, Store, Uid};

use roost_protocol::imap::extended::{Saved, EMPTY_SET};
use roost_protocol::imap::response::{
    compact_set, Code, FetchItem, ListKind, MailboxName, Response,
};

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

/// One selected mailbox.
pub struct Selected {
    /// Its IMAP name.
    pub name: String,
    /// The open mailbox.
    pub mailbox: Box<dyn Mailbox>,
    /// EXAMINE: no flag changes, no expunges.
    pub read_only: bool,
    /// The messages as the client knows them (sequence number = index + 1).
    pub messages: Vec<MessageInfo>,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT as last reported.
    pub uidnext: Uid,
    /// HIGHESTMODSEQ as last seen.
    pub highestmodseq: u64,
    /// Keywords announced in the last FLAGS response.
    announced_keywords: BTreeSet<String>,
    /// QRESYNC is enabled: expunges are reported as VANISHED.
    pub qresync: bool,
    /// The last `SEARCH RETURN (SAVE)` result, as UIDs (RFC 5182); what `$` names.
    pub saved: Vec<Uid>,
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
        let mut mailbox = store.folders().open(name)?;
        let snapshot = mailbox.sync()?;
        let mut selected = Self {
            name: name.to_string(),
            mailbox,
            read_only,
            messages: Vec::new(),
            uidvalidity: snapshot.uidvalidity,
            uidnext: snapshot.uidnext,
            highestmodseq: snapshot.highestmodseq.max(1),
            announced_keywords: BTreeSet::new(),
            qresync: false,
            saved: Vec::new(),
        };
        selected.announce_flags(&snapshot, out);
        selected.announce_size(&snapshot.messages, style, out);
        selected.messages = snapshot.messages;
        Ok(selected)
    }

    /// The rest of the SELECT responses: EXISTS, then RECENT and UNSEEN (IMAP4rev1) or the
    /// LIST line (IMAP4rev2), then UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ.
    fn announce_size(&self, messages: &[MessageInfo], style: SelectStyle, out: &mut Vec<u8>) {
        Response::Exists(messages.len() as u32).encode(out);
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
            }
            .encode(out);
        } else {
            Response::Recent(0).encode(out);
            let unseen = messages.iter().position(|m| !m.flags.contains(Flags::SEEN));
            if let Some(first) = unseen {
                untagged_ok(Code::Unseen(first as u32 + 1), "First unseen.", out);
            }
        }
        untagged_ok(Code::UidValidity(self.uidvalidity), "UIDs valid.", out);
        untagged_ok(Code::UidNext(self.uidnext), "Predicted next UID.", out);
        untagged_ok(Code::HighestModSeq(self.highestmodseq), "Highest.", out);
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]`, with the keywords in use.
    fn announce_flags(&mut self, snapshot: &Snapshot, out: &mut Vec<u8>) {
        let mut keywords: BTreeSet<String> =
            COMMON_KEYWORDS.iter().map(|k| k.to_string()).collect();
        for m in &snapshot.messages {
            keywords.extend(m.keywords.iter().cloned());
        }
        let mut all = flag_names(roost_storage::Flags::ALL_SYSTEM, &keywords);
        Response::Flags(&all).encode(out);
        if self.read_only {
            all.clear();
        } else {
            all.push("\\*");
        }
        untagged_ok(Code::PermanentFlags(&all), "Flags permitted.", out);
        self.announced_keywords = keywords;
    }

    /// The SELECT/EXAMINE tagged OK's code.
    pub fn access_code(&self) -> Code<'static> {
        if self.read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        }
    }

    /// Re-reads the mailbox and writes what changed since the client last heard: EXPUNGE for
    /// vanished messages (highest sequence number first, so each number is right when sent),
    /// FETCH FLAGS for changed flags, EXISTS for new mail.
    pub fn refresh(&mut self, condstore: bool, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let Some(snapshot) = self.mailbox.sync_if_changed()? else {
            return Ok(());
        };
        if snapshot.uidvalidity != self.uidvalidity {
            // The mailbox was recreated under us: nothing the client knows is valid.
            Response::Bye {
                code: Some(Code::UidValidityChanged),
                text: "The mailbox was rebuilt; please reselect.",
            }
            .encode(out);
        }
        let new_keywords = snapshot
            .messages
            .iter()
            .any(|m| !m.keywords.is_subset(&self.announced_keywords));
        if new_keywords {
            self.announce_flags(&snapshot, out);
        }
        let current: HashMap<Uid, &MessageInfo> =
            snapshot.messages.iter().map(|m| (m.uid, m)).collect();
        let gone: Vec<Uid> = self
            .messages
            .iter()
            .filter(|m| !current.contains_key(&m.uid))
            .map(|m| m.uid)
            .collect();
        self.remove_expunged(&gone, out);
        self.report_flag_changes(&current, condstore, out);
        let last = self.messages.last().map_or(0, |m| m.uid);
        let before = self.messages.len();
        self.messages
            .extend(snapshot.messages.iter().filter(|m| m.uid > last).cloned());
        if self.messages.len() != before {
            Response::Exists(self.messages.len() as u32).encode(out);
        }
        self.uidnext = snapshot.uidnext;
        self.highestmodseq = snapshot.highestmodseq.max(1);
        Ok(())
    }

    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])` for every message whose flags changed.
    fn report_flag_changes(
        &mut self,
        current: &HashMap<Uid, &MessageInfo>,
        condstore: bool,
        out: &mut Vec<u8>,
    ) {
        for (i, known) in self.messages.iter_mut().enumerate() {
            let Some(now) = current.get(&known.uid) else {
                continue;
            };
            if now.flags != known.flags || now.keywords != known.keywords {
                let flags = message_flags(now);
                let mut items = vec![FetchItem::Uid(now.uid), FetchItem::Flags(&flags)];
                if condstore {
                    items.push(FetchItem::ModSeq(now.modseq));
                }
                Response::Fetch {
                    seq: i as u32 + 1,
                    items: &items,
                }
                .encode(out);
                *known = (*now).clone();
            } else if now.modseq != known.modseq {
                known.modseq = now.modseq;
            }
        }
    }

    /// Replaces what the client knows of messages it was just told about (after STORE).
    pub fn update_known(&mut self, changed: &[MessageInfo]) {
        for info in changed {
            if let Ok(i) = self.messages.binary_search_by_key(&info.uid, |m| m.uid) {
                self.messages[i] = info.clone();
            }
        }
    }

    /// Forgets expunged messages, writing `* n EXPUNGE` for each (highest first), or one
    /// `* VANISHED uids` once the client enabled QRESYNC (RFC 7162 3.2.10).
    pub fn remove_expunged(&mut self, uids: &[Uid], out: &mut Vec<u8>) {
        if uids.is_empty() {
            return;
        }
        let gone: BTreeSet<Uid> = uids.iter().copied().collect();
        let mut vanished = Vec::new();
        for seq in (1..=self.messages.len()).rev() {
            let uid = self.messages[seq - 1].uid;
            if gone.contains(&uid) {
                if !self.qresync {
                    Response::Expunge(seq as u32).encode(out);
                }
                vanished.push(uid);
                self.messages.remove(seq - 1);
            }
        }
        if self.qresync && !vanished.is_empty() {
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
            if let Ok(i) = self.messages.binary_search_by_key(uid, |m| m.uid) {
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
        for (i, m) in self.messages.iter().enumerate() {
            if m.modseq > modseq {
                let flags = message_flags(m);
                Response::Fetch {
                    seq: i as u32 + 1,
                    items: &[
                        FetchItem::Uid(m.uid),
                        FetchItem::Flags(&flags),
                        FetchItem::ModSeq(m.modseq),
                    ],
                }
                .encode(out);
            }
        }
    }

    /// `* VANISHED (EARLIER) uids`: the UIDs of `known` (or of everything below UIDNEXT) that
    /// are not in the mailbox (QRESYNC SELECT, UID FETCH ... (VANISHED)).
    pub fn vanished_earlier(&self, known: Option<&SequenceSet>, out: &mut Vec<u8>) {
        let present: BTreeSet<Uid> = self.messages.iter().map(|m| m.uid).collect();
        let last = self.uidnext.saturating_sub(1);
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
                if !present.contains(&uid) {
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
        let count = self.messages.len();
        if uid {
            let largest = self.messages.last().map_or(0, |m| m.uid);
            let ranges = ranges(set, largest);
            return Ok(self
                .messages
                .iter()
                .enumerate()
                .filter(|(_, m)| ranges.iter().any(|(a, b)| (*a..=*b).contains(&m.uid)))
                .map(|(i, _)| i)
                .collect());
        }
        let ranges = ranges(set, count as u32);
        let mut picked = BTreeSet::new();
        // `$` while nothing is saved names no message.
        for (a, b) in ranges.into_iter().filter(|r| r.0 != EMPTY_SET) {
            if b as usize > count || a == 0 {
                return Err(BadSequence(count));
            }
            picked.extend((a as usize - 1)..(b as usize));
        }
        Ok(picked.into_iter().collect())
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
