//! What a parsed Dovecot configuration means for roost: the `roost.toml` keys it carries over,
//! and for every setting it cannot carry, a line saying why.
//!
//! Only keys roost knows are written (see `src/config/raw.rs`). A setting whose value equals
//! what roost does anyway (`userdb { driver = passwd }` beside PAM, the special-use folders
//! roost creates, `username_format=%u`) is taken silently; an empty value is Dovecot's default
//! and counts as unset.

use std::collections::HashSet;
use std::fmt::Write;

use roost_storage::quota::QuotaLimits;

use super::parse::{Origin, Parsed, Section, Setting};

/// Dovecot 2.3's compiled-in `protocols` when a tree sets none.
const DEFAULT_PROTOCOLS: &str = "imap pop3 lmtp";
/// Dovecot's `base_dir`, where relative unix listeners live.
const DEFAULT_BASE_DIR: &str = "/var/run/dovecot";
/// Dovecot's PAM service name when a pam passdb names none.
const DEFAULT_PAM_SERVICE: &str = "dovecot";
/// The special-use folders roost creates for every user, with their attribute.
const SPECIAL_FOLDERS: [(&str, &str); 5] = crate::imap::SPECIAL_USE;
/// Why a second listen address is not carried.
const WHY_ONE_ADDRESS: &str = "roost binds one address per protocol; 0.0.0.0 was written \
     ([::] serves both families where net.ipv6.bindv6only is 0)";
/// Why a Dovecot service's process settings are not carried.
const WHY_PROCESSES: &str =
    "roost sizes its own processes (one login process, worker pools per mail owner); see [limits]";
/// Why TLS tuning is not carried.
const WHY_TLS: &str =
    "roost uses rustls: TLS 1.2 and 1.3 with its own cipher suites and key exchange, no client certificates";
/// Why a passwd-file's default scheme is not carried.
const WHY_SCHEME: &str =
    "roost reads the scheme from each hash's {SCHEME} prefix; entries without one fail";
/// Why a passwd-file path with variables is not carried.
const WHY_FILE_VARS: &str =
    "roost reads one fixed passwd-file per passdb, no per-user or per-domain files";
/// Why PAM options are not carried.
const WHY_PAM_OPTIONS: &str =
    "roost has no PAM options (it opens no PAM session and sets no credentials)";
/// Why userdb details are not carried.
const WHY_USERDB: &str =
    "roost takes a user's uid, gid and home from the passwd-file entry or the system account";
/// Why a userdb passwd-file other than a passdb's is not carried.
const WHY_USERDB_FILE: &str = "roost reads uid, gid and home from the entry in the passdb's own \
     passwd-file, not from a separate userdb file";
/// Why log settings are not carried.
const WHY_LOG: &str = "roost logs to stderr (journald); [log] level or RUST_LOG set the detail";

/// One setting that did not make it into roost.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Where it was written (`None`: something the tree left unset).
    pub origin: Option<Origin>,
    /// The setting, as doveconf names it (`service/imap-login/process_min_avail`).
    pub setting: String,
    /// Its value (or the part of it that was not carried).
    pub value: String,
    /// Why roost does not take it.
    pub why: String,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The TOML keys (without the header comment).
    pub toml: String,
    /// What was left behind, in the order of the source.
    pub dropped: Vec<Dropped>,
}

