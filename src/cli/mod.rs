//! The binary's commands besides `serve` that act on mail: `roost deliver` (a local delivery
//! agent for an MTA) and `roost queue` (list or flush the outgoing queue). They sit above the
//! protocols and the process model, which they wire together the way the server does.
//! `roost import-dovecot` writes a roost.toml from a Dovecot configuration.

pub mod deliver;
pub mod import_dovecot;
pub mod queue;
