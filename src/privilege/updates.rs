//! The master → login process channel: new TLS certificates (SIGHUP) and the running totals of
//! what workers counted (repairs, deliveries, retrievals; for the status page). One text
//! header line per update, certificates followed by their bytes.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::counters::{self, WorkerTotals};
use crate::listen::tls::{TlsPem, TlsStore};

/// Largest certificate or key accepted.
const MAX_PEM: usize = 1024 * 1024;

/// `TLS <cert len> <key len>` and the PEM bytes.
pub fn encode_tls(pem: &TlsPem) -> Vec<u8> {
    let mut message = format!("TLS {} {}\n", pem.cert.len(), pem.key.len()).into_bytes();
    message.extend_from_slice(&pem.cert);
    message.extend_from_slice(&pem.key);
    message
}

/// `WORKERS <repairs> <delivered> <retrieved>`
pub fn encode_totals(totals: &WorkerTotals) -> Vec<u8> {
    format!(
        "WORKERS {} {} {}\n",
        totals.repairs, totals.delivered, totals.retrieved
    )
    .into_bytes()
}

/// Login side: applies what the master sends until it goes away.
pub async fn receive_updates(socket: UnixStream, tls: Arc<TlsStore>) {
    let stream = match socket
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(socket))
    {
        Ok(stream) => stream,
        Err(e) => return tracing::error!("master update channel: {e}"),
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let fields: Vec<&str> = header.split_whitespace().collect();
        match fields.as_slice() {
            ["WORKERS", repairs, delivered, retrieved] => {
                if let (Ok(repairs), Ok(delivered), Ok(retrieved)) =
                    (repairs.parse(), delivered.parse(), retrieved.parse())
                {
                    counters::global().set_worker_totals(WorkerTotals {
                        repairs,
                        delivered,
                        retrieved,
                    });
                }
            }
            ["TLS", cert, key] => {
                let (Ok(cert_len), Ok(key_len)) = (cert.parse::<usize>(), key.parse::<usize>())
                else {
                    return tracing::error!("master update channel: malformed TLS header");
                };
                if cert_len > MAX_PEM || key_len > MAX_PEM {
                    return tracing::error!("master update channel: oversized certificate");
                }
                let mut pem = TlsPem {
                    cert: vec![0; cert_len],
                    key: vec![0; key_len],
                };
                if reader.read_exact(&mut pem.cert).await.is_err()
                    || reader.read_exact(&mut pem.key).await.is_err()
                {
                    return;
                }
                if let Err(e) = tls.replace(&pem) {
                    tracing::error!("TLS update rejected, keeping the old certificate: {e}");
                }
            }
            _ => return tracing::error!("master update channel: unknown update {header:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsConfig;

    #[tokio::test]
    async fn worker_totals_from_the_master_reach_the_counters() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsConfig {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
            configured: false,
        };
        let tls = Arc::new(TlsStore::new(&TlsPem::load_or_generate(&files).unwrap()).unwrap());
        let (master, login) = UnixStream::pair().unwrap();
        let totals = WorkerTotals {
            repairs: 0,
            delivered: 2,
            retrieved: 5,
        };
        std::io::Write::write_all(&mut &master, &encode_totals(&totals)).unwrap();
        drop(master);
        receive_updates(login, tls).await;
        let snap = counters::global().snapshot();
        assert_eq!((snap.messages_delivered, snap.messages_retrieved), (2, 5));
    }
}