/// The roost keys being built, in the order they are written.
#[derive(Default)]
struct Out {
    protocols: Vec<String>,
    listen: Vec<(String, String)>,
    mail: Vec<(&'static str, String)>,
    auth: Vec<(&'static str, String)>,
    tls: Vec<(&'static str, String)>,
    smtp: Vec<(&'static str, String)>,
    sieve: Vec<(&'static str, String)>,
    server: Vec<(&'static str, String)>,
}

/// Walks the settings, marking each one carried, equivalent or dropped.
struct Mapper<'a> {
    settings: &'a [Setting],
    parsed: &'a Parsed,
    used: Vec<bool>,
    dropped: Vec<Dropped>,
    out: Out,
}

/// Maps a parsed Dovecot tree to roost's keys.
pub fn map(parsed: &Parsed) -> Imported {
    let mut m = Mapper {
        settings: &parsed.settings,
        parsed,
        used: vec![false; parsed.settings.len()],
        dropped: Vec::new(),
        out: Out::default(),
    };
    let ssl = m.top("ssl").map(|s| s.value.clone());
    let ssl = ssl.as_deref().unwrap_or("yes");
    protocols(&mut m, ssl);
    let passdb_files = passdbs(&mut m);
    let home = userdbs_and_owner(&mut m, &passdb_files);
    let home = home.or_else(|| mail_home(&mut m));
    mail(&mut m, home.as_deref());
    quota(&mut m);
    sieve(&mut m);
    auth(&mut m, ssl);
    tls(&mut m, ssl);
    namespaces(&mut m);
    submission_relay(&mut m);
    if let Some(s) = m.top("default_login_user") {
        m.out.server.push(("login_user", toml_string(&s.value)));
    }
    leftovers(&mut m);
    // In reading order: the order settings were read in, which follows the includes.
    let mut read_order = std::collections::HashMap::new();
    for (i, s) in parsed.settings.iter().enumerate() {
        read_order.entry(&s.origin).or_insert(i);
    }
    m.dropped
        .sort_by_key(|d| d.origin.as_ref().and_then(|o| read_order.get(o).copied()));
    Imported {
        toml: render(&m.out),
        dropped: m.dropped,
    }
}

impl<'a> Mapper<'a> {
    /// The settings matching `pred`, in order, all marked as handled.
    fn take(&mut self, pred: impl Fn(&Setting) -> bool) -> Vec<&'a Setting> {
        let mut found = Vec::new();
        for (i, s) in self.settings.iter().enumerate() {
            if pred(s) {
                self.used[i] = true;
                found.push(s);
            }
        }
        found
    }

    /// The effective top-level setting `key` (the last one written), if set to something.
    fn top(&mut self, key: &str) -> Option<&'a Setting> {
        self.take(|s| s.sections.is_empty() && s.key == key)
            .pop()
            .filter(|s| !s.value.is_empty())
    }

    /// The effective setting `key` inside the named section path, e.g.
    /// `[("service", "imap-login"), ("inet_listener", "imaps")]`.
    fn within(&mut self, path: &[(&str, &str)], key: &str) -> Option<&'a Setting> {
        self.take(|s| s.key == key && section_is(&s.sections, path))
            .pop()
            .filter(|s| !s.value.is_empty())
    }

    fn drop_setting(&mut self, s: &Setting, value: &str, why: impl Into<String>) {
        self.dropped.push(Dropped {
            origin: Some(s.origin.clone()),
            setting: s.path(),
            value: value.to_string(),
            why: why.into(),
        });
    }
}

fn section_is(sections: &[Section], path: &[(&str, &str)]) -> bool {
    sections.len() == path.len()
        && sections
            .iter()
            .zip(path)
            .all(|(s, (kind, name))| s.kind == *kind && s.name == *name)
}

/// `protocols`, `listen` and the services' inet listeners.
fn protocols(m: &mut Mapper<'_>, ssl: &str) {
    let default_addr = default_address(m);
    let (set, names) = protocol_names(m);
    let has_submissions = has_submissions_listener(m.parsed);
    for name in names.split_whitespace() {
        for &p in served_listeners(m, set, name, has_submissions) {
            if p == "lmtp" {
                lmtp(m, default_addr.as_deref());
                continue;
            }
            inet_listener(m, p, ssl, default_addr.as_deref());
        }
    }
}

/// The address listeners without their own use: the first of `listen`, or `0.0.0.0` (reported)
/// when the tree sets none.
fn default_address(m: &mut Mapper<'_>) -> Option<String> {
    match m.top("listen") {
        Some(s) => first_address(m, s),
        None => {
            m.dropped.push(Dropped {
                origin: None,
                setting: "listen".into(),
                value: "(not set: *, ::)".into(),
                why: WHY_ONE_ADDRESS.into(),
            });
            Some("0.0.0.0".to_string())
        }
    }
}

/// The `protocols` setting and its words, or Dovecot's compiled-in default (reported).
fn protocol_names<'a>(m: &mut Mapper<'a>) -> (Option<&'a Setting>, &'a str) {
    let set = m.top("protocols");
    if set.is_none() {
        m.dropped.push(Dropped {
            origin: None,
            setting: "protocols".into(),
            value: "(not set)".into(),
            why: format!("Dovecot's compiled-in default \"{DEFAULT_PROTOCOLS}\" was written"),
        });
    }
    let names = set.map(|s| s.value.as_str()).unwrap_or(DEFAULT_PROTOCOLS);
    (set, names)
}

/// Whether the tree opens `service submission-login { inet_listener submissions {`, the only
/// way Dovecot serves submission over implicit TLS.
fn has_submissions_listener(parsed: &Parsed) -> bool {
    parsed.sections.iter().any(|s| {
        let names: Vec<(&str, &str)> = s
            .path
            .iter()
            .map(|x| (x.kind.as_str(), x.name.as_str()))
            .collect();
        names
            == [
                ("service", "submission-login"),
                ("inet_listener", "submissions"),
            ]
    })
}

/// The roost listeners one word of `protocols` stands for; a protocol roost does not serve is
/// reported and stands for none.
fn served_listeners(
    m: &mut Mapper<'_>,
    set: Option<&Setting>,
    name: &str,
    has_submissions: bool,
) -> &'static [&'static str] {
    match name {
        "none" => &[],
        "imap" => &["imap", "imaps"],
        "pop3" => &["pop3", "pop3s"],
        "submission" if has_submissions => &["submission", "submissions"],
        "submission" => &["submission"],
        "lmtp" => &["lmtp"],
        "sieve" => &["sieve"],
        other => {
            let why = format!("roost does not serve {other}");
            if let Some(s) = set {
                m.drop_setting(s, other, why);
            }
            &[]
        }
    }
}

/// One roost listener (`imap`, `pop3s`, ...) from its Dovecot `inet_listener`: written unless
/// its port is 0, it needs TLS while `ssl = no`, or it has no usable address.
fn inet_listener(m: &mut Mapper<'_>, p: &str, ssl: &str, default_addr: Option<&str>) {
    let implicit_tls = matches!(p, "imaps" | "pop3s" | "submissions");
    let service = match p {
        "imap" | "imaps" => "imap-login",
        "pop3" | "pop3s" => "pop3-login",
        "sieve" => "managesieve-login",
        _ => "submission-login",
    };
    let path = [("service", service), ("inet_listener", p)];
    m.within(&path, "ssl");
    let port = match m.within(&path, "port") {
        Some(s) => match s.value.parse::<u16>() {
            Ok(0) => return,
            Ok(port) => port,
            Err(_) => {
                m.drop_setting(s, &s.value, "not a port number; the IANA port was written");
                iana_port(p)
            }
        },
        None => iana_port(p),
    };
    if implicit_tls && ssl == "no" {
        return;
    }
    let addr = match m.within(&path, "address") {
        Some(s) => first_address(m, s),
        None => default_addr.map(str::to_string),
    };
    let Some(addr) = addr else { return };
    m.out.protocols.push(p.to_string());
    m.out
        .listen
        .push((p.to_string(), toml_string(&format!("{addr}:{port}"))));
}

