//! The mapping on realistic trees: Debian's default shape, virtual users in a passwd-file owned
//! by vmail, system users through PAM with mbox in /var/mail.

use std::path::Path;

use super::map::{self, Imported};
use super::parse::{self, memory::Memory};

fn import(files: &[(&str, &str)]) -> Imported {
    let parsed = parse::parse(&Memory::new(files), Path::new("/etc/dovecot/dovecot.conf"))
        .expect("the tree parses");
    map::map(&parsed)
}

/// The not-carried lines as `setting = value`, to compare without the reasons.
fn dropped(i: &Imported) -> Vec<String> {
    i.dropped
        .iter()
        .map(|d| format!("{} = {}", d.setting, d.value))
        .collect()
}

/// The shape of Debian's dovecot-core package, comments left out.
const DEBIAN: &[(&str, &str)] = &[
    (
        "/etc/dovecot/dovecot.conf",
        "## Dovecot configuration file\n\
         !include_try /usr/share/dovecot/protocols.d/*.protocol\n\
         #listen = *, ::\n\
         dict {\n  #quota = mysql:/etc/dovecot/dovecot-dict-sql.conf.ext\n}\n\
         !include conf.d/*.conf\n\
         !include_try local.conf\n",
    ),
    ("/usr/share/dovecot/protocols.d/imapd.protocol", "protocols = $protocols imap\n"),
    ("/usr/share/dovecot/protocols.d/pop3d.protocol", "protocols = $protocols pop3\n"),
    ("/usr/share/dovecot/protocols.d/lmtpd.protocol", "protocols = $protocols lmtp\n"),
    (
        "/etc/dovecot/conf.d/10-auth.conf",
        "#disable_plaintext_auth = yes\nauth_mechanisms = plain\n\
         !include auth-system.conf.ext\n#!include auth-passwdfile.conf.ext\n",
    ),
    (
        "/etc/dovecot/conf.d/auth-system.conf.ext",
        "passdb {\n  driver = pam\n  # [session=yes] [setcred=yes] [failure_show_msg=yes]\n  #args = dovecot\n}\n\
         userdb {\n  # <doc/wiki/AuthDatabase.Passwd.txt>\n  driver = passwd\n}\n",
    ),
    (
        "/etc/dovecot/conf.d/10-mail.conf",
        "mail_location = mbox:~/mail:INBOX=/var/mail/%u\n\
         namespace inbox {\n  inbox = yes\n}\n\
         mail_privileged_group = mail\n\
         protocol !indexer-worker {\n  #mail_vsize_bg_after_count = 0\n}\n",
    ),
    (
        "/etc/dovecot/conf.d/10-master.conf",
        "service imap-login {\n  inet_listener imap {\n    #port = 143\n  }\n  inet_listener imaps {\n    #port = 993\n    #ssl = yes\n  }\n}\n\
         service pop3-login {\n  inet_listener pop3 {\n  }\n  inet_listener pop3s {\n  }\n}\n\
         service lmtp {\n  unix_listener lmtp {\n    #mode = 0666\n  }\n}\n\
         service auth {\n  unix_listener auth-userdb {\n  }\n}\n",
    ),
    (
        "/etc/dovecot/conf.d/10-ssl.conf",
        "ssl = yes\n\
         ssl_cert = </etc/dovecot/private/dovecot.pem\n\
         ssl_key = </etc/dovecot/private/dovecot.key\n\
         ssl_client_ca_dir = /etc/ssl/certs\n\
         ssl_dh = </usr/share/dovecot/dh.pem\n",
    ),
    (
        "/etc/dovecot/conf.d/15-mailboxes.conf",
        "namespace inbox {\n\
           mailbox Drafts {\n    special_use = \\Drafts\n  }\n\
           mailbox Junk {\n    special_use = \\Junk\n  }\n\
           mailbox Trash {\n    special_use = \\Trash\n  }\n\
           mailbox Sent {\n    special_use = \\Sent\n  }\n\
           mailbox \"Sent Messages\" {\n    special_use = \\Sent\n  }\n}\n",
    ),
    ("/etc/dovecot/conf.d/20-imap.conf", "protocol imap {\n  #mail_plugins = $mail_plugins\n}\n"),
];

