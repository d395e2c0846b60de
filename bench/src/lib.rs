//! What the benchmark binaries share: starting the servers they compare (roost in both
//! process models, a private Dovecot), a raw IMAP client (plain or TLS), the test mailboxes,
//! the servers' memory and CPU as /proc shows them, profiles, and the results file `bench/run`
//! turns into BENCHMARKS.md.

pub mod harness;
pub mod imap_client;
pub mod imap_mail;
pub mod imap_proc;
pub mod profile;
pub mod results;
pub mod servers;
pub mod tls;
