//! One mail transaction as a session builds it (MAIL, RCPT…), and what it turns into once the
//! message is on disk: users to deliver to now, and queue recipients for later.

use roost_protocol::smtp::address::{Address, ReversePath};
use roost_protocol::smtp::params::{Body, MailParams, RcptParams};

use super::deliver::Outcome;
use super::queue::{self, Envelope, Recipient};
use super::resolve::Target;
use crate::session::privileged::LocalRecipient;

/// A recipient the session accepted, with where its mail goes.
#[derive(Debug, Clone)]
pub struct Rcpt {
    /// The address given in RCPT TO (checked, source route dropped).
    pub address: Address,
    /// The users and remote addresses it resolved to.
    pub targets: Vec<Target>,
    /// RCPT's DSN parameters (NOTIFY, ORCPT).
    pub params: RcptParams,
}

/// MAIL FROM and the accepted RCPTs.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The reverse path.
    pub from: ReversePath,
    /// MAIL FROM's parameters.
    pub params: MailParams,
    /// Accepted recipients, in order.
    pub rcpts: Vec<Rcpt>,
}

impl Transaction {
    /// A transaction after MAIL FROM.
    pub fn new(from: ReversePath, params: MailParams) -> Self {
        Self {
            from,
            params,
            rcpts: Vec::new(),
        }
    }

    /// Every local user once, in first-seen order, with the address that reached them first
    /// (what their Sieve script sees as the envelope recipient).
    pub fn local_recipients(&self) -> Vec<LocalRecipient> {
        let mut out: Vec<LocalRecipient> = Vec::new();
        for rcpt in &self.rcpts {
            for t in &rcpt.targets {
                if let Target::Local(name) = t {
                    if !out.iter().any(|r| &r.user == name) {
                        out.push(LocalRecipient {
                            user: name.clone(),
                            address: rcpt.address.to_string(),
                        });
                    }
                }
            }
        }
        out
    }

    /// What the queue must still do after local delivery gave `outcomes` (one per
    /// [`Transaction::local_users`] entry): every remote target, and local users not delivered.
    pub fn leftovers(&self, users: &[String], outcomes: &[Outcome]) -> Vec<Recipient> {
        let mut out: Vec<Recipient> = Vec::new();
        for rcpt in &self.rcpts {
            for t in &rcpt.targets {
                let mut recipient = match t {
                    Target::Remote(addr) => Recipient::new(addr.clone(), None),
                    Target::Local(name) => {
                        let i = users.iter().position(|u| u == name);
                        match i.and_then(|i| outcomes.get(i)) {
                            Some(Outcome::Delivered) => continue,
                            _ => Recipient::new(rcpt.address.clone(), Some(name.clone())),
                        }
                    }
                };
                recipient.notify = rcpt.params.notify;
                recipient.orcpt = rcpt.params.orcpt.clone();
                let seen = out.iter().any(|r| {
                    r.local_user == recipient.local_user
                        && (r.local_user.is_some() || r.address == recipient.address)
                });
                if !seen {
                    out.push(recipient);
                }
            }
        }
        out
    }

    /// The queue envelope for `recipients` under spool id `id`.
    pub fn envelope(&self, id: &str, recipients: Vec<Recipient>) -> Envelope {
        let now = queue::now();
        Envelope {
            id: id.to_string(),
            from: self.from.clone(),
            eight_bit: self.params.body == Body::EightBitMime,
            smtputf8: self.params.smtputf8,
            created: now,
            attempts: 0,
            next_attempt: now,
            last_error: None,
            recipients,
            ret: self.params.ret,
            envid: self.params.envid.clone(),
        }
    }

    /// The recipients whose every target is a local user that got the message, and who asked
    /// for a success DSN (NOTIFY=SUCCESS), as queue recipients for the report.
    pub fn delivered_and_notified(&self, users: &[String], outcomes: &[Outcome]) -> Vec<Recipient> {
        let delivered = |name: &String| {
            let i = users.iter().position(|u| u == name);
            matches!(i.and_then(|i| outcomes.get(i)), Some(Outcome::Delivered))
        };
        self.rcpts
            .iter()
            .filter(|r| r.params.notify.is_some_and(|n| n.success) && !r.targets.is_empty())
            .filter(|r| {
                r.targets.iter().all(|t| match t {
                    Target::Local(name) => delivered(name),
                    Target::Remote(_) => false,
                })
            })
            .map(|r| {
                let mut out = Recipient::new(r.address.clone(), None);
                out.notify = r.params.notify;
                out.orcpt = r.params.orcpt.clone();
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_remote_targets_and_undelivered_users() {
        let a = |s: &str| Address::parse(s).unwrap();
        let mut t = Transaction::new(ReversePath::Mailbox(a("a@x")), MailParams::default());
        t.rcpts.push(Rcpt {
            address: a("team@x"),
            targets: vec![
                Target::Local("alice".into()),
                Target::Local("bob".into()),
                Target::Remote(a("c@far")),
            ],
            params: RcptParams::default(),
        });
        t.rcpts.push(Rcpt {
            address: a("bob@x"),
            targets: vec![Target::Local("bob".into())],
            params: RcptParams::default(),
        });
        let recipients = t.local_recipients();
        let users: Vec<String> = recipients.iter().map(|r| r.user.clone()).collect();
        assert_eq!(users, ["alice", "bob"]);
        let to: Vec<&str> = recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            to,
            ["team@x", "team@x"],
            "the address that reached each user first"
        );
        let left = t.leftovers(
            &users,
            &[Outcome::Delivered, Outcome::Temporary("x".into())],
        );
        assert_eq!(
            left,
            vec![
                Recipient::new(a("team@x"), Some("bob".into())),
                Recipient::new(a("c@far"), None),
            ]
        );
    }
}
