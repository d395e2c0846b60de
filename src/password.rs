//! Dovecot-compatible password schemes.
//!
//! Passwords in a passwd-file are stored as `{SCHEME}data`, exactly as
//! `doveadm pw -s SCHEME` prints them. This module creates such strings and
//! checks a password against them, so that files written for (or by) a real
//! Dovecot keep working unchanged. Only the modern crypt-style schemes and
//! `PLAIN` are supported; legacy digests (MD5, SSHA, CRAM-MD5, ...) are
//! deliberately left out.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sha_crypt::{Sha256Params, Sha512Params, ROUNDS_DEFAULT, ROUNDS_MAX, ROUNDS_MIN};

/// Bcrypt cost used by [`hash`]; Dovecot's `CRYPT_BLF_ROUNDS_DEFAULT` is 5
/// (`doveadm pw -s BLF-CRYPT` prints `$2y$05$...`). Use
/// [`hash_with_rounds`] for a stronger cost.
pub const BLF_CRYPT_DEFAULT_COST: u32 = 5;

/// Largest Argon2 memory cost (KiB) accepted from a stored hash: 1 GiB,
/// libsodium's "sensitive" limit. Larger values are refused rather than
/// letting a bad passwd-file line exhaust memory.
const ARGON2_MAX_M_COST: u32 = 1024 * 1024;

/// Length of the encoded digest in a `$6$` hash.
const SHA512_B64_LEN: usize = 86;
/// Length of the encoded digest in a `$5$` hash.
const SHA256_B64_LEN: usize = 43;
/// Length of the salt in a `$2y$` hash.
const BCRYPT_SALT_LEN: usize = 22;
/// Length of the salt plus digest in a `$2y$` hash.
const BCRYPT_TAIL_LEN: usize = 53;
/// Scheme names longer than this are cut short in error messages.
const MAX_SCHEME_NAME_IN_ERROR: usize = 32;

/// Bcrypt's base64 variant, tolerant of non-zero trailing bits in the salt
/// (`crypt_blowfish` ignores them too).
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A password scheme, named as in Dovecot's `{SCHEME}` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `SHA512-CRYPT`: glibc SHA-512 crypt, `$6$`.
    Sha512Crypt,
    /// `SHA256-CRYPT`: glibc SHA-256 crypt, `$5$`.
    Sha256Crypt,
    /// `BLF-CRYPT`: bcrypt, `$2y$` (`$2a$`/`$2b$` accepted on verify).
    BlfCrypt,
    /// `ARGON2ID`: Argon2id in PHC string format, `$argon2id$`.
    Argon2id,
    /// `PLAIN` (alias `CLEARTEXT`): the password itself.
    Plain,
}

impl Scheme {
    /// Every supported scheme, strongest first.
    pub const ALL: [Scheme; 5] = [
        Scheme::Argon2id,
        Scheme::BlfCrypt,
        Scheme::Sha512Crypt,
        Scheme::Sha256Crypt,
        Scheme::Plain,
    ];