fn iana_port(p: &str) -> u16 {
    crate::config::Protocol::from_name(p)
        .map(|p| p.default_port())
        .unwrap_or(0)
}

/// The first address of a Dovecot `listen` list, as roost writes it (`0.0.0.0`, `[::]`); the
/// others are reported, since roost binds one address per protocol.
fn first_address(m: &mut Mapper<'_>, s: &Setting) -> Option<String> {
    let mut kept: Option<String> = None;
    for word in s.value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        let addr = match word {
            "*" => Some("0.0.0.0".to_string()),
            "::" | "[::]" => Some("[::]".to_string()),
            w => match w
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
            {
                Ok(std::net::IpAddr::V4(v4)) => Some(v4.to_string()),
                Ok(std::net::IpAddr::V6(v6)) => Some(format!("[{v6}]")),
                Err(_) => None,
            },
        };
        match (addr, &kept) {
            (None, _) => m.drop_setting(s, word, "roost listens on IP addresses, not host names"),
            (Some(a), None) => kept = Some(a),
            (Some(_), Some(first)) if first == "0.0.0.0" => {
                m.drop_setting(s, word, WHY_ONE_ADDRESS);
            }
            (Some(_), Some(first)) => {
                let why = format!("roost binds one address per protocol; {first} was kept");
                m.drop_setting(s, word, why);
            }
        }
    }
    kept
}

/// LMTP: a loopback inet listener of `service lmtp`, else its unix socket (an absolute one,
/// which is what an MTA was pointed at, before the default `lmtp` in base_dir).
fn lmtp(m: &mut Mapper<'_>, default_addr: Option<&str>) {
    for name in lmtp_listeners(m.parsed, "inet_listener") {
        if lmtp_inet(m, &name, default_addr) {
            return;
        }
    }
    lmtp_unix(m);
}

