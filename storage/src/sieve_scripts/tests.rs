use super::*;

fn store() -> (tempfile::TempDir, ScriptStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ScriptStore::new(dir.path().join("sieve"));
    (dir, store)
}

const LIMITS: ScriptLimits = ScriptLimits {
    max_scripts: 2,
    max_size: 10,
};

#[test]
fn put_get_list_and_activate() {
    let (_dir, s) = store();
    assert_eq!(s.list().unwrap(), vec![]);
    assert!(s.active().unwrap().is_none());
    s.put("b", b"keep;").unwrap();
    s.put("a", b"discard;").unwrap();
    s.put("a", b"stop;").unwrap();
    assert_eq!(s.get("a").unwrap(), b"stop;");
    s.set_active(Some("b")).unwrap();
    let names: Vec<(String, bool)> = s
        .list()
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.active))
        .collect();
    assert_eq!(names, vec![("a".into(), false), ("b".into(), true)]);
    assert_eq!(s.active().unwrap(), Some(("b".into(), b"keep;".to_vec())));
    assert_eq!(s.usage().unwrap(), (2, 10));
    s.set_active(None).unwrap();
    assert!(s.active().unwrap().is_none());
    s.set_active(None).unwrap();
    let leftovers: Vec<_> = fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_scripts_are_not_found() {
    let (_dir, s) = store();
    assert!(matches!(s.get("x"), Err(ScriptError::NotFound(_))));
    assert!(matches!(s.delete("x"), Err(ScriptError::NotFound(_))));
    assert!(matches!(
        s.set_active(Some("x")),
        Err(ScriptError::NotFound(_))
    ));
    assert!(matches!(s.rename("x", "y"), Err(ScriptError::NotFound(_))));
}

#[test]
fn the_active_script_cannot_be_deleted_and_survives_a_rename() {
    let (_dir, s) = store();
    s.put("main", b"keep;").unwrap();
    s.put("other", b"keep;").unwrap();
    s.set_active(Some("main")).unwrap();
    assert!(matches!(s.delete("main"), Err(ScriptError::Active(_))));
    assert!(matches!(
        s.rename("main", "other"),
        Err(ScriptError::AlreadyExists(_))
    ));
    s.rename("main", "renamed").unwrap();
    assert_eq!(s.active_name().unwrap().as_deref(), Some("renamed"));
    assert!(matches!(s.get("main"), Err(ScriptError::NotFound(_))));
    s.delete("other").unwrap();
    assert_eq!(s.usage().unwrap().0, 1);
}

#[test]
fn names_are_checked() {
    for bad in ["", ".hidden", "a/b", "nul\0", "tab\there", "x\u{2028}"] {
        assert!(
            matches!(check_name(bad), Err(ScriptError::InvalidName(..))),
            "{bad:?}"
        );
    }
    assert!(check_name(&"é".repeat(128)).is_ok());
    assert!(check_name(&"é".repeat(129)).is_err());
    let (_dir, s) = store();
    assert!(matches!(
        s.put("../x", b""),
        Err(ScriptError::InvalidName(..))
    ));
}

#[test]
fn limits_count_new_scripts_and_every_size() {
    let (_dir, s) = store();
    s.has_space("a", 10, LIMITS).unwrap();
    assert!(matches!(
        s.has_space("a", 11, LIMITS),
        Err(ScriptError::TooLarge(10))
    ));
    s.put("a", b"1").unwrap();
    s.put("b", b"2").unwrap();
    assert!(matches!(
        s.has_space("c", 1, LIMITS),
        Err(ScriptError::TooManyScripts(2))
    ));
    s.has_space("b", 5, LIMITS).unwrap();
}

#[test]
fn a_symlinked_script_is_not_followed() {
    let (dir, s) = store();
    s.ensure().unwrap();
    std::fs::write(dir.path().join("secret"), b"not a script").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), s.dir().join("x.sieve")).unwrap();
    assert!(matches!(s.get("x"), Err(ScriptError::NotFound(_))));
    assert_eq!(s.list().unwrap(), vec![]);
}

#[test]
fn racing_puts_leave_one_whole_version() {
    let (_dir, s) = store();
    let versions: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 100_000]).collect();
    std::thread::scope(|scope| {
        for version in &versions {
            let s = s.clone();
            scope.spawn(move || s.put("race", version).unwrap());
        }
    });
    let stored = s.get("race").unwrap();
    assert!(versions.contains(&stored), "a whole version, never a mix");
    assert_eq!(s.usage().unwrap(), (1, 100_000));
}

#[test]
fn a_dangling_active_link_means_none_active() {
    let (_dir, s) = store();
    s.ensure().unwrap();
    std::os::unix::fs::symlink("gone.sieve", s.dir().join(ACTIVE)).unwrap();
    assert!(s.active().unwrap().is_none());
    s.put("x", b"keep;").unwrap();
    assert!(!s.list().unwrap()[0].active);
}

#[test]
fn locations_put_scripts_beside_the_mail() {
    let vars = UserVars {
        user: "alice".into(),
        home: None,
    };
    let maildir = MailLocation::parse("maildir:/srv/mail/%u").unwrap();
    let mbox = MailLocation::parse("mbox:/srv/mbox/%u").unwrap();
    assert_eq!(
        maildir.sieve_dir_for(&vars).unwrap(),
        PathBuf::from("/srv/mail/alice/sieve")
    );
    assert_eq!(
        mbox.sieve_dir_for(&vars).unwrap(),
        PathBuf::from("/srv/mbox/alice/.roost/sieve")
    );
}

#[test]
fn an_open_store_and_its_location_agree_on_the_scripts_dir() {
    let dir = tempfile::tempdir().unwrap();
    let vars = UserVars {
        user: "alice".into(),
        home: None,
    };
    for spec in ["maildir:ROOT/md/%u", "mbox:ROOT/mb/%u:INBOX=ROOT/spool/%u"] {
        let spec = spec.replace("ROOT", &dir.path().display().to_string());
        let location = MailLocation::parse(&spec).unwrap();
        let store = crate::Store::open(&location, &vars).unwrap();
        let from_location = ScriptStore::for_user(&location, &vars).unwrap();
        assert_eq!(store.sieve_scripts().dir(), from_location.dir(), "{spec}");
    }
}
