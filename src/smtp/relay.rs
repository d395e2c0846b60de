//! The SMTP client that hands queued mail to the relayhost: one connection per queue entry,
//! per-recipient results, the message streamed from its file and dot-stuffed on the way.
//! Plain SMTP (the relayhost is the site's MTA); TLS and AUTH towards it are not implemented.

use std::fs::File;
use std::time::Duration;

use bytes::BytesMut;
use roost_protocol::dot::DotEncoder;
use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::smtp::address::Address;
use roost_protocol::smtp::client::{ReplyDecoder, ServerReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::deliver::{FileReader, Outcome};
use super::queue::Envelope;
use crate::config::Relayhost;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one reply may take (RFC 5321 4.5.3.2 asks clients for minutes; this is enough for
/// an MTA on the same network).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the conversation with the relayhost broke down (every recipient gets this).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Connecting, reading or writing failed or timed out.
    #[error("relayhost {host}: {what}")]
    Network {
        /// The relayhost.
        host: String,
        /// What happened.
        what: String,
    },
    /// A reply that refuses the whole transaction.
    #[error("relayhost {host} said: {reply}")]
    Refused {
        /// The relayhost.
        host: String,
        /// The reply, on one line.
        reply: String,
        /// Whether it was 5xx.
        permanent: bool,
    },
}

impl RelayError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused {
                permanent: true, ..
            } => Outcome::Permanent(self.to_string()),
            _ => Outcome::Temporary(self.to_string()),
        }
    }
}

struct Client {
    stream: TcpStream,
    buf: BytesMut,
    lines: LineDecoder,
    host: String,
}

impl Client {
    /// Connects to the relayhost (bounded by [`CONNECT_TIMEOUT`]).
    async fn connect(relayhost: &Relayhost) -> Result<Client, RelayError> {
        let host = relayhost.to_string();
        let target = (relayhost.host.as_str(), relayhost.port);
        let what = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => {
                return Ok(Client {
                    stream,
                    buf: BytesMut::with_capacity(4096),
                    lines: LineDecoder::new(4096),
                    host,
                })
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".into(),
        };
        Err(RelayError::Network { host, what })
    }

    fn network(&self, what: impl std::fmt::Display) -> RelayError {
        RelayError::Network {
            host: self.host.clone(),
            what: what.to_string(),
        }
    }

    async fn read_reply(&mut self) -> Result<ServerReply, RelayError> {
        let mut decoder = ReplyDecoder::new();
        loop {
            while let Some(line) = self.lines.decode(&mut self.buf) {
                let Line::Complete(line) = line else {
                    return Err(self.network("reply line too long"));
                };
                match decoder.line(&line) {
                    Ok(Some(reply)) => return Ok(reply),
                    Ok(None) => {}
                    Err(e) => return Err(self.network(e)),
                }
            }
            let read =
                tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) => return Err(self.network("connection closed")),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(self.network(e)),
                Err(_) => return Err(self.network("timed out waiting for a reply")),
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), RelayError> {
        match tokio::time::timeout(REPLY_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.network(e)),
            Err(_) => Err(self.network("timed out sending")),
        }
    }

    async fn command(&mut self, line: &str) -> Result<ServerReply, RelayError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    /// A command whose refusal ends the transaction.
    async fn expect(&mut self, line: &str, want: u16) -> Result<ServerReply, RelayError> {
        let reply = self.command(line).await?;
        if reply.code / 100 == want / 100 {
            Ok(reply)
        } else {
            Err(self.refused(&reply))
        }
    }

    /// A reply that refuses the whole transaction, as the error every recipient gets.
    fn refused(&self, reply: &ServerReply) -> RelayError {
        RelayError::Refused {
            host: self.host.clone(),
            reply: reply.summary(),
            permanent: reply.is_permanent(),
        }
    }

    /// What a reply means for the recipients it answers (one RCPT, or all after DATA).
    fn outcome(&self, reply: &ServerReply) -> Outcome {
        if reply.is_positive() {
            return Outcome::Delivered;
        }
        let why = format!("relayhost {} said: {}", self.host, reply.summary());
        if reply.is_permanent() {
            Outcome::Permanent(why)
        } else {
            Outcome::Temporary(why)
        }
    }

    /// The greeting, then EHLO (HELO if EHLO is refused); returns the reply that lists the
    /// extensions.
    async fn greet(&mut self, helo: &str) -> Result<ServerReply, RelayError> {
        let greeting = self.read_reply().await?;
        if greeting.code != 220 {
            return Err(self.refused(&greeting));
        }
        let ehlo = self.command(&format!("EHLO {helo}")).await?;
        if ehlo.is_positive() {
            Ok(ehlo)
        } else {
            self.expect(&format!("HELO {helo}"), 250).await
        }
    }

    /// MAIL FROM, with the parameters the message needs and the relayhost offers; a message
    /// that needs SMTPUTF8 from a relayhost without it fails for good.
    async fn mail_from(
        &mut self,
        envelope: &Envelope,
        ehlo: &ServerReply,
    ) -> Result<(), RelayError> {
        let mut mail = format!("MAIL FROM:<{}>", envelope.from);
        if envelope.eight_bit && ehlo.has_extension("8BITMIME") {
            mail.push_str(" BODY=8BITMIME");
        }
        if envelope.smtputf8 {
            if !ehlo.has_extension("SMTPUTF8") {
                return Err(RelayError::Refused {
                    host: self.host.clone(),
                    reply: "does not support SMTPUTF8, which this message needs".into(),
                    permanent: true,
                });
            }
            mail.push_str(" SMTPUTF8");
        }
        self.expect(&mail, 250).await.map(drop)
    }

    /// One RCPT TO per recipient; a refusal becomes that recipient's outcome. Returns the
    /// indexes of the recipients accepted.
    async fn rcpt_to(
        &mut self,
        rcpts: &[Address],
        outcomes: &mut [Outcome],
    ) -> Result<Vec<usize>, RelayError> {
        let mut accepted = Vec::new();
        for (i, rcpt) in rcpts.iter().enumerate() {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>")).await?;
            if reply.is_positive() {
                accepted.push(i);
            } else {
                outcomes[i] = self.outcome(&reply);
            }
        }
        Ok(accepted)
    }
}