    /// Looks a Dovecot scheme name up, ignoring case (`CLEARTEXT` = `PLAIN`).
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "SHA512-CRYPT" => Some(Scheme::Sha512Crypt),
            "SHA256-CRYPT" => Some(Scheme::Sha256Crypt),
            "BLF-CRYPT" => Some(Scheme::BlfCrypt),
            "ARGON2ID" => Some(Scheme::Argon2id),
            "PLAIN" | "CLEARTEXT" => Some(Scheme::Plain),
            _ => None,
        }
    }

    /// The canonical Dovecot name, e.g. `"SHA512-CRYPT"`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Sha256Crypt => "SHA256-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Plain => "PLAIN",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// The `{SCHEME}` prefix names a scheme this server does not support.
    #[error("unknown password scheme {{{0}}}")]
    UnknownScheme(String),
    /// The stored password field is not in the scheme's format.
    #[error("malformed stored password: {0}")]
    Malformed(&'static str),
    /// The hashing library failed (bad parameters, no randomness, ...).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes `password` like `doveadm pw -s SCHEME`, returning the full
/// `{SCHEME}...` string with a fresh random salt and Dovecot's default cost.
pub fn hash(scheme: Scheme, password: &str) -> Result<String, SchemeError> {
    hash_with_rounds(scheme, password, None)
}

/// Like [`hash`], with an explicit cost like `doveadm pw -r ROUNDS`: bcrypt
/// cost (4..=31) for `BLF-CRYPT`, rounds (1000..=999999999) for the SHA
/// crypts, time cost for `ARGON2ID` (memory stays at the argon2 crate's
/// default, 19 MiB); ignored for `PLAIN`. `None` uses the defaults.
pub fn hash_with_rounds(
    scheme: Scheme,
    password: &str,
    rounds: Option<u32>,
) -> Result<String, SchemeError> {
    let data = match scheme {
        Scheme::Sha512Crypt => {
            let params = Sha512Params::new(sha_rounds(rounds)).map_err(hashing_error)?;
            sha_crypt::sha512_simple(password, &params).map_err(hashing_error)?
        }
        Scheme::Sha256Crypt => {
            let params = Sha256Params::new(sha_rounds(rounds)).map_err(hashing_error)?;
            sha_crypt::sha256_simple(password, &params).map_err(hashing_error)?
        }
        Scheme::BlfCrypt => {
            let cost = rounds.unwrap_or(BLF_CRYPT_DEFAULT_COST);
            bcrypt::hash_with_result(password, cost)
                .map_err(hashing_error)?
                .format_for_version(bcrypt::Version::TwoY)
        }
        Scheme::Argon2id => hash_argon2id(password, rounds)?,
        Scheme::Plain => password.to_owned(),
    };
    Ok(format!("{{{}}}{data}", scheme.name()))
}

/// Checks `password` against a stored passwd-file password field.
///
/// `stored` is `{SCHEME}data`; `{CRYPT}data` and a bare `data` are also
/// accepted when `data` starts with `$6$`, `$5$`, `$2y$`/`$2b$`/`$2a$` or
/// `$argon2id$`. Anything else is an error, never plaintext. `Ok(false)`
/// means a well-formed hash that does not match.
pub fn verify(stored: &str, password: &str) -> Result<bool, SchemeError> {
    let (scheme, data) = match stored.strip_prefix('{') {
        Some(rest) => {
            let (name, data) = rest
                .split_once('}')
                .ok_or(SchemeError::Malformed("unterminated {SCHEME} prefix"))?;
            let scheme = if name.eq_ignore_ascii_case("CRYPT") {
                detect_crypt(data)?
            } else {
                Scheme::from_name(name).ok_or_else(|| unknown_scheme(name))?
            };
            (scheme, data)
        }
        None => (detect_crypt(stored)?, stored),
    };
    match scheme {
        Scheme::Sha512Crypt => verify_sha512(data, password),
        Scheme::Sha256Crypt => verify_sha256(data, password),
        Scheme::BlfCrypt => verify_bcrypt(data, password),
        Scheme::Argon2id => verify_argon2id(data, password),
        Scheme::Plain => Ok(digest_eq(data.as_bytes(), password.as_bytes())),
    }
}

/// Identifies a crypt(3)-style hash by its `$id$` prefix.
fn detect_crypt(data: &str) -> Result<Scheme, SchemeError> {
    if data.starts_with("$6$") {
        Ok(Scheme::Sha512Crypt)
    } else if data.starts_with("$5$") {
        Ok(Scheme::Sha256Crypt)
    } else if ["$2y$", "$2b$", "$2a$"].iter().any(|p| data.starts_with(p)) {
        Ok(Scheme::BlfCrypt)
    } else if data.starts_with("$argon2id$") {
        Ok(Scheme::Argon2id)
    } else {
        Err(SchemeError::Malformed(
            "no {SCHEME} prefix and not a recognised crypt hash",
        ))
    }
}

/// Builds an [`SchemeError::UnknownScheme`], cutting absurdly long names.
fn unknown_scheme(name: &str) -> SchemeError {
    let short: String = name.chars().take(MAX_SCHEME_NAME_IN_ERROR).collect();
    SchemeError::UnknownScheme(short)
}

/// Wraps a library error; none of them carry the password.
fn hashing_error(err: impl fmt::Debug) -> SchemeError {
    SchemeError::Hashing(format!("{err:?}"))
}

/// SHA-crypt rounds for hashing: Dovecot's default is glibc's 5000.
fn sha_rounds(rounds: Option<u32>) -> usize {
    rounds.map_or(ROUNDS_DEFAULT, |r| r as usize)
}

/// Hashes with Argon2id (crate defaults: m=19456 KiB, t=2, p=1).
fn hash_argon2id(password: &str, t_cost: Option<u32>) -> Result<String, SchemeError> {
    let mut salt_bytes = [0u8; 16];
    rand::thread_rng()
        .try_fill_bytes(&mut salt_bytes)
        .map_err(hashing_error)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(hashing_error)?;
    let params = argon2::Params::new(
        argon2::Params::DEFAULT_M_COST,
        t_cost.unwrap_or(argon2::Params::DEFAULT_T_COST),
        argon2::Params::DEFAULT_P_COST,
        None,
    )
    .map_err(hashing_error)?;
    let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(hashing_error)?;
    Ok(phc.to_string())
}

/// The parts of a `$5$`/`$6$` hash.
struct ShaCryptParts<'a> {
    rounds: usize,
    salt: &'a str,
    digest: &'a str,
}

