//! What happens to a message between "accepted" and "stored", whatever door it came through
//! (submission, port 25, LMTP, the queue, `roost deliver`):
//!
//! ```text
//!   spam scanner (verdict headers) ─► admin `before` scripts ─► the user's active script
//!        ─► admin `after` scripts ─► actions: store (INBOX / folders, flags) · follow-ups
//! ```
//!
//! Storing happens where delivery runs, as the mail owner. What must leave the mailbox —
//! a redirect, a vacation reply — comes back to the caller as a [`Followup`], because only the
//! process that owns the queue may put mail into it.

pub mod followup;
pub mod run;
pub mod spam;
pub mod store;
pub mod vacation;

pub use followup::Followup;
