//! # roost-fuzz
//!
//! The bodies of roost's fuzz targets: one `fn(&[u8])` per target, each feeding bytes a client
//! or a mail file could hold to a parser and checking what it can beyond "no panic" (round
//! trips, chunking independence, ranges inside the input, differential models).
//!
//! The same functions serve two callers, so nothing is written twice:
//! - `fuzz/libfuzzer/` (cargo-fuzz, not in the workspace) wraps each in `fuzz_target!`;
//! - `tests/replay.rs` runs every file of `fuzz/corpus/<target>/` and
//!   `fuzz/regressions/<target>/` through them as an ordinary `cargo test`.
//!
//! See `fuzz/README.md` for how to fuzz on stable Rust.

pub mod admin;
pub mod imap;
pub mod lines;
pub mod maildir;
pub mod managesieve;
pub mod mbox;
pub mod sieve;

/// The one piece of the `roost` binary's `config` module that the passwd-file's access fields
/// (`allow_nets=`) use, compiled here from its own file as `admin` compiles those parsers.
#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../src/config/network.rs"]
mod network;

#[cfg(not(test))]
mod config {
    pub use super::network::Network;
}

/// A target: its name (the directory under `corpus/` and `regressions/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `fuzz/run` runs them.
pub const TARGETS: &[Target] = &[
    ("imap_decoder", imap::imap_decoder),
    ("imap_message", imap::imap_message),
    ("pop3", lines::pop3),
    ("smtp_command", lines::smtp_command),
    ("smtp_data", lines::smtp_data),
    ("sasl", lines::sasl),
    ("mbox_reader", mbox::mbox_reader),
    ("mbox_index", mbox::mbox_index),
    ("maildir_text", maildir::maildir_text),
    ("maildir_index", maildir::maildir_index),
    ("journal", maildir::journal),
    ("field_cache", maildir::field_cache),
    ("maildir_open", maildir::maildir_open),
    ("user_files", admin::user_files),
    ("sieve", sieve::sieve),
    ("managesieve", managesieve::managesieve),
];

/// Recomputes the two CRCs that close a `header_len`-byte header (body CRC, then header CRC,
/// as roost's index files lay them out), so the fuzzer gets past them to the record checks.
pub fn fix_header_crcs(bytes: &mut [u8], header_len: usize) {
    let h = header_len;
    if bytes.len() < h || h < 8 {
        return;
    }
    let body = crc32fast::hash(&bytes[h..]);
    bytes[h - 8..h - 4].copy_from_slice(&body.to_le_bytes());
    let header = crc32fast::hash(&bytes[..h - 4]);
    bytes[h - 4..h].copy_from_slice(&header.to_le_bytes());
}

/// Recomputes the CRC of every `length, crc, body` record after a `header_len`-byte header
/// (the journal and the field cache), as far as the lengths lead.
pub fn fix_record_crcs(bytes: &mut [u8], header_len: usize) {
    let mut at = header_len;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let Some(body) = bytes.get(at + 8..at + 8 + len as usize) else {
            return;
        };
        let crc = crc32fast::hash(body);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += 8 + len as usize;
    }
}

/// What every opened folder must show, whatever its files held: UIDs ascending below UIDNEXT,
/// no MODSEQ above HIGHESTMODSEQ (CONDSTORE clients trust it).
pub fn check_snapshot(snap: &roost_storage::Snapshot) {
    let mut last = 0;
    for m in &snap.messages {
        assert!(m.uid > last, "UIDs not ascending: {last} then {}", m.uid);
        assert!(
            m.uid < snap.uidnext,
            "UID {} not below UIDNEXT {}",
            m.uid,
            snap.uidnext
        );
        assert!(m.modseq <= snap.highestmodseq);
        last = m.uid;
    }
}

/// A fresh scratch directory for targets that must go through files, on tmpfs when the
/// machine has one (fsync there costs nothing); removed when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("roost-fuzz-");
        b
    };
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a scratch directory")
}
