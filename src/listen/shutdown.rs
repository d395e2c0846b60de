//! Signals: SIGTERM/SIGINT stop the server gracefully, SIGHUP reloads the TLS certificate.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::tls::{TlsPem, TlsStore};
use crate::config::TlsConfig;

/// Cancels `token` at the first SIGTERM or SIGINT.
pub fn cancel_on_terminate(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        }
        token.cancel();
    });
    Ok(())
}

/// Reloads the certificate files on every SIGHUP until `token` is cancelled; live sessions keep
/// theirs. (Used when roost runs unprivileged; as root the master reads and pushes them.)
pub fn reload_on_hangup(
    tls: Arc<TlsStore>,
    files: TlsConfig,
    token: CancellationToken,
) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                received = hup.recv() => {
                    if received.is_none() {
                        return;
                    }
                    match TlsPem::load(&files).and_then(|pem| tls.replace(&pem)) {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!("SIGHUP: TLS reload failed, keeping the old certificate: {e}"),
                    }
                }
            }
        }
    });
    Ok(())
}