/// The names of `service lmtp`'s listeners of one kind (`inet_listener`, `unix_listener`), in
/// the order they were opened.
fn lmtp_listeners(parsed: &Parsed, kind: &str) -> Vec<String> {
    parsed
        .sections
        .iter()
        .filter_map(|s| match s.path.as_slice() {
            [svc, l] if svc.kind == "service" && svc.name == "lmtp" && l.kind == kind => {
                Some(l.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// One LMTP inet listener, written on its loopback address (any other is reported and
/// replaced by 127.0.0.1); false when its port is unset or 0, so the next one is tried.
fn lmtp_inet(m: &mut Mapper<'_>, name: &str, default_addr: Option<&str>) -> bool {
    let path = [("service", "lmtp"), ("inet_listener", name)];
    let port = m.within(&path, "port");
    let address = m.within(&path, "address");
    let Some(port) = port.filter(|p| p.value != "0") else {
        return false;
    };
    let addr = match address {
        Some(a) => first_address(m, a),
        None => default_addr.map(str::to_string),
    };
    let loopback = addr
        .as_deref()
        .map(|a| a.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    if !loopback {
        let shown = addr.clone().unwrap_or_default();
        m.drop_setting(
            port,
            &format!("{shown}:{}", port.value),
            "LMTP has no authentication, roost serves it on loopback or a unix socket only; \
             127.0.0.1 was written",
        );
    }
    let addr = if loopback {
        addr.unwrap_or_default()
    } else {
        "127.0.0.1".into()
    };
    m.out.protocols.push("lmtp".into());
    m.out.listen.push((
        "lmtp".into(),
        toml_string(&format!("{addr}:{}", port.value)),
    ));
    true
}

/// LMTP on a unix socket: the first absolute listener, else the first relative one, else
/// Dovecot's default `lmtp`, relative ones placed in `base_dir`.
fn lmtp_unix(m: &mut Mapper<'_>) {
    let mut unix = lmtp_listeners(m.parsed, "unix_listener");
    unix.sort_by_key(|n| !n.starts_with('/'));
    unix.dedup();
    let base = m
        .top("base_dir")
        .map(|s| s.value.clone())
        .unwrap_or_else(|| DEFAULT_BASE_DIR.into());
    let chosen = unix.first().cloned().unwrap_or_else(|| "lmtp".into());
    drop_unix_listener_settings(m, &unix, &chosen);
    let socket = if chosen.starts_with('/') {
        chosen
    } else {
        format!("{}/{chosen}", base.trim_end_matches('/'))
    };
    m.out.protocols.push("lmtp".into());
    m.out.listen.push(("lmtp".into(), toml_string(&socket)));
}

/// The settings inside LMTP's unix listeners (owner, mode), reported: roost sets the mode of
/// the one socket it keeps itself.
fn drop_unix_listener_settings(m: &mut Mapper<'_>, unix: &[String], chosen: &str) {
    for name in unix {
        let path = [("service", "lmtp"), ("unix_listener", name.as_str())];
        let owner: Vec<&Setting> =
            m.take(|s| section_is(&s.sections, &path) && !s.value.is_empty());
        for s in owner {
            if name == chosen {
                m.drop_setting(
                    s,
                    &s.value,
                    "roost creates its LMTP socket with mode 0666 itself",
                );
            } else {
                m.drop_setting(
                    s,
                    &s.value,
                    format!("roost has one LMTP socket; {chosen} was kept"),
                );
            }
        }
    }
}

/// The owner of virtual mail as found so far: a user name or uid, with the `mail_uid`
/// setting it came from (`None` when a static userdb's `uid=` gave it).
type Owner<'a> = Option<(String, Option<&'a Setting>)>;

/// `userdb` sections, `mail_uid` and `mail_gid`: the owner of virtual mail, and the home
/// template of a static userdb (returned, to complete a `~` mail location).
fn userdbs_and_owner(m: &mut Mapper<'_>, passdb_files: &[&str]) -> Option<String> {
    let mut owner = m.top("mail_uid").map(|s| (s.value.clone(), Some(s)));
    let mut home = None;
    for id in instances(m.parsed, "userdb") {
        userdb(m, id, passdb_files, &mut owner, &mut home);
    }
    mail_owner(m, &owner);
    home
}

/// One `userdb` section: its options reported, a static one's `uid=` and `home=` taken into
/// `owner` and `home`.
fn userdb<'a>(
    m: &mut Mapper<'a>,
    id: usize,
    passdb_files: &[&str],
    owner: &mut Owner<'a>,
    home: &mut Option<String>,
) {
    let settings: Vec<&Setting> = m.take(|s| s.sections.first().is_some_and(|x| x.id == id));
    let driver = settings
        .iter()
        .rev()
        .find(|s| s.key == "driver" && s.sections.len() == 1);
    let args = settings
        .iter()
        .rev()
        .find(|s| s.key == "args" && s.sections.len() == 1);
    let driver_name = driver.map(|d| d.value.as_str()).unwrap_or("");
    for s in &settings {
        let handled = s.sections.len() == 1 && matches!(s.key.as_str(), "driver" | "args");
        if !handled && !s.value.is_empty() {
            m.drop_setting(s, &s.value, WHY_USERDB);
        }
    }
    match driver_name {
        // The user's own account (beside PAM), or the passwd-file entry roost reads anyway.
        "passwd" | "passwd-file" | "prefetch" => {
            if let Some(a) = args {
                passwd_userdb(m, driver_name, a, passdb_files);
            }
        }
        "static" => {
            if let Some(a) = args {
                static_userdb(m, a, owner, home);
            }
        }
        other => {
            if let Some(d) = driver {
                m.drop_setting(
                    d,
                    other,
                    "roost knows users from passwd-files and system accounts only",
                );
            }
        }
    }
}

/// The args of a passwd, passwd-file or prefetch userdb: options reported, and a passwd-file
/// that is not one of the passdbs' own.
fn passwd_userdb(m: &mut Mapper<'_>, driver_name: &str, a: &Setting, passdb_files: &[&str]) {
    for word in a.value.split_whitespace() {
        if word.contains('=') && word != "username_format=%u" {
            m.drop_setting(a, word, "roost has no userdb options");
        }
    }
    let file = a.value.split_whitespace().rfind(|w| !w.contains('='));
    match file {
        Some(f) if driver_name == "passwd-file" && !passdb_files.contains(&f) => {
            m.drop_setting(a, f, WHY_USERDB_FILE)
        }
        _ => {}
    }
}

/// The args of a static userdb: `uid=` names the owner (unless one is set), `home=` the home
/// template; a different `gid=` and any other field are reported.
fn static_userdb<'a>(
    m: &mut Mapper<'a>,
    a: &Setting,
    owner: &mut Owner<'a>,
    home: &mut Option<String>,
) {
    for word in a.value.split_whitespace() {
        match word.split_once('=') {
            Some(("uid", user)) if owner.is_none() => {
                *owner = Some((user.to_string(), None));
            }
            Some(("uid", user)) if owner.as_ref().is_some_and(|(o, _)| o == user) => {}
            Some(("gid", group)) if owner.as_ref().is_some_and(|(o, _)| o == group) => {}
            Some(("gid", _)) => m.drop_setting(
                a,
                word,
                "roost runs mail processes with the primary group of [mail] user",
            ),
            Some(("home", template)) => *home = Some(template.to_string()),
            _ => m.drop_setting(
                a,
                word,
                "roost has no equivalent for this static userdb field",
            ),
        }
    }
}

/// `[mail] user` from the owner (a bare uid is reported), `mail_gid` reported unless it names
/// the owner, and `mail_privileged_group`.
fn mail_owner(m: &mut Mapper<'_>, owner: &Owner<'_>) {
    if let Some((user, origin)) = owner {
        if user.chars().all(|c| c.is_ascii_digit()) {
            if let Some(s) = origin {
                m.drop_setting(
                    s,
                    user,
                    "roost needs a user name for [mail] user, not a uid",
                );
            }
        } else {
            m.out.mail.push(("user", toml_string(user)));
        }
    }
    if let Some(gid) = m.top("mail_gid") {
        if owner.as_ref().map(|(u, _)| u.as_str()) != Some(gid.value.as_str()) {
            m.drop_setting(
                gid,
                &gid.value,
                "roost runs mail processes with the primary group of [mail] user",
            );
        }
    }
    if let Some(g) = m.top("mail_privileged_group") {
        m.out.mail.push(("privileged_group", toml_string(&g.value)));
    }
}

/// The ids of the top-level sections of one kind, in order (each unnamed `passdb {` is its own).
fn instances(parsed: &Parsed, kind: &str) -> Vec<usize> {
    parsed
        .sections
        .iter()
        .filter(|s| s.path.len() == 1 && s.path[0].kind == kind)
        .map(|s| s.path[0].id)
        .collect()
}

/// `mail_home`, Dovecot's home for users whose userdb gives none, to complete a `~` location
/// (reported, since a home in a passwd-file entry then no longer moves a user's mail).
fn mail_home(m: &mut Mapper<'_>) -> Option<String> {
    let s = m.top("mail_home")?;
    let uses_home = m
        .settings
        .iter()
        .rev()
        .find(|l| l.sections.is_empty() && l.key == "mail_location")
        .is_some_and(|l| l.value.contains(":~") || l.value.contains(":%h"));
    if uses_home {
        m.drop_setting(
            s,
            &s.value,
            "written into [mail] location in place of ~ (a home in a passwd-file entry no longer \
             moves that user's mail)",
        );
    }
    Some(s.value.clone())
}

/// Dovecot's submission service hands every message to one MTA; roost's `[smtp] relayhost`
/// does the same for all mail when no `local_domains` are set.
fn submission_relay(m: &mut Mapper<'_>) {
    let Some(host) = m.top("submission_relay_host") else {
        return;
    };
    let port = m.top("submission_relay_port");
    let port = port.map(|p| p.value.as_str()).unwrap_or("25");
    let relay = if host.value.contains(':') && !host.value.starts_with('[') {
        format!("[{}]:{port}", host.value)
    } else {
        format!("{}:{port}", host.value)
    };
    match crate::config::smtp::parse_relayhost(&relay) {
        Some(_) => m.out.smtp.push(("relayhost", toml_string(&relay))),
        None => m.drop_setting(host, &relay, "not a host:port roost reads"),
    }
}

/// `mail_location`, with a static userdb's home put in for `~`.
fn mail(m: &mut Mapper<'_>, home: Option<&str>) {
    let Some(s) = m.top("mail_location") else {
        m.dropped.push(Dropped {
            origin: None,
            setting: "mail_location".into(),
            value: "(not set)".into(),
            why: "Dovecot detects the format per user; roost needs one: \
                  \"maildir:~/Maildir\" was written, check it"
                .into(),
        });
        m.out
            .mail
            .insert(0, ("location", toml_string("maildir:~/Maildir")));
        return;
    };
    match location(&s.value, home) {
        Ok((loc, left)) => {
            for (part, why) in left {
                m.drop_setting(s, &part, why);
            }
            m.out.mail.insert(0, ("location", toml_string(&loc)));
        }
        Err(why) => m.drop_setting(s, &s.value, why),
    }
}

/// A Dovecot mail location as roost writes it, with the options roost lacks (each with why).
pub fn location(
    value: &str,
    home: Option<&str>,
) -> Result<(String, Vec<(String, String)>), String> {
    let (format, rest) = value
        .split_once(':')
        .ok_or("roost needs a format: maildir:PATH or mbox:PATH")?;
    if !matches!(format, "maildir" | "mbox") {
        return Err(format!(
            "roost stores mail in maildir and mbox only, not {format}"
        ));
    }
    let mut parts = rest.split(':');
    let home = home.map(variables).transpose()?;
    // A home the userdb fixes (a static userdb's `home=`) replaces `~` and `%h`, in the root
    // and in `INBOX=` alike: roost's passwd-file users have no home of their own.
    let at_home = |path: String| match (
        &home,
        path.strip_prefix('~').or_else(|| path.strip_prefix("%h")),
    ) {
        (Some(home), Some(tail)) => format!("{}{tail}", home.trim_end_matches('/')),
        _ => path,
    };
    let root = at_home(variables(parts.next().unwrap_or(""))?);
    if !(root.starts_with('/') || root.starts_with('~') || root.starts_with("%h")) {
        return Err("roost needs an absolute mail path, or one starting with ~ or %h".into());
    }
    let mut out = format!("{format}:{root}");
    let mut left = Vec::new();
    for option in parts.filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("INBOX", path)) if !path.is_empty() => {
                let _ = write!(out, ":INBOX={}", at_home(variables(path)?));
            }
            _ => left.push((
                option.to_string(),
                "roost has no such mail location option (only INBOX=)".to_string(),
            )),
        }
    }
    roost_storage::MailLocation::parse(&out).map_err(|e| e.to_string())?;
    Ok((out, left))
}

