//! Giving back the pages of roost's own code that only ran while it started (configuration,
//! TLS setup, the command line, privilege changes). The kernel maps code pages in as they are
//! first run, and around them, and never unmaps them from a process on its own: in a server that
//! then runs for weeks they only swell its resident size. Dropping the mapping of the code once
//! serving has begun leaves only what serving runs, faulted back in from the page cache as it
//! is needed. Nothing is lost: code pages are never written, so each is re-read unchanged.

use std::time::Duration;

/// How long after start the startup code is dropped: long enough for the first connections'
/// one-time work (the first TLS handshake, the first login) to have run as well.
pub const AFTER_START: Duration = Duration::from_secs(5);

/// Drops the startup code's pages [`AFTER_START`] from now (call on the runtime that serves).
pub fn drop_startup_code_later() {
    tokio::spawn(async {
        tokio::time::sleep(AFTER_START).await;
        let dropped = drop_code_pages();
        tracing::debug!(bytes = dropped, "startup code unmapped");
    });
}

/// Drops this process's mappings of the executable's code (the `r-xp` mappings of its file)
/// from its page tables; returns how many bytes of mappings were dropped. Failures are ignored
/// (the pages simply stay resident).
pub fn drop_code_pages() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let exe = exe.to_string_lossy();
    // A binary replaced on disk while running shows as "<path> (deleted)".
    let exe = exe.trim_end_matches(" (deleted)");
    let mut dropped = 0;
    for line in maps.lines() {
        let Some((start, end)) = code_mapping_of(line, exe) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process's executable that is readable
        // and executable, never writable: its pages are the file's, unchanged, so dropping
        // them from the page tables only makes the next use fault them back in from the page
        // cache (MADV_DONTNEED on a private file mapping).
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            dropped += end - start;
        }
    }
    dropped
}

/// The address range of a `/proc/self/maps` line if it maps `exe`'s code: readable and
/// executable, not writable, private.
fn code_mapping_of(line: &str, exe: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if perms != "r-xp" || path != exe {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_code_is_picked() {
        let exe = "/usr/sbin/roost";
        let code = "55d0c0a00000-55d0c1500000 r-xp 00a00000 fd:01 1234  /usr/sbin/roost";
        assert_eq!(
            code_mapping_of(code, exe),
            Some((0x55d0c0a00000, 0x55d0c1500000))
        );
        for other in [
            "55d0c1500000-55d0c1600000 r--p 01500000 fd:01 1234  /usr/sbin/roost",
            "55d0c1600000-55d0c1700000 rw-p 01600000 fd:01 1234  /usr/sbin/roost",
            "7f0000000000-7f0000100000 r-xp 00000000 fd:01 99  /usr/lib/libc.so.6",
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0  [stack]",
            "garbage",
        ] {
            assert_eq!(code_mapping_of(other, exe), None, "{other}");
        }
    }

    /// Resident kB of this process's executable code, from /proc/self/smaps.
    fn resident_code_kb() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        let mut in_code = false;
        let mut kb = 0;
        for line in smaps.lines() {
            if line.contains('-') && line.split_ascii_whitespace().count() >= 5 {
                in_code = code_mapping_of(line, exe.trim_end_matches(" (deleted)")).is_some();
            } else if let (true, Some(rss)) = (in_code, line.strip_prefix("Rss:")) {
                kb += rss
                    .trim()
                    .trim_end_matches(" kB")
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
        kb
    }

    #[test]
    fn dropping_the_code_shrinks_what_is_resident_and_the_process_runs_on() {
        let before = resident_code_kb();
        assert!(drop_code_pages() > 0, "the test binary's code is mapped");
        let after = resident_code_kb();
        assert!(
            after < before,
            "{after} kB resident after, {before} kB before"
        );
        // Code runs on after its pages were dropped: they fault back in.
        let sum: u64 = (1..=100).sum();
        assert_eq!(sum, 5050);
    }
}
