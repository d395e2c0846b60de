//! What the benchmark binaries share: starting the servers they compare (roost in both
//! process models, a private Dovecot), a raw IMAP client (plain or TLS), the test mailboxes,
//! the servers' memory and CPU as /proc shows them, profiles, and the results file `bench/run`
//! turns into BENCHMARKS.md.

/// The roost binary, ports, root or not, file limits, Ctrl-C.
pub mod harness;
/// A raw IMAP client, plain or TLS.
pub mod imap_client;
/// The test mailboxes: realistic messages, tiny ones.
pub mod imap_mail;
/// A server's process tree as /proc shows it: memory, CPU, stopping it.
pub mod imap_proc;
/// perf and strace profiles of a server under load.
pub mod profile;
/// The results file that becomes BENCHMARKS.md.
pub mod results;
/// roost in both process models and a private Dovecot, started alike.
pub mod servers;
/// The shared test certificate and a client that accepts it.
pub mod tls;
