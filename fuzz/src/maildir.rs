//! Maildir: file names, `dovecot-keywords`, `dovecot-uidlist`, the index, the journal, the
//! field cache, and a whole folder opened from fuzzed files.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use roost_storage::cache::FieldCache;
use roost_storage::index::{Index, Stamp};
use roost_storage::mailbox::Mailbox;
use roost_storage::maildir::{
    filename::MaildirName,
    journal,
    keywords::{self, Keywords},
    uidlist::{self, Uidlist},
    Maildir,
};

use crate::mbox::split;

/// Maildir file names, `dovecot-keywords` and `dovecot-uidlist` text: each line as a file
/// name (parse, write back, parse again: the same; `set_uid` keeps the key and sets the UID),
/// and the whole text as a keyword table and as a uidlist (both round-trip).
pub fn maildir_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.split('\n').enumerate() {
        let Some(name) = MaildirName::parse(line) else {
            continue;
        };
        assert!(!name.key.is_empty() && name.base.starts_with(&name.key));
        let written = name.file_name();
        assert_eq!(
            MaildirName::parse(&written).as_ref(),
            Some(&name),
            "{line:?} written back as {written:?}"
        );
        let uid = 1 + (i as u32 % 1000) * 7;
        let mut numbered = name.clone();
        numbered.set_uid(uid);
        let renamed = numbered.file_name();
        let again = MaildirName::parse(&renamed);
        assert!(
            again
                .as_ref()
                .is_some_and(|n| n.uid == Some(uid) && n.key == name.key),
            "{line:?} numbered {uid} became {renamed:?}, which parses as {again:?}"
        );
    }

    let table = Keywords::parse(&text);
    let rendered = table.render();
    assert_eq!(Keywords::parse(&rendered), table, "keywords: {rendered:?}");
    for c in ['a', 'z', '{', '`', '\0', 'é'] {
        let _ = table.name(c);
    }
    let mut grown = table.clone();
    for line in text.lines().take(30) {
        if let Some((letter, _)) = grown.letter(line) {
            assert!(letter.is_ascii_lowercase());
            assert_eq!(grown.name(letter), Some(line));
        }
    }

    if let Ok(list) = Uidlist::parse(&text) {
        assert!(list.uidvalidity > 0 && list.uidnext > 0);
        for (key, (uid, base)) in &list.entries {
            assert!(*uid > 0 && base.starts_with(key.as_str()));
        }
        let rendered = list.render();
        assert_eq!(Uidlist::parse(&rendered), Ok(list), "uidlist: {rendered:?}");
    }
}

/// The maildir index header length (84 bytes, see `storage/src/index`).
pub fn index_header_len() -> usize {
    Index::default().encode().len()
}

/// The index file, as found and with its CRCs made to match: a decoded index has ascending
/// UIDs below UIDNEXT, and encodes to bytes that decode to the same index.
pub fn maildir_index(data: &[u8]) {
    let mut fixed = data.to_vec();
    crate::fix_header_crcs(&mut fixed, index_header_len());
    for bytes in [data, &fixed[..]] {
        if let Ok(index) = Index::decode(bytes) {
            let mut last = 0;
            for r in &index.records {
                assert!(r.uid > last && r.uid < index.uidnext);
                last = r.uid;
            }
            let encoded = index.encode();
            assert_eq!(Index::decode(&encoded), Ok(index), "index round trip");
        }
    }
}

/// Length of the journal header (magic and index id).
const JOURNAL_HEADER: usize = 16;