/// Splits `$N$[rounds=R$]salt$digest`, checking the digest length.
fn parse_sha_crypt<'a>(
    data: &'a str,
    prefix: &str,
    digest_len: usize,
) -> Result<ShaCryptParts<'a>, SchemeError> {
    let rest = data
        .strip_prefix(prefix)
        .ok_or(SchemeError::Malformed("wrong SHA-crypt identifier"))?;
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(spec) => {
            let (number, rest) = spec
                .split_once('$')
                .ok_or(SchemeError::Malformed("SHA-crypt rounds without salt"))?;
            let rounds: usize = number
                .parse()
                .map_err(|_| SchemeError::Malformed("SHA-crypt rounds is not a number"))?;
            (rounds, rest)
        }
        None => (ROUNDS_DEFAULT, rest),
    };
    // libxcrypt (current glibc systems) refuses out-of-range rounds too.
    if !(ROUNDS_MIN..=ROUNDS_MAX).contains(&rounds) {
        return Err(SchemeError::Malformed("SHA-crypt rounds out of range"));
    }
    let (salt, digest) = rest
        .split_once('$')
        .ok_or(SchemeError::Malformed("SHA-crypt hash without digest"))?;
    if digest.len() != digest_len || digest.contains('$') {
        return Err(SchemeError::Malformed(
            "SHA-crypt digest has the wrong length",
        ));
    }
    Ok(ShaCryptParts {
        rounds,
        salt,
        digest,
    })
}

/// Verifies a `$6$` hash.
fn verify_sha512(data: &str, password: &str) -> Result<bool, SchemeError> {
    let parts = parse_sha_crypt(data, "$6$", SHA512_B64_LEN)?;
    let params = Sha512Params::new(parts.rounds)
        .map_err(|_| SchemeError::Malformed("SHA-crypt rounds out of range"))?;
    let computed = sha_crypt::sha512_crypt_b64(password.as_bytes(), parts.salt.as_bytes(), &params)
        .map_err(hashing_error)?;
    Ok(constant_time_eq(
        computed.as_bytes(),
        parts.digest.as_bytes(),
    ))
}

/// Verifies a `$5$` hash.
fn verify_sha256(data: &str, password: &str) -> Result<bool, SchemeError> {
    let parts = parse_sha_crypt(data, "$5$", SHA256_B64_LEN)?;
    let params = Sha256Params::new(parts.rounds)
        .map_err(|_| SchemeError::Malformed("SHA-crypt rounds out of range"))?;
    let computed = sha_crypt::sha256_crypt_b64(password.as_bytes(), parts.salt.as_bytes(), &params)
        .map_err(hashing_error)?;
    Ok(constant_time_eq(
        computed.as_bytes(),
        parts.digest.as_bytes(),
    ))
}

