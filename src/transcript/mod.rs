//! Golden transcripts: the RFCs' example sessions and the dialogues of real clients, replayed
//! byte for byte against the real IMAP, POP3 and SMTP session code, in-process, over an
//! in-memory pipe instead of a socket.
//!
//! ```text
//!   tests/transcripts/<protocol>/*.txt ── script (parse) ── fixture (temp dir, config, users,
//!                                                            seeded maildirs, SessionContext)
//!        C: lines ──► duplex pipe ──► imap::serve / pop3::serve / smtp::serve
//!        S: lines ◄── compared line by line (replay::check)
//! ```
//! No binary, no socket, no sleeping: each expected line is awaited (bounded), and a session
//! must end cleanly once the client closes. The format is documented in
//! `tests/transcripts/README.md`. With `ROOST_BLESS=1` the files are rewritten with what the
//! server says today (review the diff before committing it).

mod fixture;
mod replay;
mod script;

use std::path::{Path, PathBuf};

use crate::config::Protocol;

/// Where the transcripts live.
fn transcripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts")
}

/// Every `.txt` file of one protocol directory, sorted.
fn files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(transcripts().join(dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Replays (or, with `ROOST_BLESS=1`, rewrites) one transcript.
async fn run_one(path: PathBuf, protocol: Protocol, bless: bool) -> Result<(), String> {
    let script = replay::load(&path, protocol)?;
    let fixture = fixture::Fixture::new(&script.setup, &transcripts().join("messages"))?;
    if !bless {
        return replay::check(&script, &fixture).await;
    }
    let text = replay::bless(&script, &fixture).await?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write: {e}"))?;
    Ok(())
}

/// Runs every transcript of `dir` at once; fails listing each one that differs.
fn run_directory(dir: &str, protocol: Protocol) {
    let bless = std::env::var_os("ROOST_BLESS").is_some_and(|v| v == "1");
    let files = files(dir);
    assert!(
        !files.is_empty(),
        "no transcripts in tests/transcripts/{dir}"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime");
    let failures: Vec<String> = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for path in files {
            tasks.spawn(async move {
                let name = path.display().to_string();
                (name, run_one(path, protocol, bless).await)
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => failures.push(format!("{name}: {e}")),
                Err(e) => failures.push(format!("a transcript task failed: {e}")),
            }
        }
        failures
    });
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn imap_transcripts() {
    run_directory("imap", Protocol::Imap);
}

#[test]
fn pop3_transcripts() {
    run_directory("pop3", Protocol::Pop3);
}

#[test]
fn smtp_transcripts() {
    run_directory("smtp", Protocol::Submission);
}