/// Dovecot's long variable names in roost's short form; anything roost does not expand is an
/// error (a lowercasing `%Lu` would silently change which directory a user gets).
fn variables(template: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (var, len) = if let Some(long) = after.strip_prefix('{') {
            let end = long.find('}').ok_or("unterminated %{variable}")?;
            let short = match &long[..end] {
                "user" => "u",
                "username" => "n",
                "domain" => "d",
                "home" => "h",
                other => return Err(format!("roost does not expand %{{{other}}}")),
            };
            (short, end + 2)
        } else {
            match after.chars().next() {
                Some(c @ ('u' | 'n' | 'd' | 'h' | '%')) => (&after[..c.len_utf8()], 1),
                _ => {
                    let shown: String = after.chars().take(3).collect();
                    return Err(format!(
                        "roost expands only %u, %n, %d, %h and ~, not %{shown}"
                    ));
                }
            }
        };
        out.push('%');
        out.push_str(var);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The quota plugin: one `quota_rule`, `quota_full_tempfail`; the backend is roost's own.
fn quota(m: &mut Mapper<'_>) {
    let plugin = [("plugin", "")];
    let mut carried = false;
    if let Some(rule) = m.within(&plugin, "quota_rule") {
        let mut limits = QuotaLimits::default();
        match limits.apply_rule(&rule.value) {
            Ok(()) => {
                if let Some(bytes) = limits.storage {
                    m.out.mail.push(("quota", toml_string(&size(bytes))));
                    carried = true;
                }
                if let Some(n) = limits.messages {
                    m.out.mail.push(("quota_messages", n.to_string()));
                    carried = true;
                }
            }
            Err(e) => m.drop_setting(rule, &rule.value, e.reason),
        }
    }
    if let Some(b) = m.within(&plugin, "quota") {
        let backend = b.value.split(':').next().unwrap_or("");
        if !matches!(backend, "maildir" | "count") {
            m.drop_setting(
                b,
                &b.value,
                "roost keeps its own per-user count (maildirsize)",
            );
        }
    }
    if let Some(t) = m.within(&plugin, "quota_full_tempfail") {
        m.out
            .mail
            .push(("quota_full_tempfail", (t.value == "yes").to_string()));
    }
    let plugins = m.take(|s| s.key == "mail_plugins" && !s.value.is_empty());
    let mut seen = HashSet::new();
    for s in plugins {
        for word in s.value.split_whitespace() {
            let ours = (carried && matches!(word, "quota" | "imap_quota")) || word == "sieve";
            if !ours && seen.insert((s.path(), word.to_string())) {
                m.drop_setting(s, word, "roost has no Dovecot plugins");
            }
        }
    }
}

/// Pigeonhole's settings: `sieve_before`/`sieve_after` (and their numbered siblings, in order)
/// become `[sieve] before`/`after`; where users' scripts live is roost's own.
fn sieve(m: &mut Mapper<'_>) {
    let plugin = [("plugin", "")];
    for (dovecot, roost) in [("sieve_before", "before"), ("sieve_after", "after")] {
        let mut paths = Vec::new();
        for n in 1..=9 {
            let key = match n {
                1 => dovecot.to_string(),
                n => format!("{dovecot}{n}"),
            };
            let Some(s) = m.within(&plugin, &key) else {
                continue;
            };
            match s.value.strip_prefix("file:").unwrap_or(&s.value) {
                path if path.ends_with(".sieve") => paths.push(toml_string(path)),
                _ => m.drop_setting(
                    s,
                    &s.value,
                    "roost runs script files, not directories: list each .sieve file",
                ),
            }
        }
        if !paths.is_empty() {
            m.out.sieve.push((roost, format!("[{}]", paths.join(", "))));
        }
    }
    if let Some(s) = m.within(&plugin, "sieve") {
        m.drop_setting(
            s,
            &s.value,
            "roost keeps each user's scripts in sieve/ of their mail root, the active one \
             named by the `active` link: move them there",
        );
    }
}

fn size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "k")] {
        if bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `passdb` sections: passwd-file paths and PAM service names, in order.
fn passdbs<'a>(m: &mut Mapper<'a>) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    for id in instances(m.parsed, "passdb") {
        if let Some((passdb, file)) = passdb(m, id) {
            out.push(passdb);
            files.extend(file);
        }
    }
    write_passdbs(m, &out);
    files
}

