//! `cargo run --release -p roost-bench -- [MESSAGES]`: storage numbers for the README.
//! `cargo run --release -p roost-bench -- open DIR`: one cold-process open of a maildir.
//!
//! Builds a maildir of MESSAGES (default 100,000) small messages in a temp dir, then reports:
//! the first open (every message numbered and renamed, index built), a rebuild from the uidlist
//! and file names after the index is deleted, opens with a current index (warm, and cold when
//! the page cache can be dropped), and the peak RSS of this process.

use std::fs;
use std::io::Read;
use std::time::{Duration, Instant};

use roost_storage::maildir::Maildir;
use roost_storage::Mailbox;

fn time<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    println!("{what:<58} {:>9.1} ms", took.as_secs_f64() * 1000.0);
    (out, took)
}

fn drop_page_cache() -> bool {
    // Needs root and a kernel that lets this container do it; otherwise "cold" is skipped.
    flush_dirty_pages();
    fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn flush_dirty_pages() {
    let _ = std::process::Command::new("sync").status();
}

fn peak_rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `roost-bench open DIR`: one process opening one maildir, as a session would; for timing
/// the whole process against `dovecot/imap` doing `SELECT INBOX` on the same layout.
fn open_once(dir: &str) {
    let start = Instant::now();
    let snap = Maildir::new(dir).sync().expect("sync");
    println!(
        "{} messages, UIDVALIDITY {}, {:.1} ms",
        snap.messages.len(),
        snap.uidvalidity,
        start.elapsed().as_secs_f64() * 1000.0
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("open") {
        return open_once(
            &std::env::args()
                .nth(2)
                .expect("usage: roost-bench open DIR"),
        );
    }
    let messages: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("Maildir");
    let md = Maildir::new(&root);
    md.ensure().expect("maildir");
    println!("roost storage benchmark: maildir with {messages} messages\n");
    time("create message files in new/ (setup, not roost)", || {
        for i in 0..messages {
            let body =
                format!("From: a{i}@example.com\r\nSubject: message {i}\r\n\r\nbody {i}\r\n");
            fs::write(
                root.join("new").join(format!("1700000000.M{i}P1.bench")),
                body,
            )
            .expect("write");
        }
    });
    let (snap, _) = time(
        "first open: number, move to cur/, write uidlist + index",
        || Maildir::new(&root).sync().expect("sync"),
    );
    assert_eq!(snap.messages.len(), messages);
    time(
        "second open: lists cur/ once more, index made current",
        || Maildir::new(&root).sync().expect("sync"),
    );
    time("open with a current index (warm)", || {
        Maildir::new(&root).sync().expect("sync")
    });
    if drop_page_cache() {
        time(
            "open with a current index (cold: page cache dropped)",
            || Maildir::new(&root).sync().expect("sync"),
        );
    } else {
        println!(
            "{:<58} {:>12}",
            "open with a current index (cold)", "n/a (cannot drop caches here)"
        );
    }
    let mut open = Maildir::new(&root);
    open.sync().expect("sync");
    time(
        "APPEND one message (fsync, rename, a line to the uidlist)",
        || {
            let message = b"Subject: one more\r\n\r\nx\r\n";
            open.append(
                &mut &message[..],
                Default::default(),
                &Default::default(),
                None,
            )
            .expect("append")
        },
    );
    let snap_now = open.sync().expect("sync");
    time(
        "re-sync of an open session, nothing changed (IDLE wake-up)",
        || open.sync().expect("sync"),
    );
    time(
        "FETCH ENVELOPE 1:* first time: read headers, cache them",
        || {
            for m in &snap_now.messages {
                let mut head = vec![0u8; 256];
                let mut file = open.open_message(m.uid).expect("open");
                let n = file.read(&mut head).expect("read");
                open.cache(m.uid, "ENVELOPE", &head[..n]).expect("cache");
            }
        },
    );
    let mut reopened = Maildir::new(&root);
    let snap_again = reopened.sync().expect("sync");
    let (hits, _) = time(
        "FETCH ENVELOPE 1:* again, new session: from the cache",
        || {
            snap_again
                .messages
                .iter()
                .filter(|m| reopened.cached(m.uid, "ENVELOPE").is_some())
                .count()
        },
    );
    assert_eq!(hits, snap_again.messages.len());
    fs::remove_file(root.join("roost.index")).expect("index");
    time(
        "rebuild after the index is deleted (list cur/, stat all)",
        || Maildir::new(&root).sync().expect("sync"),
    );
    fs::remove_file(root.join("dovecot-uidlist")).expect("uidlist");
    fs::remove_file(root.join("roost.index")).expect("index");
    let (again, _) = time("rebuild after index AND uidlist are deleted", || {
        Maildir::new(&root).sync().expect("sync")
    });
    let uids = |s: &roost_storage::Snapshot| s.messages.iter().map(|m| m.uid).collect::<Vec<_>>();
    assert_eq!(
        (again.uidvalidity, uids(&again)),
        (snap_again.uidvalidity, uids(&snap_again)),
        "UIDs and UIDVALIDITY survive"
    );
    let index_size = fs::metadata(root.join("roost.index"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "\nindex size: {:.1} MB ({} bytes/message); peak RSS: {} MB",
        index_size as f64 / 1e6,
        index_size / messages.max(1) as u64,
        peak_rss_kb() / 1024
    );
}
