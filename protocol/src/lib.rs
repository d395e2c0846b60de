//! # roost-protocol
//!
//! Pure, sans-I/O parsing of client commands and encoding of server responses for the
//! protocols roost speaks: IMAP (on top of `imap-codec`), POP3 and SMTP/LMTP, plus the SASL
//! mechanisms they share, ManageSieve (RFC 5804), and the Sieve language its scripts are in.
//!
//! ```text
//!   bytes from a socket ──► decoder (line / fragment, limits enforced) ──► Command value
//!   Response value      ──► encoder ──► bytes for a socket
//! ```
//!
//! This crate never touches sockets or files: the binary owns I/O and sessions own the effects.
//! "Need more bytes" is never an error: decoders return `Ok(None)` and wait to be fed.
#![forbid(unsafe_code)]

pub mod dot;
pub mod imap;
pub mod line;
pub mod managesieve;
pub mod pop3;
pub mod sasl;
pub mod sieve;
pub mod smtp;

/// The MIME parser the IMAP structure code is built on, for sessions that search decoded text.
pub use mail_parser;