#[test]
fn debians_default_tree() {
    let i = import(DEBIAN);
    assert_eq!(
        i.toml,
        r#"protocols = ["imap", "imaps", "lmtp", "pop3", "pop3s"]

[listen]
imap = "0.0.0.0:143"
imaps = "0.0.0.0:993"
lmtp = "/var/run/dovecot/lmtp"
pop3 = "0.0.0.0:110"
pop3s = "0.0.0.0:995"

[mail]
location = "mbox:~/mail:INBOX=/var/mail/%u"
privileged_group = "mail"

[auth]
passdb = ["pam:dovecot"]
allow_plaintext_without_tls = false

[tls]
cert = "/etc/dovecot/private/dovecot.pem"
key = "/etc/dovecot/private/dovecot.key"
"#
    );
    assert_eq!(
        dropped(&i),
        [
            "listen = (not set: *, ::)",
            "auth_mechanisms = plain",
            "ssl_client_ca_dir = /etc/ssl/certs",
            "ssl_dh = </usr/share/dovecot/dh.pem",
            "namespace/inbox/mailbox/Sent Messages/special_use = \\Sent",
        ]
    );
    let first = &i.dropped[1];
    assert_eq!(first.origin.as_ref().unwrap().line, 2);
    assert!(first.why.contains("LOGIN"), "{}", first.why);
}

#[test]
fn virtual_users_in_a_passwd_file_owned_by_vmail() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "protocols = imap lmtp submission\n\
         listen = 192.0.2.10, 2001:db8::10\n\
         mail_location = maildir:/srv/vmail/%d/%n/Maildir:LAYOUT=fs\n\
         mail_uid = vmail\nmail_gid = vmail\nfirst_valid_uid = 150\n\
         disable_plaintext_auth = no\nssl = required\n\
         ssl_cert = </etc/letsencrypt/live/mail.example.com/fullchain.pem\n\
         ssl_key = </etc/letsencrypt/live/mail.example.com/privkey.pem\n\
         ssl_min_protocol = TLSv1.2\n\
         auth_mechanisms = plain login cram-md5\n\
         auth_failure_delay = 3 secs\n\
         login_trusted_networks = 10.0.0.0/8\n\
         default_login_user = dovenull\n\
         mail_plugins = $mail_plugins quota\n\
         passdb {\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT username_format=%u /etc/dovecot/users\n}\n\
         passdb {\n  driver = sql\n  args = /etc/dovecot/dovecot-sql.conf.ext\n}\n\
         userdb {\n  driver = passwd-file\n  args = username_format=%u /etc/dovecot/users\n}\n\
         service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n  inet_listener imaps {\n    port = 10993\n  }\n  process_min_avail = 4\n}\n\
         service submission-login {\n  inet_listener submissions {\n    port = 465\n    ssl = yes\n  }\n}\n\
         service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = 24\n  }\n}\n\
         service auth {\n  unix_listener /var/spool/postfix/private/auth {\n    mode = 0660\n    user = postfix\n  }\n}\n\
         plugin {\n  quota = maildir:User quota\n  quota_rule = *:storage=1G\n  quota_full_tempfail = yes\n}\n",
    )]);
    assert_eq!(
        i.toml,
        r#"protocols = ["imaps", "lmtp", "submission", "submissions"]

[listen]
imaps = "192.0.2.10:10993"
lmtp = "127.0.0.1:24"
submission = "192.0.2.10:587"
submissions = "192.0.2.10:465"

[mail]
location = "maildir:/srv/vmail/%d/%n/Maildir"
user = "vmail"
quota = "1G"
quota_full_tempfail = true

[auth]
passdb = ["passwd-file:/etc/dovecot/users"]
allow_plaintext_without_tls = false
trusted_networks = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
failure_delay_ms = 3000

[tls]
cert = "/etc/letsencrypt/live/mail.example.com/fullchain.pem"
key = "/etc/letsencrypt/live/mail.example.com/privkey.pem"

[server]
login_user = "dovenull"
"#
    );
    assert_eq!(
        dropped(&i),
        [
            "listen = 2001:db8::10",
            "mail_location = LAYOUT=fs",
            "first_valid_uid = 150",
            "ssl_min_protocol = TLSv1.2",
            "auth_mechanisms = cram-md5",
            "passdb/args = scheme=SHA512-CRYPT",
            "passdb/driver = sql",
            "passdb/args = /etc/dovecot/dovecot-sql.conf.ext",
            "service/imap-login/process_min_avail = 4",
            "service/auth/unix_listener//var/spool/postfix/private/auth/mode = 0660",
            "service/auth/unix_listener//var/spool/postfix/private/auth/user = postfix",
        ]
    );
    let sasl = &i.dropped[9];
    assert!(sasl.why.contains("no SASL socket"), "{}", sasl.why);
}

