//! The Debian package, for real: `packaging/deb/build` makes the .deb from the binary under
//! test, dpkg installs it (users, directories, config, unit, man page), the packaged binary
//! serves with the packaged config (under systemd when it runs, else started directly), a
//! PAM user logs in over IMAP, and `dpkg --purge` leaves nothing of it behind. Needs root and
//! dpkg; it changes the machine while it runs, and puts back the PAM file the other tests use.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{is_root, port_opens, roost_bin};

/// The PAM account `.ci/setup` makes.
const PAM_USER: (&str, &str) = ("roost-test", "roost-Test-pw1");
const PAM_FILE: &str = "/etc/pam.d/roost";

/// Purges the package and puts the PAM file back, even when the test fails half-way.
struct Installed {
    pam_before: Option<Vec<u8>>,
    server: Option<Child>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill").arg(server.id().to_string()).status();
            let _ = server.wait();
        }
        let _ = Command::new("dpkg")
            .args(["--purge", "roost"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        if let Some(pam) = &self.pam_before {
            let _ = std::fs::write(PAM_FILE, pam);
        }
    }
}

#[test]
fn the_deb_installs_serves_a_pam_user_and_purges_cleanly() {
    if !is_root() || Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("skipped: installing a package needs root and dpkg");
        return;
    }
    if common::uid_of(PAM_USER.0).is_none() {
        panic!(
            "the PAM test account {} is missing (.ci/setup makes it)",
            PAM_USER.0
        );
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let built = Command::new(repo.join("packaging/deb/build"))
        .args(["--fast", "--binary", roost_bin(), "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let contents = Command::new("dpkg-deb")
        .args(["-c", &deb])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&contents.stdout);
    for path in [
        "./usr/sbin/roost",
        "./etc/roost/roost.toml",
        "./lib/systemd/system/roost.service",
        "./usr/share/man/man8/roost.8.gz",
        "./etc/pam.d/roost",
    ] {
        assert!(
            listing.contains(path),
            "{path} missing from the package:\n{listing}"
        );
    }

    let mut installed = Installed {
        pam_before: std::fs::read(PAM_FILE).ok(),
        server: None,
    };
    let install = Command::new("dpkg")
        .args(["-i", "--force-confold", &deb])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(common::uid_of("roost").is_some() && common::uid_of("vmail").is_some());
    assert!(Path::new("/var/spool/roost").is_dir());
    let check = Command::new("/usr/sbin/roost")
        .args(["check-config", "-c", "/etc/roost/roost.toml"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let systemd = Path::new("/run/systemd/system").is_dir();
    if !systemd {
        installed.server = Some(
            Command::new("/usr/sbin/roost")
                .args(["serve", "-c", "/etc/roost/roost.toml"])
                .spawn()
                .unwrap(),
        );
    }
    assert!(
        port_opens(143, Duration::from_secs(20)),
        "nothing listens on 143"
    );
    let login = Command::new("python3")
        .args([
            "-c",
            "import imaplib,sys; m=imaplib.IMAP4('127.0.0.1',143); print(m.login(sys.argv[1],sys.argv[2])[0]); m.logout()",
            PAM_USER.0,
            PAM_USER.1,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&login.stdout).trim(),
        "OK",
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let man = Command::new("sh")
        .args(["-c", "zcat /usr/share/man/man8/roost.8.gz | head -1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&man.stdout).starts_with(".TH ROOST 8"));

    drop(installed);
    for gone in [
        "/usr/sbin/roost",
        "/etc/roost",
        "/var/spool/roost",
        "/lib/systemd/system/roost.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
    assert!(
        Path::new(PAM_FILE).is_file(),
        "the PAM file the other tests use is back"
    );
}
