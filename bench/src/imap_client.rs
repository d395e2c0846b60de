//! A raw IMAP client for the benchmark: tagged commands, responses read to the tagged line
//! (literals skipped by their length), nothing parsed beyond what the load needs; over plain
//! TCP or implicit TLS (IMAPS).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// The connection under the client: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// One completed command.
pub struct Reply {
    /// OK, NO or BAD.
    pub status: Status,
    /// The tagged line, without CRLF.
    pub tagged: String,
    /// Bytes received for it (untagged responses, literals and the tagged line).
    pub bytes: u64,
    /// `* n EXISTS` if one came.
    pub exists: Option<u64>,
    /// Untagged `* SEARCH` numbers, when asked to keep them.
    pub search: Vec<u32>,
}

/// One IMAP connection, logged in or not.
pub struct Imap {
    reader: BufReader<Stream>,
    line: Vec<u8>,
    prefix: String,
    next_tag: u64,
}

/// The length of a literal announced at the end of `line` (`{n}\r\n` or `~{n}\r\n`).
fn literal_len(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"\r\n").unwrap_or(line);
    let body = body.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
}

impl Imap {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr, prefix: &str, buffer: usize) -> io::Result<Imap> {
        Imap::connect_with(addr, prefix, buffer, None)
    }

    /// Connects, over TLS when given a client config (the handshake happens on reading the
    /// greeting), and reads the greeting.
    pub fn connect_with(
        addr: SocketAddr,
        prefix: &str,
        buffer: usize,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Imap> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(60)))?;
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                let conn = ClientConnection::new(Arc::clone(config), name.to_owned())
                    .map_err(io::Error::other)?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        };
        let mut c = Imap {
            reader: BufReader::with_capacity(buffer, stream),
            line: Vec::new(),
            prefix: prefix.to_string(),
            next_tag: 0,
        };
        c.read_line()?;
        if !c.line.starts_with(b"* OK") {
            return Err(io::Error::other(format!(
                "greeting: {}",
                String::from_utf8_lossy(&c.line).trim_end()
            )));
        }
        Ok(c)
    }

    fn read_line(&mut self) -> io::Result<usize> {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Err(closed());
        }
        Ok(n)
    }

    /// Sends `command` (and `literal`, sent at once as LITERAL+ allows) and reads to the
    /// tagged response. `keep_search`: collect the numbers of untagged SEARCH responses.
    pub fn command(
        &mut self,
        command: &str,
        literal: Option<&[u8]>,
        keep_search: bool,
    ) -> io::Result<Reply> {
        self.next_tag += 1;
        let tag = format!("{}{}", self.prefix, self.next_tag);
        let mut out = Vec::with_capacity(command.len() + 32 + literal.map_or(0, <[u8]>::len));
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(command.as_bytes());
        if let Some(lit) = literal {
            out.extend_from_slice(format!(" {{{}+}}\r\n", lit.len()).as_bytes());
            out.extend_from_slice(lit);
        }
        out.extend_from_slice(b"\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(&out)?;
        stream.flush()?;
        self.read_reply(&tag, keep_search)
    }

    fn read_reply(&mut self, tag: &str, keep_search: bool) -> io::Result<Reply> {
        let mut reply = Reply {
            status: Status::Bad,
            tagged: String::new(),
            bytes: 0,
            exists: None,
            search: Vec::new(),
        };
        // Whether the current line starts a response (rather than continuing one after a
        // literal).
        let mut starts = true;
        loop {
            reply.bytes += self.read_line()? as u64;
            if starts
                && self.line.starts_with(tag.as_bytes())
                && self.line.get(tag.len()) == Some(&b' ')
            {
                let rest = &self.line[tag.len() + 1..];
                reply.status = if rest.starts_with(b"OK") {
                    Status::Ok
                } else if rest.starts_with(b"NO") {
                    Status::No
                } else {
                    Status::Bad
                };
                reply.tagged = String::from_utf8_lossy(&self.line).trim_end().to_string();
                return Ok(reply);
            }
            if starts && self.line.starts_with(b"* ") {
                let text = String::from_utf8_lossy(&self.line);
                let mut words = text.split_whitespace().skip(1);
                match (words.next(), words.next()) {
                    (Some(n), Some("EXISTS")) => reply.exists = n.parse().ok(),
                    (Some("SEARCH"), first) if keep_search => {
                        reply.search.extend(
                            first
                                .into_iter()
                                .chain(words)
                                .filter_map(|w| w.parse::<u32>().ok()),
                        );
                    }
                    _ => {}
                }
            }
            match literal_len(&self.line) {
                Some(len) => {
                    let copied = io::copy(&mut (&mut self.reader).take(len), &mut io::sink())?;
                    if copied < len {
                        return Err(closed());
                    }
                    reply.bytes += len;
                    starts = false;
                }
                None => starts = true,
            }
        }
    }

    /// LOGIN; an error unless OK.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        let r = self.command(&format!("LOGIN \"{user}\" \"{password}\""), None, false)?;
        if r.status != Status::Ok {
            return Err(io::Error::other(format!("LOGIN: {}", r.tagged)));
        }
        Ok(())
    }

    /// Starts IDLE: sends it and waits for the continuation request.
    pub fn start_idle(&mut self) -> io::Result<()> {
        self.next_tag += 1;
        let tag = format!("{}{}", self.prefix, self.next_tag);
        let stream = self.reader.get_mut();
        stream.write_all(format!("{tag} IDLE\r\n").as_bytes())?;
        stream.flush()?;
        loop {
            self.read_line()?;
            if self.line.starts_with(b"+") {
                return Ok(());
            }
            if self.line.starts_with(tag.as_bytes()) {
                return Err(io::Error::other(format!(
                    "IDLE: {}",
                    String::from_utf8_lossy(&self.line).trim_end()
                )));
            }
        }
    }
}

/// `[APPENDUID validity uid]` of a tagged OK.
pub fn appenduid(tagged: &str) -> Option<u32> {
    let at = tagged.find("[APPENDUID ")?;
    let mut words = tagged[at + 11..].split([' ', ']']);
    words.next()?;
    words.next()?.parse().ok()
}
