//! Kill -9 a writer at arbitrary moments during append and expunge: nothing acknowledged may be
//! lost or come back, UIDs stay unique, and the next open is clean. Bounded in iterations and
//! time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roost_storage::maildir::Maildir;
use roost_storage::mbox::Mbox;
use roost_storage::Mailbox;

const WRITER: &str = env!("CARGO_BIN_EXE_maildir-writer");

/// A pseudo-random delay of up to `max_ms`, different each call.
fn jitter(max_ms: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_micros((nanos / 1000) % (max_ms * 1000))
}

/// Runs the writer, kills it after a random delay, and returns its acknowledged lines.
fn run_and_kill(args: &[&str], max_ms: u64) -> Vec<String> {
    let mut child = Command::new(WRITER)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(jitter(max_ms));
    let _ = child.kill();
    let _ = child.wait();
    let mut lines = Vec::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap_or(0) > 0 {
        if line.ends_with('\n') {
            lines.push(line.trim_end().to_string());
        }
        line.clear();
    }
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(!err.contains("panicked"), "{err}");
    lines
}

fn subjects(md: &mut dyn Mailbox) -> BTreeMap<u32, String> {
    let snap = md.sync().unwrap();
    snap.messages
        .iter()
        .map(|m| {
            let mut text = String::new();
            md.open_message(m.uid)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            (m.uid, text.lines().next().unwrap_or("").to_string())
        })
        .collect()
}

/// How hard to push one backend in [`kill_during_writes`].
struct Plan {
    rounds: u32,
    appends: &'static str,
    append_kill_ms: u64,
    expunge_every: u32,
    expunge_kill_ms: u64,
    min_rounds: u32,
}

/// Rounds of appends killed at random points, every few rounds an expunge killed too; after
/// each, every acknowledged message must still be there under its UID (unless an expunge may
/// have taken it), no UID twice, and the next open clean and stable. Bounded to 20 s.
fn kill_during_writes(target: &str, open: impl Fn() -> Box<dyn Mailbox>, plan: Plan) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acked: BTreeMap<u32, String> = BTreeMap::new();
    let mut round = 0;
    while round < plan.rounds && Instant::now() < deadline {
        round += 1;
        for line in run_and_kill(&[target, "append", plan.appends], plan.append_kill_ms) {
            let mut parts = line.split(' ').skip(1);
            let uid: u32 = parts.next().unwrap().parse().unwrap();
            let tag = parts.next().unwrap().to_string();
            assert!(
                acked.insert(uid, format!("Subject: {tag}")).is_none(),
                "UID {uid} handed out twice"
            );
        }
        let expunge_round = round % plan.expunge_every == 0;
        if expunge_round {
            for line in run_and_kill(&[target, "expunge"], plan.expunge_kill_ms) {
                acked.remove(&line.split(' ').nth(1).unwrap().parse().unwrap());
            }
        }
        let mut mailbox = open();
        let found = subjects(mailbox.as_mut());
        for (uid, subject) in &acked {
            match found.get(uid) {
                Some(found_subject) => {
                    assert_eq!(found_subject, subject, "UID {uid} changed content")
                }
                // Only an expunge killed before it could acknowledge may remove a message.
                None => assert!(expunge_round, "acknowledged UID {uid} lost"),
            }
        }
        assert_eq!(
            open().sync().unwrap(),
            mailbox.sync().unwrap(),
            "the next open is clean and stable"
        );
        acked.retain(|uid, _| found.contains_key(uid));
    }
    assert!(round >= plan.min_rounds, "ran {round} rounds");
}

#[test]
fn killed_appends_and_expunges_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let open = || Box::new(Maildir::new(&root)) as Box<dyn Mailbox>;
    let plan = Plan {
        rounds: 40,
        appends: "200",
        append_kill_ms: 60,
        expunge_every: 4,
        expunge_kill_ms: 20,
        min_rounds: 5,
    };
    kill_during_writes(root.to_str().unwrap(), open, plan);
}

#[test]
fn appends_acknowledged_before_a_kill_are_all_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let root_arg = root.to_str().unwrap();
    for _ in 0..10 {
        let acked = run_and_kill(&[root_arg, "append", "500"], 80);
        let found = subjects(&mut Maildir::new(&root));
        for line in acked {
            let mut parts = line.split(' ').skip(1);
            let uid: u32 = parts.next().unwrap().parse().unwrap();
            let tag = parts.next().unwrap();
            assert_eq!(
                found.get(&uid).map(String::as_str),
                Some(format!("Subject: {tag}").as_str()),
                "acknowledged UID {uid} lost"
            );
        }
    }
}

#[test]
fn leftovers_of_crashed_deliveries_are_cleaned_from_tmp_after_36_hours() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let mut md = Maildir::new(&root);
    md.sync().unwrap();
    let old = root.join("tmp/1600000000.M1P1.host");
    let fresh = root.join("tmp/1700000000.M2P2.host");
    let staged = root.join("tmp/1700000001.M3P3.host");
    std::fs::write(&old, "partial").unwrap();
    std::fs::write(&fresh, "being written").unwrap();
    std::fs::write(&staged, "an APPEND of an old message, waiting for the lock").unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(37 * 3600);
    let set_times = |path: &std::path::Path, times: std::fs::FileTimes| {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_times(times).unwrap();
    };
    let untouched = std::fs::FileTimes::new()
        .set_accessed(long_ago)
        .set_modified(long_ago);
    set_times(&old, untouched);
    set_times(&staged, std::fs::FileTimes::new().set_modified(long_ago));
    std::fs::remove_file(root.join("roost.index")).unwrap();
    md.sync().unwrap();
    assert!(!old.exists(), "stale tmp file removed");
    assert!(fresh.exists(), "a delivery in progress is left alone");
    assert!(staged.exists(), "an old INTERNALDATE is not an old file");
}

#[test]
fn killed_mbox_appends_and_rewrites_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("INBOX.mbox");
    let open =
        || Box::new(Mbox::new(&path, dir.path().join("INBOX.mbox.uids"))) as Box<dyn Mailbox>;
    let plan = Plan {
        rounds: 24,
        appends: "60",
        append_kill_ms: 40,
        expunge_every: 3,
        expunge_kill_ms: 30,
        min_rounds: 3,
    };
    kill_during_writes(path.to_str().unwrap(), open, plan);
}