/// One `passdb` section as roost's `passdb` entry (`passwd-file:PATH`, `pam:SERVICE`) with
/// its passwd-file; `None` for one roost cannot use (reported).
fn passdb<'a>(m: &mut Mapper<'a>, id: usize) -> Option<(String, Option<&'a str>)> {
    let settings: Vec<&Setting> = m.take(|s| s.sections.first().is_some_and(|x| x.id == id));
    let last = |key: &str| {
        settings
            .iter()
            .rev()
            .find(|s| s.key == key && s.sections.len() == 1 && !s.value.is_empty())
            .copied()
    };
    let (driver, args) = (last("driver"), last("args"));
    let special = ["deny", "master", "pass"]
        .into_iter()
        .find_map(|k| last(k).filter(|s| s.value == "yes"));
    if let Some(s) = special {
        let why = format!("roost has no {} passdbs; this one was left out", s.key);
        for s in settings.iter().filter(|s| !s.value.is_empty()) {
            m.drop_setting(s, &s.value, why.clone());
        }
        return None;
    }
    for s in &settings {
        let handled = s.sections.len() == 1 && matches!(s.key.as_str(), "driver" | "args");
        if !handled && !s.value.is_empty() {
            m.drop_setting(
                s,
                &s.value,
                "roost has no passdb options besides the driver and its file or service",
            );
        }
    }
    let driver = driver?;
    let words: Vec<&str> = args
        .map(|a| a.value.split_whitespace().collect())
        .unwrap_or_default();
    let (options, plain): (Vec<&str>, Vec<&str>) = words.into_iter().partition(|w| w.contains('='));
    match driver.value.as_str() {
        "passwd-file" => passwd_file_passdb(m, args.unwrap_or(driver), driver, &options, &plain)
            .map(|path| (format!("passwd-file:{path}"), Some(path))),
        "pam" => Some((
            pam_passdb(m, args.unwrap_or(driver), &options, &plain),
            None,
        )),
        other => {
            let why = match other {
                "shadow" | "passwd" => {
                    "roost checks system passwords through PAM only: use pam:SERVICE"
                }
                _ => "roost reads passwd-files and PAM only",
            };
            m.drop_setting(driver, other, why);
            if let Some(a) = args {
                m.drop_setting(a, &a.value, "belongs to a passdb roost cannot use");
            }
            None
        }
    }
}