/// Verifies a `$2y$`/`$2b$`/`$2a$` bcrypt hash.
fn verify_bcrypt(data: &str, password: &str) -> Result<bool, SchemeError> {
    let rest = ["$2y$", "$2b$", "$2a$"]
        .iter()
        .find_map(|p| data.strip_prefix(p))
        .ok_or(SchemeError::Malformed("unsupported bcrypt variant"))?;
    let (cost, tail) = rest
        .split_once('$')
        .ok_or(SchemeError::Malformed("bcrypt hash without cost"))?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SchemeError::Malformed("bcrypt cost is not two digits"));
    }
    let cost: u32 = cost
        .parse()
        .map_err(|_| SchemeError::Malformed("bcrypt cost is not two digits"))?;
    if !(4..=31).contains(&cost) {
        return Err(SchemeError::Malformed("bcrypt cost out of range"));
    }
    if tail.len() != BCRYPT_TAIL_LEN || !tail.is_ascii() {
        return Err(SchemeError::Malformed(
            "bcrypt salt and digest have the wrong length",
        ));
    }
    let (salt_b64, digest) = tail.split_at(BCRYPT_SALT_LEN);
    let salt: [u8; 16] = BCRYPT_B64
        .decode(salt_b64)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(SchemeError::Malformed("bcrypt salt is not valid base64"))?;
    let computed = bcrypt::hash_with_salt(password, cost, salt)
        .map_err(hashing_error)?
        .format_for_version(bcrypt::Version::TwoY);
    let computed_digest = computed
        .get(computed.len().saturating_sub(digest.len())..)
        .unwrap_or_default();
    Ok(constant_time_eq(
        computed_digest.as_bytes(),
        digest.as_bytes(),
    ))
}

/// Verifies a `$argon2id$` PHC string, using the parameters it records.
fn verify_argon2id(data: &str, password: &str) -> Result<bool, SchemeError> {
    let parsed = PasswordHash::new(data)
        .map_err(|_| SchemeError::Malformed("not a valid Argon2 PHC string"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(SchemeError::Malformed("not an Argon2id hash"));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(SchemeError::Malformed("Argon2 hash without salt or digest"));
    }
    let params = argon2::Params::try_from(&parsed)
        .map_err(|_| SchemeError::Malformed("invalid Argon2 parameters"))?;
    if params.m_cost() > ARGON2_MAX_M_COST {
        return Err(SchemeError::Malformed("Argon2 memory cost above 1 GiB"));
    }
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(err) => Err(hashing_error(err)),
    }
}

/// Compares two secrets without leaking where they differ or their lengths:
/// both are hashed first, then the digests are compared in constant time.
fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    constant_time_eq(&da, &db)
}

