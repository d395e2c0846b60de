//! Subscriptions under concurrency: sessions of one user (threads of one process here, as in a
//! worker, and the same lock holds across processes) subscribing at the same moment, as a
//! client's many connections do on first login, neither fail nor lose each other's names.

use std::path::Path;

use roost_storage::{MailLocation, Store, UserVars};

fn store(dir: &Path, format: &str) -> Store {
    let location =
        MailLocation::parse(&format!("{format}:{}", dir.join("mail").display())).expect("location");
    let vars = UserVars {
        user: "alice".into(),
        home: Some(dir.to_path_buf()),
    };
    Store::open(&location, &vars).expect("store")
}

#[test]
fn sessions_subscribing_at_once_lose_nothing() {
    for format in ["maildir", "mbox"] {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("mail")).expect("mail root");
        let sessions: Vec<_> = (0..8)
            .map(|session| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = store(&path, format);
                    for n in 0..10 {
                        store
                            .set_subscribed(&format!("folder-{session}-{n}"), true)
                            .expect("subscribe");
                    }
                })
            })
            .collect();
        for session in sessions {
            session.join().expect("a session panicked");
        }
        let mut names = store(dir.path(), format).subscriptions().expect("read");
        names.sort();
        assert_eq!(names.len(), 80, "{format}: {names:?}");
        names.dedup();
        assert_eq!(names.len(), 80, "{format}: no name twice");
    }
}