/// A passwd-file passdb's file (the last plain word of `a`, its args); its options, a path
/// with variables or a missing one reported.
fn passwd_file_passdb<'a>(
    m: &mut Mapper<'_>,
    a: &Setting,
    driver: &Setting,
    options: &[&str],
    plain: &[&'a str],
) -> Option<&'a str> {
    for &o in options {
        let why = match o {
            "username_format=%u" => continue,
            o if o.starts_with("scheme=") => WHY_SCHEME,
            _ => "roost has no passwd-file options",
        };
        m.drop_setting(a, o, why);
    }
    match plain.last() {
        Some(path) if path.contains('%') => {
            m.drop_setting(a, path, WHY_FILE_VARS);
            None
        }
        Some(path) => Some(*path),
        None => {
            m.drop_setting(driver, "passwd-file", "no file named in args");
            None
        }
    }
}

/// A PAM passdb as `pam:SERVICE`: its options reported, and a per-protocol service name
/// (`*`, `%s`) replaced by Dovecot's default.
fn pam_passdb(m: &mut Mapper<'_>, a: &Setting, options: &[&str], plain: &[&str]) -> String {
    for &o in options {
        m.drop_setting(a, o, WHY_PAM_OPTIONS);
    }
    let service = match plain.last() {
        Some(&name) if name != "*" && name != "%s" => name.to_string(),
        Some(&name) => {
            let why = format!(
                "roost uses one PAM service for every protocol; \
                 pam:{DEFAULT_PAM_SERVICE} was written"
            );
            m.drop_setting(a, name, why);
            DEFAULT_PAM_SERVICE.to_string()
        }
        None => DEFAULT_PAM_SERVICE.to_string(),
    };
    format!("pam:{service}")
}

/// `[auth] passdb` from the entries carried, or a line saying one must be added by hand.
fn write_passdbs(m: &mut Mapper<'_>, passdbs: &[String]) {
    if passdbs.is_empty() {
        m.dropped.push(Dropped {
            origin: None,
            setting: "passdb".into(),
            value: "(none carried)".into(),
            why: "roost needs one: add [auth] passdb by hand (passwd-file:PATH or pam:SERVICE)"
                .into(),
        });
    } else {
        let list: Vec<String> = passdbs.iter().map(|p| toml_string(p)).collect();
        m.out
            .auth
            .push(("passdb", format!("[{}]", list.join(", "))));
    }
}

/// Plaintext logins, trusted networks, the failure delay and the offered mechanisms.
fn auth(m: &mut Mapper<'_>, ssl: &str) {
    let disable = m.top("disable_plaintext_auth");
    let allow = disable.is_some_and(|s| s.value == "no") && ssl != "required";
    m.out
        .auth
        .push(("allow_plaintext_without_tls", allow.to_string()));
    if let Some(s) = m.top("login_trusted_networks") {
        let mut nets = vec!["127.0.0.0/8".to_string(), "::1/128".to_string()];
        for word in s.value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
            match word.parse::<crate::config::Network>() {
                Ok(_) if !nets.iter().any(|n| n == word) => nets.push(word.to_string()),
                Ok(_) => {}
                Err(e) => m.drop_setting(s, word, format!("not a network roost reads: {e}")),
            }
        }
        let list: Vec<String> = nets.iter().map(|n| toml_string(n)).collect();
        m.out
            .auth
            .push(("trusted_networks", format!("[{}]", list.join(", "))));
    }
    if let Some(s) = m.top("auth_failure_delay") {
        match millis(&s.value) {
            Some(ms) => m.out.auth.push(("failure_delay_ms", ms.to_string())),
            None => m.drop_setting(s, &s.value, "not a time roost reads"),
        }
    }
    if let Some(s) = m.top("auth_mechanisms") {
        let words: Vec<String> = s
            .value
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        for w in &words {
            if !matches!(w.as_str(), "plain" | "login") {
                m.drop_setting(s, w, "roost offers PLAIN and LOGIN only");
            }
        }
        for ours in ["plain", "login"] {
            if !words.iter().any(|w| w == ours) {
                let why = format!(
                    "roost always offers PLAIN and LOGIN; {} is offered although not listed",
                    ours.to_ascii_uppercase()
                );
                m.drop_setting(s, &s.value, why);
            }
        }
    }
}

/// A Dovecot time (`2 secs`, `500 msecs`, `1 min`, bare seconds) in milliseconds.
fn millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..at].parse().ok()?;
    let factor = match text[at..].trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// `ssl_cert` and `ssl_key` (without the `<`); the rest of `ssl_*` is rustls's business.
fn tls(m: &mut Mapper<'_>, ssl: &str) {
    let cert = m.top("ssl_cert");
    let key_set = m
        .take(|s| s.sections.is_empty() && s.key == "ssl_key")
        .pop();
    let key = key_set.filter(|s| !s.value.is_empty());
    if ssl == "no" {
        return;
    }
    match (cert, key) {
        (Some(c), Some(k)) => {
            m.out.tls.push(("cert", toml_string(&c.value)));
            m.out.tls.push(("key", toml_string(&k.value)));
        }
        (Some(c), None) => {
            let why = match key_set {
                Some(_) => {
                    "ssl_key is hidden (doveconf -n hides it; use doveconf -nP); \
                     set [tls] cert and key by hand"
                }
                None => "no ssl_key; roost needs both: set [tls] cert and key by hand",
            };
            m.drop_setting(c, &c.shown_value(), why);
        }
        (None, Some(k)) => m.drop_setting(
            k,
            &k.shown_value(),
            "no ssl_cert; roost needs both: set [tls] cert and key by hand",
        ),
        (None, None) => {}
    }
}

