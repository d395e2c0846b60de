//! From an address to the users who get the mail: the virtual map first, then the aliases
//! (for local domains), then the user databases, recursively and loop-safe.
//!
//! This is the resolution of whichever process may read the maps and user databases: roost
//! started as a user, or the root master (the login process asks the master through
//! [`crate::session::privileged::Privileged::resolve`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use roost_protocol::smtp::address::Address;

use crate::auth::{Authenticator, MailUser};
use crate::config::aliases::ReloadingMap;
use crate::config::SmtpConfig;
pub use crate::session::privileged::{ResolveError, Target};

/// How deep aliases may nest.
const MAX_DEPTH: usize = 10;
/// How many targets one address may expand to.
const MAX_TARGETS: usize = 1000;

/// Resolves addresses with this process's own view of the maps and user databases.
pub struct Resolver {
    config: SmtpConfig,
    auth: Arc<Authenticator>,
    aliases: Option<ReloadingMap>,
    virtual_map: Option<ReloadingMap>,
}

impl Resolver {
    /// A resolver over `[smtp]`'s maps and the passdbs.
    pub fn new(config: &SmtpConfig, auth: Arc<Authenticator>) -> Self {
        Self {
            aliases: config.aliases.clone().map(|p| ReloadingMap::new(p, false)),
            virtual_map: config
                .virtual_map
                .clone()
                .map(|p| ReloadingMap::new(p, true)),
            config: config.clone(),
            auth,
        }
    }

    /// Blocking: the user record behind a canonical name, for delivery.
    pub fn user(&self, name: &str) -> Result<Option<MailUser>, String> {
        self.auth.lookup_user(name)
    }

    /// Blocking: every target of an address (deduplicated, sorted).
    pub fn resolve(&self, address: &Address) -> Result<Vec<Target>, ResolveError> {
        let mut out = BTreeSet::new();
        self.expand(address, 0, &mut out)?;
        if out.is_empty() {
            return Err(ResolveError::Unknown);
        }
        Ok(out.into_iter().collect())
    }

    fn expand(
        &self,
        address: &Address,
        depth: usize,
        out: &mut BTreeSet<Target>,
    ) -> Result<(), ResolveError> {
        if depth > MAX_DEPTH || out.len() > MAX_TARGETS {
            return Err(ResolveError::Loop);
        }
        if !self.config.is_local(address.domain()) {
            out.insert(Target::Remote(address.clone()));
            return Ok(());
        }
        let full = address.to_string().to_lowercase();
        let local = address.local_key();
        if let (Some(map), Some(domain)) = (&self.virtual_map, address.domain()) {
            let found = map.get(&full).or_else(|| map.get(&format!("@{domain}")));
            if let Some(targets) = found {
                return self.expand_all(&targets, &full, depth, out);
            }
        }
        if let Some(targets) = self.aliases.as_ref().and_then(|m| m.get(&local)) {
            return self.expand_all(&targets, &local, depth, out);
        }
        match self.find_user(address)? {
            Some(name) => {
                out.insert(Target::Local(name));
                Ok(())
            }
            // `user+detail@domain` is `user@domain`'s (RFC 5233 subaddressing, Postfix's and
            // Dovecot's `recipient_delimiter = +`); the detail stays in the envelope for Sieve.
            None => match without_detail(address) {
                Some(base) => self.expand(&base, depth + 1, out),
                None => Err(ResolveError::Unknown),
            },
        }
    }