/// The index id a journal's header names.
fn journal_id(bytes: &[u8]) -> u64 {
    bytes
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// `roost.journal`, as found and with its CRCs made to match, read from the start and from
/// an offset: the length reported is the file's, and the records read append and read back
/// the same in a fresh journal.
pub fn journal(data: &[u8]) {
    let dir = crate::scratch_dir();
    let mut fixed = data.to_vec();
    crate::fix_record_crcs(&mut fixed, JOURNAL_HEADER);
    let id = journal_id(data);
    for bytes in [data, &fixed[..]] {
        fs::write(dir.path().join(journal::FILE_NAME), bytes).unwrap();
        let from = (bytes.len() as u64).min(u64::from(bytes.first().copied().unwrap_or(0)));
        let _ = journal::read(dir.path(), id, from);
        let Some((records, len)) = journal::read(dir.path(), id, 0) else {
            continue;
        };
        assert_eq!(len, bytes.len() as u64, "journal length");
        let again = crate::scratch_dir();
        let written = journal::append(again.path(), id, &records).unwrap();
        assert_eq!(
            journal::read(again.path(), id, 0),
            Some((records, written)),
            "journal records do not append and read back the same"
        );
    }
}

/// Length of the field cache header (magic and UIDVALIDITY).
const CACHE_HEADER: usize = 12;

/// Cached values by (UID, field name).
type CacheModel = HashMap<(u32, String), Vec<u8>>;

/// What a cache file holds, read independently of `FieldCache`: the good records up to the
/// first bad one (later ones win) and where the good part ends; `None` for a bad header.
fn cache_model(bytes: &[u8]) -> Option<(CacheModel, usize)> {
    if bytes.len() < CACHE_HEADER || &bytes[..8] != b"ROOSTCA1" {
        return None;
    }
    let mut map = HashMap::new();
    let mut at = CACHE_HEADER;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().unwrap());
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if !(6..=(1 << 20) + 6 + 65535).contains(&len) || crc32fast::hash(body) != crc {
            break;
        }
        let uid = u32::from_le_bytes(body[..4].try_into().unwrap());
        let name_len = usize::from(u16::from_le_bytes([body[4], body[5]]));
        let Some(Ok(name)) = body.get(6..6 + name_len).map(std::str::from_utf8) else {
            break;
        };
        map.insert((uid, name.to_string()), body[6 + name_len..].to_vec());
        at += 8 + len;
    }
    Some((map, at))
}

/// The field cache file, as found and with its CRCs made to match, opened with the
/// UIDVALIDITY its header names: it holds exactly the records an independent reading finds,
/// cuts a torn tail, and a value put in comes back out, also after reopening.
pub fn field_cache(data: &[u8]) {
    let dir = crate::scratch_dir();
    let path = dir.path().join("roost.cache");
    let mut fixed = data.to_vec();
    crate::fix_record_crcs(&mut fixed, CACHE_HEADER);
    let uidvalidity = data
        .get(8..12)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
    for bytes in [data, &fixed[..]] {
        fs::write(&path, bytes).unwrap();
        let mut cache = FieldCache::open(&path, uidvalidity);
        let (model, good) = cache_model(bytes).unwrap_or_default();
        assert_eq!(cache.len(), model.len(), "cached field count");
        assert_eq!(cache.is_empty(), model.is_empty());
        for ((uid, name), value) in &model {
            assert_eq!(
                cache.get(*uid, name).as_ref(),
                Some(value),
                "{uid} {name:?}"
            );
        }
        let on_disk = fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(
            on_disk,
            good.max(CACHE_HEADER),
            "the torn tail was not cut exactly"
        );
        cache.put(4242, "FUZZ", b"value").unwrap();
        assert_eq!(cache.get(4242, "FUZZ").as_deref(), Some(&b"value"[..]));
        drop(cache);
        let reopened = FieldCache::open(&path, uidvalidity);
        assert_eq!(reopened.get(4242, "FUZZ").as_deref(), Some(&b"value"[..]));
        let extra = usize::from(!model.contains_key(&(4242, "FUZZ".to_string())));
        assert_eq!(reopened.len(), model.len() + extra);
    }
}

/// Sets a file's or directory's mtime to an index stamp (when it is a valid time).
fn set_mtime(path: &Path, stamp: Stamp) {
    let Ok(secs) = u64::try_from(stamp.secs) else {
        return;
    };
    if stamp.nanos >= 1_000_000_000 || stamp == Stamp::default() {
        return;
    }
    let time = UNIX_EPOCH + Duration::new(secs, stamp.nanos);
    if let Ok(file) = fs::File::open(path) {
        let _ = file.set_modified(time);
    }
}