#[test]
fn pam_users_with_mbox_in_var_mail() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "protocols = \" imap pop3 sieve\"\n\
         listen = *, ::\n\
         mail_location = mbox:~/mail:INBOX=/var/mail/%{user}:INDEX=/var/cache/dovecot/%u\n\
         mail_privileged_group = mail\n\
         ssl = no\n\
         passdb {\n  driver = pam\n  args = session=yes *\n}\n\
         userdb {\n  driver = passwd\n}\n\
         service lmtp {\n  unix_listener /var/spool/postfix/private/dovecot-lmtp {\n    mode = 0600\n  }\n}\n\
         protocol pop3 {\n  pop3_uidl_format = %08Xu%08Xv\n}\n",
    )]);
    assert_eq!(
        i.toml,
        r#"protocols = ["imap", "pop3", "sieve"]

[listen]
imap = "0.0.0.0:143"
pop3 = "0.0.0.0:110"
sieve = "0.0.0.0:4190"

[mail]
location = "mbox:~/mail:INBOX=/var/mail/%u"
privileged_group = "mail"

[auth]
passdb = ["pam:dovecot"]
allow_plaintext_without_tls = false
"#
    );
    assert_eq!(
        dropped(&i),
        [
            "listen = ::",
            "mail_location = INDEX=/var/cache/dovecot/%u",
            "passdb/args = session=yes",
            "passdb/args = *",
            "service/lmtp/unix_listener//var/spool/postfix/private/dovecot-lmtp/mode = 0600",
            "protocol/pop3/pop3_uidl_format = %08Xu%08Xv",
        ]
    );
}

#[test]
fn a_static_userdb_home_completes_a_tilde_location() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "listen = *\nprotocols = imap\nmail_location = maildir:~/Maildir\n\
         passdb {\n  driver = passwd-file\n  args = /etc/dovecot/users\n}\n\
         userdb {\n  driver = static\n  args = uid=vmail gid=vmail home=/var/vmail/%d/%n\n}\n",
    )]);
    assert!(
        i.toml
            .contains("location = \"maildir:/var/vmail/%d/%n/Maildir\"\nuser = \"vmail\"\n"),
        "{}",
        i.toml
    );
    assert!(i.dropped.is_empty(), "{:?}", i.dropped);
}

#[test]
fn locations_roost_cannot_expand_are_not_guessed() {
    assert_eq!(
        map::location("maildir:/srv/%Lu", None).unwrap_err(),
        "roost expands only %u, %n, %d, %h and ~, not %Lu"
    );
    assert!(map::location("mdbox:~/mdbox", None)
        .unwrap_err()
        .contains("mdbox"));
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "listen = *\nprotocols = imap\nmail_location = sdbox:~/dbox\npassdb {\n  driver = pam\n}\n",
    )]);
    assert!(!i.toml.contains("location"), "{}", i.toml);
    assert_eq!(dropped(&i), ["mail_location = sdbox:~/dbox"]);
}

