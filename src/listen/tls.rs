//! TLS material: loaded from the configured files, or generated self-signed at first start so
//! a newcomer needs no openssl step; reloaded on SIGHUP without touching live sessions.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair (for example, the key does not match the certificate).
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate or key file (or its directory) that the user running roost may not read
    /// or create.
    #[error(transparent)]
    Denied(#[from] crate::config::AccessDenied),
    /// Generating or writing the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
}

/// A certificate chain and key as PEM bytes: read (as root) by whoever may, handed to the
/// process that serves TLS.
#[derive(Clone)]
pub struct TlsPem {
    /// The certificate chain.
    pub cert: Vec<u8>,
    /// The private key.
    pub key: Vec<u8>,
}

impl TlsPem {
    /// Reads the configured pair; when none is configured and none exists yet, generates one.
    pub fn load_or_generate(files: &TlsConfig) -> Result<Self, TlsError> {
        if !files.configured && !files.cert.exists() && !files.key.exists() {
            generate_self_signed(&files.cert, &files.key)?;
        }
        Self::load(files)
    }

    /// Reads the configured pair and checks that rustls accepts it.
    pub fn load(files: &TlsConfig) -> Result<Self, TlsError> {
        let pem = Self {
            cert: std::fs::read(&files.cert).map_err(|e| file_error(&files.cert, "cert", e))?,
            key: std::fs::read(&files.key).map_err(|e| file_error(&files.key, "key", e))?,
        };
        server_config(&pem, &files.cert)?;
        Ok(pem)
    }
}

/// The current server TLS configuration, swappable at run time.
pub struct TlsStore {
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsStore {
    /// A store serving `pem`.
    pub fn new(pem: &TlsPem) -> Result<Self, TlsError> {
        Ok(Self {
            current: RwLock::new(Arc::new(server_config(pem, Path::new("certificate"))?)),
        })
    }

    /// An acceptor using the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self.current.read().unwrap_or_else(PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(&config))
    }

    /// Switches new connections to `pem`; on failure the old certificate stays in use.
    pub fn replace(&self, pem: &TlsPem) -> Result<(), TlsError> {
        let config = server_config(pem, Path::new("certificate"))?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }
}

/// A read or write of a certificate file that failed: a "permission denied" names the user
/// and `[tls] cert` / `[tls] key` (`which`), anything else is reported with the path.
fn file_error(path: &Path, which: &str, e: std::io::Error) -> TlsError {
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return pem_error(path, e);
    }
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    TlsError::Denied(crate::config::AccessDenied {
        path: path.to_path_buf(),
        user: crate::system::current_user_name(),
        role: "roost, which loads or generates the TLS certificate at start",
        blocked_at: crate::system::blocking_directory(path, uid, gid),
        key: format!("[tls] {which}"),
    })
}

fn pem_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn server_config(pem: &TlsPem, origin: &Path) -> Result<ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(origin, e))?;
    if certs.is_empty() {
        return Err(pem_error(origin, "no certificate found in the file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| pem_error(origin, e))?;
    tracing::info!(sha256 = %fingerprint(&certs[0]), "TLS certificate loaded");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(config)
}

/// The SHA-256 fingerprint as `AB:CD:...`, the form mail clients show when asking to trust it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let gen_err = |e: &dyn std::fmt::Display| TlsError::Generate(e.to_string());
    let mut names = vec!["localhost".to_string()];
    let host = roost_storage::host::name();
    if host != "localhost" {
        names.push(host.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| gen_err(&e))?;
    for path in [cert_path, key_path] {
        if let Some(dir) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| file_error(dir, "cert and [tls] key", e))?;
        }
    }
    write_private(key_path, certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| file_error(key_path, "key", e))?;
    write_private(cert_path, certified.cert.pem().as_bytes())
        .map_err(|e| file_error(cert_path, "cert", e))?;
    tracing::warn!(
        cert = %cert_path.display(),
        sha256 = %fingerprint(certified.cert.der()),
        "generated a self-signed certificate; clients will ask to trust this fingerprint"
    );
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
