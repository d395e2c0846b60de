//! mbox: the scanner, the message view, `From ` line dates, the UID side file and the index.

use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};

use roost_storage::mailbox::Mailbox;
use roost_storage::mbox::{
    date,
    index::{self, FileId},
    parse::{self, Scan},
    reader::MessageView,
    Mbox,
};

/// Separates the files of a multi-file input (here: the mbox, then its UID side file).
pub const SEP: &[u8] = b"\n=====\n";

/// Splits a multi-file input at [`SEP`] into at most `n` parts.
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + SEP.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fn check_scan(scan: &Scan, len: usize) {
    assert_eq!(scan.len, len as u64);
    let mut previous_end = 0;
    for m in &scan.messages {
        assert!(
            previous_end <= m.from_line && m.from_line < m.start && m.start <= m.end,
            "message out of place: {m:?}"
        );
        assert!(m.end <= scan.len);
        assert!(m.envelope.starts_with("From "));
        assert!(m.size <= m.end - m.start);
        assert!(m.uid != Some(0));
        previous_end = m.end;
    }
}

/// Reads a view whole in pieces of `chunk` bytes.
fn read_view(view: &mut MessageView, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = view.read(&mut buf).expect("reading a message view");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// An mbox file (optionally followed by [`SEP`] and a UID side file): the scan (at any buffer
/// size), every message's view (its length is the size the scan reports, reads and seeks
/// agree), the `From ` line dates, the index round trip, and a whole `Mbox` opened twice
/// giving the same UIDs.
pub fn mbox_reader(data: &[u8]) {
    let parts = split(data, 2);
    let mbox = parts[0];
    let scan = parse::scan(&mut Cursor::new(mbox)).expect("scanning memory");
    check_scan(&scan, mbox.len());
    let small = parse::scan(&mut BufReader::with_capacity(3, Cursor::new(mbox))).unwrap();
    assert_eq!(small, scan, "the scan depends on the read buffer size");
    for m in &scan.messages {
        let _ = date::parse_from_line(&m.envelope);
    }
    let id = FileId {
        inode: 7,
        len: mbox.len() as u64,
        mtime: (1, 2),
    };
    assert_eq!(
        index::decode(&index::encode(id, &scan)),
        Some((id, scan.clone())),
        "the mbox index does not round-trip"
    );

    let dir = crate::scratch_dir();
    let path = dir.path().join("mbox");
    std::fs::write(&path, mbox).unwrap();
    let file = std::sync::Arc::new(std::fs::File::open(&path).unwrap());
    for m in &scan.messages {
        let mut view = MessageView::open(file.clone(), &path, m).expect("opening a message view");
        let whole = read_view(&mut view, 1 << 16);
        assert_eq!(whole.len() as u64, view.len(), "view length");
        assert_eq!(
            view.len(),
            m.size,
            "the scan's size is not what clients get"
        );
        assert_eq!(view.is_empty(), whole.is_empty());
        view.seek(SeekFrom::Start(0)).unwrap();
        assert_eq!(read_view(&mut view, 3), whole, "small reads differ");
        let half = whole.len() / 2;
        view.seek(SeekFrom::Start(half as u64)).unwrap();
        assert_eq!(read_view(&mut view, 5), &whole[half..], "read after seek");
        assert!(view
            .seek(SeekFrom::Current(-1 - whole.len() as i64))
            .is_err());
    }

    // The whole folder, through the Mailbox trait.
    let state = dir.path().join("mbox.uids");
    if let Some(side) = parts.get(1) {
        std::fs::write(&state, side).unwrap();
    }
    let mut first = Mbox::new(&path, &state);
    let Ok(snap) = first.sync() else { return };
    assert_eq!(snap.messages.len(), scan.messages.len());
    crate::check_snapshot(&snap);
    for m in &snap.messages {
        let mut reader = first.open_message(m.uid).expect("opening a listed message");
        let mut body = Vec::new();
        reader.read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, m.size, "message size");
    }
    drop(first);
    let mut second = Mbox::new(&path, &state);
    let again = second.sync().expect("reopening an mbox roost just synced");
    let uids = |s: &roost_storage::Snapshot| s.messages.iter().map(|m| m.uid).collect::<Vec<_>>();
    assert_eq!(
        again.uidvalidity, snap.uidvalidity,
        "UIDVALIDITY changed on reopening"
    );
    assert_eq!(uids(&again), uids(&snap), "UIDs changed on reopening");
}

/// Size of the mbox index header (checked against `index::encode` by the replay test).
pub const MBOX_INDEX_HEADER: usize = 73;

/// The mbox index file, as found and with its CRCs made to match: whatever decodes encodes
/// back to something that decodes the same.
pub fn mbox_index(data: &[u8]) {
    let mut fixed = data.to_vec();
    crate::fix_header_crcs(&mut fixed, MBOX_INDEX_HEADER);
    for bytes in [data, &fixed[..]] {
        if let Some((id, scan)) = index::decode(bytes) {
            for m in &scan.messages {
                assert!(m.from_line < m.start && m.start <= m.end && m.end <= scan.len);
            }
            assert_eq!(
                index::decode(&index::encode(id, &scan)),
                Some((id, scan)),
                "the mbox index does not round-trip"
            );
        }
    }
}