/// A whole maildir folder built from the input, then opened (synced) twice. The input is up
/// to six files separated by [`crate::mbox::SEP`]: `dovecot-uidlist`, `dovecot-keywords`,
/// the names in `cur/` (one per line), the names in `new/`, `roost.index` (its CRCs made to
/// match) and `roost.journal`. When an index is given, the directories get the mtimes it
/// records, so the index and journal are trusted as they would be on a real folder.
///
/// Checks: the sync succeeds; UIDs ascend below UIDNEXT; without an index every message file
/// gets a UID; a second open gives the same UIDVALIDITY, UIDs, flags and keywords; every
/// listed message can be read.
pub fn maildir_open(data: &[u8]) {
    let parts = split(data, 6);
    let dir = crate::scratch_dir();
    let root = dir.path().join("folder");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    if let Some(text) = parts.get(1) {
        fs::write(root.join(keywords::FILE_NAME), text).unwrap();
    }
    let mut files = BTreeSet::new();
    for (sub, names) in [("cur", parts.get(2)), ("new", parts.get(3))] {
        let Some(names) = names else { continue };
        for name in String::from_utf8_lossy(names).split('\n').take(64) {
            if name.contains('/') || name.contains('\0') || name.len() > 200 {
                continue;
            }
            if MaildirName::parse(name).is_none() {
                continue;
            }
            let message = format!("Subject: {}\r\n\r\nbody\r\n", files.len());
            if fs::write(root.join(sub).join(name), message).is_ok() {
                files.insert((sub, name.to_string()));
            }
        }
    }
    if let Some(text) = parts.first() {
        fs::write(root.join(uidlist::FILE_NAME), text).unwrap();
    }
    let mut with_index = false;
    if let Some(index) = parts.get(4) {
        let mut bytes = index.to_vec();
        crate::fix_header_crcs(&mut bytes, index_header_len());
        fs::write(root.join(roost_storage::index::FILE_NAME), &bytes).unwrap();
        if let Ok(index) = Index::decode(&bytes) {
            with_index = true;
            let marker = format!("roost-uidvalidity.{:08x}", index.uidvalidity);
            fs::write(root.join(marker), b"").unwrap();
            let mut stamps = [index.cur, index.new, index.uidlist];
            if let Some(journal) = parts.get(5) {
                fs::write(root.join(journal::FILE_NAME), journal).unwrap();
                if let Some((records, _)) =
                    journal::read(&root, journal::index_id(&index.header()), 0)
                {
                    if let Some(last) = records.last() {
                        stamps = last.after;
                    }
                }
            }
            set_mtime(&root.join(uidlist::FILE_NAME), stamps[2]);
            set_mtime(&root.join("cur"), stamps[0]);
            set_mtime(&root.join("new"), stamps[1]);
        }
    }

    let mut first = Maildir::new(&root);
    let snap = match first.sync() {
        Ok(snap) => snap,
        Err(e) => panic!("opening the folder failed: {e}"),
    };
    crate::check_snapshot(&snap);
    for m in &snap.messages {
        if !with_index {
            let mut body = Vec::new();
            first
                .open_message(m.uid)
                .expect("opening a listed message")
                .read_to_end(&mut body)
                .unwrap();
        }
    }
    if !with_index {
        assert_eq!(
            snap.messages.len(),
            files.len(),
            "message files without a UID (or UIDs without a file)"
        );
    }
    drop(first);
    let mut second = Maildir::new(&root);
    let again = second.sync().expect("reopening a folder roost just synced");
    let view = |s: &roost_storage::Snapshot| {
        s.messages
            .iter()
            .map(|m| (m.uid, m.flags, m.keywords.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        again.uidvalidity, snap.uidvalidity,
        "UIDVALIDITY changed on reopening"
    );
    if !with_index {
        assert_eq!(view(&again), view(&snap), "the folder changed on reopening");
    }
}
