//! Who may send what where: the open-relay rule and the sender rule, as pure decisions.
//!
//! Anyone may deliver to a local user; mail for anywhere else is accepted only from an
//! authenticated user, or on port 25 from `relay_networks`, and only when a relayhost exists.
//! An authenticated user may only use their own addresses as sender (RFC 6409 6.1).

use std::net::IpAddr;

use roost_protocol::smtp::address::Address;
use roost_protocol::smtp::Reply;

use super::resolve::Target;
use crate::config::SmtpConfig;

/// Which listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 587/465: authentication required before MAIL.
    Submission,
    /// 25: the world's MTAs delivering to local domains.
    Inbound,
    /// LMTP: the local MTA handing over mail for local users.
    Lmtp,
}

/// How a recipient is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// In a local domain: resolve it to users.
    Local,
    /// Elsewhere, and this client may relay: through the relayhost.
    Relay,
}

/// The open-relay rule for one RCPT.
pub fn route(
    mode: Mode,
    config: &SmtpConfig,
    rcpt: &Address,
    authenticated: bool,
    peer: IpAddr,
) -> Result<Route, Reply> {
    if config.is_local(rcpt.domain()) {
        return Ok(Route::Local);
    }
    let trusted = mode == Mode::Inbound && config.relay_networks.iter().any(|n| n.contains(peer));
    if mode == Mode::Lmtp || !(authenticated || trusted) {
        return Err(Reply::new(
            554,
            "5.7.1",
            &format!("<{rcpt}>: Relay access denied"),
        ));
    }
    if config.relayhost.is_none() {
        return Err(Reply::new(
            550,
            "5.4.4",
            &format!(
                "<{rcpt}>: Cannot send to other domains: this server has no relayhost configured"
            ),
        ));
    }
    Ok(Route::Relay)
}

/// Remote alias targets need the relayhost too.
pub fn targets_routable(
    config: &SmtpConfig,
    rcpt: &Address,
    targets: &[Target],
) -> Result<(), Reply> {
    let remote = targets.iter().any(|t| matches!(t, Target::Remote(_)));
    if remote && config.relayhost.is_none() {
        return Err(Reply::new(
            550,
            "5.3.5",
            &format!("<{rcpt}>: Alias forwards to another domain, but no relayhost is configured"),
        ));
    }
    Ok(())
}

/// Whether `user` may use `from` as sender: their own name in a local domain (or the whole
/// address when the login is one), an address `[smtp] senders` gives them, or a local address
/// that resolves to them alone (`resolved`).
pub fn sender_allowed(
    config: &SmtpConfig,
    user: &str,
    from: &Address,
    resolved: Option<&[Target]>,
) -> bool {
    let full = from.to_string().to_lowercase();
    let user_lc = user.to_lowercase();
    if full == user_lc {
        return true;
    }
    if !user.contains('@') && from.local_key() == user_lc && config.is_local(from.domain()) {
        return true;
    }
    let granted = config.senders.get(user).into_iter().flatten().any(|a| {
        *a == full
            || a.strip_prefix('@')
                .is_some_and(|d| from.domain() == Some(d))
    });
    granted || matches!(resolved, Some([Target::Local(name)]) if name == user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(relayhost: bool) -> SmtpConfig {
        let mut c = SmtpConfig::with_queue("q".into());
        c.local_domains = vec!["example.com".into()];
        c.relay_networks = vec!["192.0.2.0/24".parse().unwrap()];
        if relayhost {
            c.relayhost = crate::config::smtp::parse_relayhost("127.0.0.1:2525");
        }
        c.senders.insert(
            "alice".into(),
            vec!["info@example.org".into(), "@alice.example".into()],
        );
        c
    }

    #[test]
    fn nobody_unauthenticated_relays() {
        let a = |s: &str| Address::parse(s).unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let net: IpAddr = "192.0.2.9".parse().unwrap();
        for relayhost in [false, true] {
            let c = config(relayhost);
            for mode in [Mode::Submission, Mode::Inbound, Mode::Lmtp] {
                assert_eq!(
                    route(mode, &c, &a("bob@example.com"), false, lo),
                    Ok(Route::Local)
                );
                assert_eq!(
                    route(mode, &c, &a("postmaster"), false, lo),
                    Ok(Route::Local)
                );
                let refused = route(mode, &c, &a("x@remote.example"), false, lo).unwrap_err();
                assert_eq!((refused.code, refused.enhanced), (554, Some("5.7.1")));
            }
            let lmtp = route(Mode::Lmtp, &c, &a("x@remote.example"), true, net).unwrap_err();
            assert_eq!(lmtp.code, 554);
            let authed = route(Mode::Submission, &c, &a("x@remote.example"), true, lo);
            let trusted = route(Mode::Inbound, &c, &a("x@remote.example"), false, net);
            if relayhost {
                assert_eq!(authed, Ok(Route::Relay));
                assert_eq!(trusted, Ok(Route::Relay));
            } else {
                assert_eq!(authed.unwrap_err().code, 550);
                assert_eq!(trusted.unwrap_err().code, 550);
            }
        }
    }

    #[test]
    fn senders_must_be_the_users_own() {
        let c = config(false);
        let ok = |u: &str, f: &str, r: Option<&[Target]>| {
            sender_allowed(&c, u, &Address::parse(f).unwrap(), r)
        };
        assert!(ok("alice", "Alice@example.com", None));
        assert!(!ok("alice", "bob@example.com", None));
        assert!(!ok("alice", "alice@remote.example", None));
        assert!(ok("alice", "info@example.org", None));
        assert!(ok("alice", "x@alice.example", None));
        assert!(ok("bob@example.com", "bob@example.com", None));
        assert!(!ok("bob@example.com", "bob@example.net", None));
        let willie = [Target::Local("willie".into())];
        assert!(ok("willie", "sales@example.com", Some(&willie)));
        assert!(!ok("alice", "sales@example.com", Some(&willie)));
    }
}