/// Constant-time equality for equal-length inputs (length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fast argon2id hash for round trips (m=256 KiB).
    fn quick_argon2id(password: &str) -> String {
        let params = argon2::Params::new(256, 1, 1, None).unwrap();
        let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = hasher.hash_password(password.as_bytes(), &salt).unwrap();
        format!("{{ARGON2ID}}{phc}")
    }

    #[test]
    fn names_round_trip_case_insensitively() {
        for scheme in Scheme::ALL {
            assert_eq!(Scheme::from_name(scheme.name()), Some(scheme));
            assert_eq!(
                Scheme::from_name(&scheme.name().to_ascii_lowercase()),
                Some(scheme)
            );
        }
        assert_eq!(Scheme::from_name("cleartext"), Some(Scheme::Plain));
        assert_eq!(Scheme::from_name("MD5-CRYPT"), None);
        assert_eq!(Scheme::from_name(""), None);
        assert_eq!(Scheme::BlfCrypt.to_string(), "BLF-CRYPT");
    }

    #[test]
    fn every_scheme_round_trips() {
        for scheme in Scheme::ALL {
            let stored = if scheme == Scheme::Argon2id {
                quick_argon2id("correct horse")
            } else {
                hash(scheme, "correct horse").unwrap()
            };
            let prefix = format!("{{{}}}", scheme.name());
            assert!(stored.starts_with(&prefix), "{stored}");
            assert!(verify(&stored, "correct horse").unwrap(), "{scheme}");
            assert!(!verify(&stored, "correct horsE").unwrap(), "{scheme}");
            assert!(!verify(&stored, "").unwrap(), "{scheme}");
        }
    }

    #[test]
    fn hash_output_looks_like_doveadm_pw() {
        let sha512 = hash(Scheme::Sha512Crypt, "pw").unwrap();
        let rest = sha512.strip_prefix("{SHA512-CRYPT}$6$").unwrap();
        let (salt, digest) = rest.split_once('$').unwrap();
        assert_eq!((salt.len(), digest.len()), (16, SHA512_B64_LEN));

        let sha256 = hash(Scheme::Sha256Crypt, "pw").unwrap();
        assert!(sha256.starts_with("{SHA256-CRYPT}$5$"));
        assert!(!sha256.contains("rounds="));

        let blf = hash(Scheme::BlfCrypt, "pw").unwrap();
        assert!(blf.starts_with("{BLF-CRYPT}$2y$05$"), "{blf}");
        assert_eq!(blf.len() - "{BLF-CRYPT}$2y$05$".len(), BCRYPT_TAIL_LEN);

        assert_eq!(hash(Scheme::Plain, "pw").unwrap(), "{PLAIN}pw");
    }

    #[test]
    fn default_argon2id_hash_verifies() {
        let stored = hash(Scheme::Argon2id, "pw").unwrap();
        assert!(
            stored.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(&stored, "pw").unwrap());
        assert!(!verify(&stored, "pW").unwrap());
    }

    #[test]
    fn explicit_rounds() {
        let sha = hash_with_rounds(Scheme::Sha512Crypt, "pw", Some(1000)).unwrap();
        assert!(sha.starts_with("{SHA512-CRYPT}$6$rounds=1000$"), "{sha}");
        assert!(verify(&sha, "pw").unwrap());
        let blf = hash_with_rounds(Scheme::BlfCrypt, "pw", Some(4)).unwrap();
        assert!(blf.starts_with("{BLF-CRYPT}$2y$04$"), "{blf}");
        assert!(verify(&blf, "pw").unwrap());
        assert!(matches!(
            hash_with_rounds(Scheme::BlfCrypt, "pw", Some(3)),
            Err(SchemeError::Hashing(_))
        ));
        assert!(matches!(
            hash_with_rounds(Scheme::Sha256Crypt, "pw", Some(999)),
            Err(SchemeError::Hashing(_))
        ));
    }

    /// Ulrich Drepper's published SHA-crypt test vectors (also in glibc).
    #[test]
    fn sha_crypt_reference_vectors() {
        let cases = [
            (
                "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
                "Hello world!",
            ),
            (
                "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
                "Hello world!",
            ),
            (
                "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
                "This is just a test",
            ),
            (
                "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                "Hello world!",
            ),
            (
                "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
                "Hello world!",
            ),
            (
                "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
                "This is just a test",
            ),
        ];
        for (stored, password) in cases {
            assert!(verify(stored, password).unwrap(), "{stored}");
            assert!(!verify(stored, "hello world!").unwrap(), "{stored}");
            let prefixed = if stored.starts_with("$6$") {
                format!("{{SHA512-CRYPT}}{stored}")
            } else {
                format!("{{sha256-crypt}}{stored}")
            };
            assert!(verify(&prefixed, password).unwrap(), "{prefixed}");
            assert!(verify(&format!("{{CRYPT}}{stored}"), password).unwrap());
        }
    }

    /// Hashes made with this machine's libxcrypt `crypt(3)` (what Dovecot
    /// calls), via `perl -e 'print crypt(PW, SALT)'`.
    #[test]
    fn system_crypt_vectors() {
        let cases = [
            (
                "{SHA256-CRYPT}$5$rounds=1000$abc$vOj.78b1bSxlM0AmTY7JVy09T5GAi2I0AkTjFv..6j9",
                "Hello world!",
            ),
            (
                "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
                "test-pass",
            ),
            (
                "$2y$05$abcdefghijklmnopqrstuuhKF09ZYWwH2zP/0fwE1X8e/Q1YNx/hO",
                "x",
            ),
            (
                "$2a$05$abcdefghijklmnopqrstuuZVEMa1pjhlynBQ1qXmSvGBJpN9h1w8G",
                "p\u{e4}ssw\u{f6}rd",
            ),
            (
                "{BLF-CRYPT}$2b$05$abcdefghijklmnopqrstuuZVEMa1pjhlynBQ1qXmSvGBJpN9h1w8G",
                "p\u{e4}ssw\u{f6}rd",
            ),
        ];
        for (stored, password) in cases {
            assert!(verify(stored, password).unwrap(), "{stored}");
            assert!(!verify(stored, "wrong").unwrap(), "{stored}");
        }
    }

    /// PHP's documented `password_verify` example (cost 10, `$2y$`).
    #[test]
    fn bcrypt_php_vector() {
        let stored = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";
        assert!(verify(stored, "rasmuslerdorf").unwrap());
    }

    /// Reference vectors from the Argon2 authors' phc-winner-argon2 test.c.
    #[test]
    fn argon2id_reference_vectors() {
        let small =
            "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
        assert!(verify(small, "password").unwrap());
        assert!(!verify(small, "passwore").unwrap());
        let dovecot_sized =
            "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(verify(dovecot_sized, "password").unwrap());
    }

    #[test]
    fn plain_and_cleartext() {
        assert!(verify("{PLAIN}secret", "secret").unwrap());
        assert!(verify("{cleartext}secret", "secret").unwrap());
        assert!(!verify("{PLAIN}secret", "secret ").unwrap());
        assert!(!verify("{PLAIN}secret", "secre").unwrap());
        assert!(verify("{PLAIN}", "").unwrap());
        assert!(verify("{PLAIN}{SHA512-CRYPT}x", "{SHA512-CRYPT}x").unwrap());
    }

    /// Stored fields that must be rejected as malformed, without panicking.
    const MALFORMED: &[&str] = &[
        "",
        "secret",
        "{",
        "{PLAIN",
        "$",
        "$$",
        "$6$",
        "$6$$",
        "$6$salt$",
        "$6$salt$short",
        "$6$rounds=$salt$x",
        "$6$rounds=abc$salt$x",
        "$6$rounds=10$salt$x",
        "$6$rounds=99999999999999999999999$salt$x",
        "$5$rounds=1000",
        "$1$salt$hash",
        "$2x$05$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$2y$5$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$2y$03$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$2y$32$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$2y$05$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOP",
        "$2y$05$abcdefghijklmnopqrstu\u{e9}M4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOP",
        "$2y$05$!bcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$2y$+5$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=9999999,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "{ARGON2ID}$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "{SHA512-CRYPT}",
        "{SHA512-CRYPT}junk",
        "{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        "{SHA256-CRYPT}$6$x$y",
        "{BLF-CRYPT}",
        "{BLF-CRYPT}$2y$",
        "{ARGON2ID}garbage",
        "{CRYPT}",
        "{CRYPT}ab01FAX.bQRSU",
    ];

    #[test]
    fn hostile_inputs_never_panic() {
        for &stored in MALFORMED {
            let result = verify(stored, "password");
            assert!(
                matches!(result, Err(SchemeError::Malformed(_))),
                "{stored:?} gave {result:?}"
            );
        }
        for stored in ["{MD5}x", "{}x", "{SSHA}", "{\u{e9}\u{e9}}x"] {
            let result = verify(stored, "password");
            assert!(
                matches!(result, Err(SchemeError::UnknownScheme(_))),
                "{stored:?} gave {result:?}"
            );
        }
        let long = format!("{{{}}}x", "A".repeat(10_000));
        match verify(&long, "pw") {
            Err(SchemeError::UnknownScheme(name)) => assert_eq!(name.len(), 32),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_and_mutated_hashes_never_panic() {
        let valid = [
            "{SHA256-CRYPT}$5$rounds=1000$abc$vOj.78b1bSxlM0AmTY7JVy09T5GAi2I0AkTjFv..6j9",
            "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuuM4ZN2JOZh0ZE3I3ZYZ0Q37kLl/ryOPG",
            "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        ];
        for stored in valid {
            for cut in 0..stored.len() {
                assert!(!matches!(verify(&stored[..cut], "password"), Ok(true)));
            }
            for (index, _) in stored.char_indices() {
                for replacement in ["$", "\u{e9}", "}", ""] {
                    let mut mutated = stored.to_owned();
                    mutated.replace_range(index..=index, replacement);
                    let _ = verify(&mutated, "password");
                }
            }
        }
    }

    #[test]
    fn non_ascii_and_long_passwords() {
        let long = "\u{1F600}".repeat(100);
        for scheme in [Scheme::Sha512Crypt, Scheme::BlfCrypt, Scheme::Plain] {
            let stored = hash(scheme, &long).unwrap();
            assert!(verify(&stored, &long).unwrap());
            assert!(!verify(&stored, "\u{1F600}").unwrap());
        }
    }

    #[test]
    fn errors_do_not_echo_the_stored_field() {
        let err = verify("{SHA512-CRYPT}hunter2", "x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }
}
