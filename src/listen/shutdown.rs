//! Signals: SIGTERM/SIGINT stop the server gracefully, SIGHUP reloads the TLS certificate.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::tls::TlsStore;

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

/// Reloads the certificate on every SIGHUP until `token` is cancelled; live sessions keep theirs.
pub fn reload_on_hangup(tls: Arc<TlsStore>, token: CancellationToken) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                received = hup.recv() => {
                    if received.is_none() {
                        return;
                    }
                    match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!("SIGHUP: TLS reload failed, keeping the old certificate: {e}"),
                    }
                }
            }
        }
    });
    Ok(())
}