#[test]
fn deny_and_master_passdbs_are_left_out_whole() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "listen = *\nprotocols = imap\nmail_location = maildir:~/Maildir\n\
         passdb {\n  driver = passwd-file\n  deny = yes\n  args = /etc/dovecot/deny-users\n}\n\
         passdb {\n  driver = pam\n  args = imap\n}\n\
         userdb {\n  driver = passwd-file\n  args = /etc/dovecot/userdb\n}\n",
    )]);
    assert!(i.toml.contains("passdb = [\"pam:imap\"]"), "{}", i.toml);
    assert_eq!(
        dropped(&i),
        [
            "passdb/driver = passwd-file",
            "passdb/deny = yes",
            "passdb/args = /etc/dovecot/deny-users",
            "userdb/args = /etc/dovecot/userdb",
        ]
    );
}

#[test]
fn mail_home_completes_the_location_and_submission_relays_through_the_mta() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "listen = *\nprotocols = submission\nmail_home = /srv/mail/%d/%n\nmail_location = maildir:~/Maildir\n\
         submission_relay_host = 127.0.0.1\nsubmission_relay_port = 10025\n\
         postmaster_address = $ENV:POSTMASTER\n\
         passdb {\n  driver = ldap\n  args = /etc/dovecot/dovecot-ldap.conf.ext\n}\n",
    )]);
    assert!(
        i.toml
            .contains("location = \"maildir:/srv/mail/%d/%n/Maildir\""),
        "{}",
        i.toml
    );
    assert!(
        i.toml.contains("[smtp]\nrelayhost = \"127.0.0.1:10025\"\n"),
        "{}",
        i.toml
    );
    assert!(!i.toml.contains("passdb"), "{}", i.toml);
    assert_eq!(
        dropped(&i),
        [
            // What the tree lacks comes first, then the settings in reading order.
            "passdb = (none carried)",
            "mail_home = /srv/mail/%d/%n",
            "postmaster_address = $ENV:POSTMASTER",
            "passdb/driver = ldap",
            "passdb/args = /etc/dovecot/dovecot-ldap.conf.ext",
        ]
    );
}

#[test]
fn pigeonhole_before_and_after_scripts_become_the_sieve_section() {
    let i = import(&[(
        "/etc/dovecot/dovecot.conf",
        "protocols = imap lmtp sieve\n\
         mail_location = maildir:~/Maildir\n\
         passdb {\n  driver = pam\n}\n\
         userdb {\n  driver = passwd\n}\n\
         protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n\
         plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n\
           sieve_before = /etc/dovecot/sieve/spam.sieve\n\
           sieve_before2 = /etc/dovecot/sieve/lists.sieve\n\
           sieve_before3 = /etc/dovecot/sieve.d/\n\
           sieve_after = file:/etc/dovecot/sieve/after.sieve\n}\n",
    )]);
    assert!(
        i.toml.contains(
            "[sieve]\nbefore = [\"/etc/dovecot/sieve/spam.sieve\", \"/etc/dovecot/sieve/lists.sieve\"]\n\
             after = [\"/etc/dovecot/sieve/after.sieve\"]\n"
        ),
        "{}",
        i.toml
    );
    assert!(i.toml.contains("sieve = \"0.0.0.0:4190\""), "{}", i.toml);
    let dropped = dropped(&i);
    assert!(
        dropped.contains(&"plugin/sieve_before3 = /etc/dovecot/sieve.d/".to_string()),
        "{dropped:?}"
    );
    assert!(
        dropped.contains(&"plugin/sieve = file:~/sieve;active=~/.dovecot.sieve".to_string()),
        "{dropped:?}"
    );
    assert!(
        !dropped.iter().any(|d| d.ends_with("= sieve")),
        "the sieve plugin is roost's own: {dropped:?}"
    );
}