/// Sends the message to `rcpts` through the relayhost; one outcome per recipient, in order.
pub async fn send(
    relayhost: &Relayhost,
    helo: &str,
    envelope: &Envelope,
    message: &File,
    rcpts: &[Address],
) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Temporary("not attempted".into()); rcpts.len()];
    if let Err(e) = transaction(relayhost, helo, envelope, message, rcpts, &mut outcomes).await {
        tracing::warn!(id = %envelope.id, "relay: {e}");
        for o in outcomes.iter_mut() {
            if matches!(o, Outcome::Temporary(_)) {
                *o = e.outcome();
            }
        }
    }
    outcomes
}

/// One SMTP transaction: recipients the relayhost refuses get their own outcome, those it
/// accepted share the verdict on the message; an error ends it for all not yet decided.
async fn transaction(
    relayhost: &Relayhost,
    helo: &str,
    envelope: &Envelope,
    message: &File,
    rcpts: &[Address],
    outcomes: &mut [Outcome],
) -> Result<(), RelayError> {
    let mut c = Client::connect(relayhost).await?;
    let ehlo = c.greet(helo).await?;
    c.mail_from(envelope, &ehlo).await?;
    let accepted = c.rcpt_to(rcpts, outcomes).await?;
    if accepted.is_empty() {
        let _ = c.command("QUIT").await;
        return Ok(());
    }
    c.expect("DATA", 354).await?;
    stream_message(&mut c, message).await?;
    let end = c.read_reply().await?;
    let verdict = c.outcome(&end);
    for i in accepted {
        outcomes[i] = verdict.clone();
    }
    let _ = c.command("QUIT").await;
    Ok(())
}

/// The message, dot-stuffed and terminated, streamed from its file in chunks.
async fn stream_message(c: &mut Client, message: &File) -> Result<(), RelayError> {
    let mut reader = FileReader::new(message);
    let mut encoder = DotEncoder::whole();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut wire = Vec::with_capacity(70 * 1024);
    loop {
        let n = std::io::Read::read(&mut reader, &mut chunk).map_err(|e| c.network(e))?;
        if n == 0 {
            break;
        }
        wire.clear();
        encoder.encode(&chunk[..n], &mut wire);
        c.send(&wire).await?;
    }
    wire.clear();
    encoder.finish(&mut wire);
    c.send(&wire).await
}
