//! This machine's name, read once: maildir file names carry it, and the front-ends greet with it.

use std::sync::OnceLock;

/// The kernel's host name, or `localhost` if it cannot be read.
pub fn name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
}
