//! The binary's commands besides `serve`: `roost deliver` (a local delivery agent for an MTA),
//! `roost queue` (list or flush the outgoing queue), `roost doctor` (check a host before going
//! live), `roost import-dovecot` (a roost.toml from a Dovecot configuration) and the hidden
//! `roost man` (the manual page the package installs). They sit above the protocols and the
//! process model, which they wire together the way the server does.

pub mod deliver;
pub mod doctor;
pub mod import_dovecot;
pub mod man;
pub mod queue;