    /// Expands an entry's targets; a target naming the entry itself is its user.
    fn expand_all(
        &self,
        targets: &[String],
        key: &str,
        depth: usize,
        out: &mut BTreeSet<Target>,
    ) -> Result<(), ResolveError> {
        for target in targets {
            let Ok(addr) = Address::parse(target) else {
                tracing::warn!("alias target {target:?} of {key} is not an address; skipped");
                continue;
            };
            if target.to_lowercase() == key {
                if let Some(name) = self.find_user(&addr)? {
                    out.insert(Target::Local(name));
                }
                continue;
            }
            match self.expand(&addr, depth + 1, out) {
                Err(ResolveError::Unknown) => {
                    tracing::warn!("alias target {target:?} of {key} does not exist; skipped")
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// A user named by the whole address, or by its local part.
    fn find_user(&self, address: &Address) -> Result<Option<String>, ResolveError> {
        let mut names = vec![address.to_string(), address.local().to_string()];
        names.push(address.local_key());
        for name in names {
            if let Some(user) = self
                .auth
                .lookup_user(&name)
                .map_err(ResolveError::Temporary)?
            {
                return Ok(Some(user.name));
            }
        }
        Ok(None)
    }
}

/// The separator of a subaddress's detail (`user+detail`).
pub const RECIPIENT_DELIMITER: char = '+';

/// `user@domain` for `user+detail@domain`; `None` when there is no detail to drop.
pub fn without_detail(address: &Address) -> Option<Address> {
    let local = address.local();
    let (base, _) = local.split_once(RECIPIENT_DELIMITER)?;
    if base.is_empty() {
        return None;
    }
    let text = match address.domain() {
        Some(domain) => format!("{base}@{domain}"),
        None => base.to_string(),
    };
    Address::parse(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, Passdb};

    fn resolver(dir: &std::path::Path) -> Resolver {
        std::fs::write(
            dir.join("users"),
            "alice:{PLAIN}x\nbob:{PLAIN}x\nwillie:{PLAIN}x\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("aliases"),
            "postmaster: root\nroot: alice\nteam: alice, bob, out@remote.example\nloop1: loop2\nloop2: loop1\nself: alice, self\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("virtual"),
            "sales@example.com willie\n@example.org bob\n",
        )
        .unwrap();
        let mut config = SmtpConfig::with_queue(dir.join("queue"));
        config.local_domains = vec!["example.com".into(), "example.org".into()];
        config.aliases = Some(dir.join("aliases"));
        config.virtual_map = Some(dir.join("virtual"));
        let auth = AuthConfig {
            passdbs: vec![Passdb::PasswdFile(dir.join("users"))],
            allow_plaintext_without_tls: false,
            trusted_networks: vec![],
            failure_delay: std::time::Duration::ZERO,
            max_failures_per_ip: 10,
            max_failures_per_user: 20,
            default_quota: Default::default(),
        };
        Resolver::new(&config, Arc::new(Authenticator::new(&auth)))
    }

    #[test]
    fn virtual_then_aliases_then_users() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolver(dir.path());
        let go = |a: &str| r.resolve(&Address::parse(a).unwrap());
        let local = |n: &str| Target::Local(n.into());
        assert_eq!(go("Alice@example.com"), Ok(vec![local("alice")]));
        assert_eq!(go("alice+lists@example.com"), Ok(vec![local("alice")]));
        assert_eq!(go("team+x@example.com"), go("team@example.com"));
        assert_eq!(go("+x@example.com"), Err(ResolveError::Unknown));
        assert_eq!(go("nobody+x@example.com"), Err(ResolveError::Unknown));
        assert_eq!(go("postmaster"), Ok(vec![local("alice")]));
        assert_eq!(go("sales@example.com"), Ok(vec![local("willie")]));
        assert_eq!(go("anything@example.org"), Ok(vec![local("bob")]));
        assert_eq!(
            go("team@example.com"),
            Ok(vec![
                local("alice"),
                local("bob"),
                Target::Remote(Address::parse("out@remote.example").unwrap())
            ])
        );
        assert_eq!(go("self@example.com"), Ok(vec![local("alice")]));
        assert_eq!(go("nobody-here@example.com"), Err(ResolveError::Unknown));
        assert_eq!(go("loop1@example.com"), Err(ResolveError::Loop));
        assert_eq!(
            go("x@remote.example"),
            Ok(vec![Target::Remote(
                Address::parse("x@remote.example").unwrap()
            )])
        );
    }
}