/// The INBOX namespace, as roost has it: INBOX, `/` as separator, no prefix, and the
/// special-use folders it creates for every user.
fn namespaces(m: &mut Mapper<'_>) {
    let ns: Vec<&Setting> = m.take(|s| s.sections.first().is_some_and(|x| x.kind == "namespace"));
    for s in ns {
        if s.value.is_empty() {
            continue;
        }
        let equivalent = match (s.sections.as_slice(), s.key.as_str(), s.value.as_str()) {
            ([_], "inbox", "yes") | ([_], "separator", "/") | ([_], "type", "private") => true,
            ([_], "list" | "subscriptions", "yes") => true,
            ([_, mailbox], "special_use", attr) if mailbox.kind == "mailbox" => SPECIAL_FOLDERS
                .iter()
                .any(|(name, a)| *name == mailbox.name && *a == attr),
            ([_, mailbox], "auto", "create" | "subscribe") if mailbox.kind == "mailbox" => {
                SPECIAL_FOLDERS
                    .iter()
                    .any(|(name, _)| *name == mailbox.name)
            }
            _ => false,
        };
        if !equivalent {
            let why = match s.key.as_str() {
                "separator" => "roost's hierarchy separator is always /",
                "special_use" | "auto" => {
                    "roost creates and marks Drafts, Sent, Trash, Junk and Archive only"
                }
                _ => "roost has one private namespace: INBOX and its folders, no prefix",
            };
            m.drop_setting(s, &s.value, why);
        }
    }
}

/// Everything not taken yet: reported once per setting (the last value written).
fn leftovers(m: &mut Mapper<'_>) {
    let mut seen = HashSet::new();
    let mut left = Vec::new();
    for (i, s) in m.settings.iter().enumerate().rev() {
        if m.used[i] || s.value.is_empty() {
            continue;
        }
        if seen.insert(s.path()) {
            left.push(s);
        }
    }
    for s in left.into_iter().rev() {
        let why = why_not(s);
        m.drop_setting(s, &s.shown_value(), why);
    }
}

/// Why a setting roost has no key for is left behind.
fn why_not(s: &Setting) -> String {
    let key = s.key.as_str();
    let outer = s
        .sections
        .first()
        .map(|x| (x.kind.as_str(), x.name.as_str()));
    match outer {
        Some(("service", "auth")) if s.sections.len() > 1 => {
            return "roost offers no SASL socket to an MTA; \
                    mail clients authenticate at roost's submission ports"
                .into()
        }
        Some(("service", _)) if s.sections.len() > 1 => {
            return "roost has one listener per protocol, set in [listen]".into()
        }
        Some(("service", _)) => return WHY_PROCESSES.into(),
        Some(("protocol", p)) => return format!("roost has no per-protocol settings ({p})"),
        Some(("plugin", _)) => return "roost has no Dovecot plugins".into(),
        Some(("local" | "remote", _)) => return "roost has no per-address settings".into(),
        Some((kind, _)) => return format!("roost has no {kind} sections"),
        None => {}
    }
    if key.starts_with("ssl") {
        return WHY_TLS.into();
    }
    if key.starts_with("log")
        || key.ends_with("_log_path")
        || key.ends_with("log_prefix")
        || key.starts_with("syslog")
        || key.ends_with("_debug")
        || key.ends_with("_verbose")
        || key.starts_with("auth_verbose")
        || key.starts_with("auth_debug")
        || key.starts_with("verbose_")
    {
        return WHY_LOG.into();
    }
    match key {
        "first_valid_uid" | "last_valid_uid" | "first_valid_gid" | "last_valid_gid" => {
            "roost has no uid range: it refuses only root (uid 0)".into()
        }
        "mail_max_userip_connections" => {
            "roost limits connections per IP ([limits] max_connections_per_ip), not per user".into()
        }
        "auth_username_format" => "roost looks users up by the name as the client sends it".into(),
        "login_greeting" => "roost's greeting is fixed".into(),
        "postmaster_address"
        | "hostname"
        | "recipient_delimiter"
        | "lda_mailbox_autocreate"
        | "lda_mailbox_autosubscribe" => "roost's delivery has no such setting".into(),
        _ => "roost has no equivalent setting".into(),
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn render(out: &Out) -> String {
    let mut text = String::new();
    let protocols: Vec<String> = out.protocols.iter().map(|p| toml_string(p)).collect();
    let _ = writeln!(text, "protocols = [{}]", protocols.join(", "));
    let sections: [(&str, Vec<(&str, &String)>); 7] = [
        (
            "listen",
            out.listen.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        ),
        ("mail", out.mail.iter().map(|(k, v)| (*k, v)).collect()),
        ("auth", out.auth.iter().map(|(k, v)| (*k, v)).collect()),
        ("tls", out.tls.iter().map(|(k, v)| (*k, v)).collect()),
        ("smtp", out.smtp.iter().map(|(k, v)| (*k, v)).collect()),
        ("sieve", out.sieve.iter().map(|(k, v)| (*k, v)).collect()),
        ("server", out.server.iter().map(|(k, v)| (*k, v)).collect()),
    ];
    for (name, keys) in sections {
        if keys.is_empty() {
            continue;
        }
        let _ = writeln!(text, "\n[{name}]");
        for (k, v) in keys {
            let _ = writeln!(text, "{k} = {v}");
        }
    }
    text
}
