//! The certificate: readable, matching its key, not expiring soon, naming the hosts clients
//! connect to.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Finding, Level};
use crate::config::Config;
use crate::listen::tls::TlsPem;

/// Below this many days left, an expiry is a warning.
const RENEW_WITHIN_DAYS: i64 = 30;

/// Whether the configured pair loads, how long it stays valid, and which names it covers.
pub fn certificate(config: &Config, hostnames: &[String]) -> Vec<Finding> {
    if !config.tls.configured && !config.tls.cert.exists() {
        return vec![Finding::new(
            Level::Ok,
            "certificate",
            "none yet: roost makes a self-signed one at the first start (clients will ask to trust it)",
        )];
    }
    let pem = match TlsPem::load(&config.tls) {
        Ok(pem) => pem,
        Err(e) => return vec![Finding::new(Level::Fail, "certificate", format!("{e}"))],
    };
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(&pem.cert).next() else {
        return vec![Finding::new(
            Level::Fail,
            "certificate",
            "no certificate in the file",
        )];
    };
    let mut findings = vec![expiry(config, &leaf)];
    let mut names: Vec<&str> = hostnames.iter().map(String::as_str).collect();
    if let Some(auto) = &config.autoconfig {
        names.push(&auto.hostname);
    }
    findings.extend(names.into_iter().map(|name| covers(&leaf, name)));
    findings
}

fn expiry(config: &Config, leaf: &CertificateDer<'_>) -> Finding {
    let subject = format!("certificate {}", config.tls.cert.display());
    let Some(not_after) = not_after(leaf) else {
        return Finding::new(Level::Warn, subject, "cannot read its expiry date");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = (not_after - now).div_euclid(86_400);
    let date = chrono::DateTime::from_timestamp(not_after, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if not_after <= now {
        Finding::new(
            Level::Fail,
            subject,
            format!("expired on {date}: clients refuse it; renew it and send roost SIGHUP"),
        )
    } else if days < RENEW_WITHIN_DAYS {
        Finding::new(
            Level::Warn,
            subject,
            format!("expires in {days} day(s), on {date}: renew it and send roost SIGHUP"),
        )
    } else {
        Finding::new(
            Level::Ok,
            subject,
            format!("matches its key, valid until {date} ({days} days)"),
        )
    }
}

fn covers(leaf: &CertificateDer<'_>, name: &str) -> Finding {
    let subject = format!("certificate name {name}");
    let Ok(server_name) = ServerName::try_from(name) else {
        return Finding::new(Level::Fail, subject, "not a host name");
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return Finding::new(Level::Warn, subject, "cannot read the certificate's names");
    };
    match cert.verify_is_valid_for_subject_name(&server_name) {
        Ok(()) => Finding::new(Level::Ok, subject, "covered"),
        Err(_) => Finding::new(
            Level::Fail,
            subject,
            "not among the certificate's names: clients connecting there will warn; get a certificate that names it",
        ),
    }
}

/// The certificate's notAfter as seconds since the epoch, read from its DER (RFC 5280 4.1):
/// Certificate > TBSCertificate > [version] serial signature issuer validity.
fn not_after(der: &[u8]) -> Option<i64> {
    let (_, certificate, _) = tlv(der).filter(|t| t.0 == 0x30)?;
    let (_, tbs, _) = tlv(certificate).filter(|t| t.0 == 0x30)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xA0 {
        rest = tlv(rest)?.2; // the serial number after the explicit version
    }
    rest = tlv(rest)?.2; // signature algorithm
    rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest).filter(|t| t.0 == 0x30)?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let parsed = match tag {
        0x17 => chrono::NaiveDateTime::parse_from_str(text, "%y%m%d%H%M%SZ").ok()?,
        0x18 => chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%SZ").ok()?,
        _ => return None,
    };
    Some(parsed.and_utc().timestamp())
}

/// One DER element: its tag, its content and what follows it.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let len = bytes
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, bytes.get(header..end)?, bytes.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_of_a_generated_certificate_is_read() {
        let mut params = rcgen::CertificateParams::new(vec!["mail.example.org".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let when = not_after(cert.der()).unwrap();
        let date = chrono::DateTime::from_timestamp(when, 0).unwrap();
        assert_eq!(date.format("%Y-%m-%d").to_string(), "2031-05-17");
        assert_eq!(covers(cert.der(), "mail.example.org").level, Level::Ok);
        assert_eq!(covers(cert.der(), "other.example.org").level, Level::Fail);
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(not_after(b""), None);
    }
}
