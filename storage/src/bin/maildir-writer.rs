//! Test helper for the crash tests: appends to (or expunges from) a maildir and acknowledges
//! each completed operation on stdout, so a test can kill it at any moment and check that
//! everything acknowledged survived.
//!
//! `maildir-writer DIR append N` prints `ACK <uid> <tag>` per durable append;
//! `maildir-writer DIR expunge` expunges every message one by one, printing `GONE <uid>`.
//! With `DIR` ending in `.mbox`, the same runs against an mbox file (state beside it).

use std::collections::BTreeSet;
use std::io::Write;

use roost_storage::maildir::Maildir;
use roost_storage::mbox::Mbox;
use roost_storage::{Flags, Mailbox};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: maildir-writer DIR append N | DIR expunge");
        std::process::exit(2);
    };
    let mut md: Box<dyn Mailbox> = if dir.ends_with(".mbox") {
        Box::new(Mbox::new(dir, format!("{dir}.uids")))
    } else {
        Box::new(Maildir::new(dir))
    };
    let mut out = std::io::stdout().lock();
    let result = match mode.as_str() {
        "append" => {
            let n: u32 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(100);
            (0..n).try_for_each(|i| {
                let tag = format!("{}-{i}", std::process::id());
                let body = format!(
                    "Subject: {tag}\r\n\r\n{}\r\n",
                    "x".repeat(i as usize * 37 % 5000)
                );
                let uid =
                    md.append(&mut body.as_bytes(), Flags::empty(), &BTreeSet::new(), None)?;
                let _ = writeln!(out, "ACK {uid} {tag}");
                let _ = out.flush();
                Ok(())
            })
        }
        "expunge" => md.sync().and_then(|snap| {
            snap.messages.iter().try_for_each(|m| {
                md.expunge(&[m.uid])?;
                let _ = writeln!(out, "GONE {}", m.uid);
                let _ = out.flush();
                Ok(())
            })
        }),
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("maildir-writer: {e}");
        std::process::exit(1);
    }
}
