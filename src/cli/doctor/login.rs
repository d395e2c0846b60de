//! A real login over loopback with a test account, per IMAP and POP3 listener without
//! implicit TLS: what a user's client would do first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{Finding, Level};
use crate::config::{Config, Protocol};
use crate::status::cli::reachable;

/// Logs in with `user` on every plain IMAP and POP3 listener.
pub fn logins(config: &Config, user: &str, password: &str) -> Vec<Finding> {
    config
        .listeners
        .iter()
        .filter(|l| matches!(l.protocol, Protocol::Imap | Protocol::Pop3))
        .map(|l| {
            let subject = format!("login {} {} as {user}", l.protocol.name(), l.addr);
            let result = match l.protocol {
                Protocol::Imap => imap(l.addr, user, password),
                _ => pop3(l.addr, user, password),
            };
            match result {
                Ok(()) => Finding::new(Level::Ok, subject, "logged in and out"),
                Err(why) => Finding::new(Level::Fail, subject, why),
            }
        })
        .collect()
}

/// A line-reading connection to a listener (on loopback when it listens on every address).
struct Conn {
    reader: BufReader<std::io::Take<TcpStream>>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(5))
            .map_err(|e| format!("cannot connect: {e} (is roost running?)"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Self {
            reader: BufReader::new(stream.take(64 * 1024)),
            writer,
        })
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("no answer: {e}")),
        }
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| e.to_string())
    }
}

/// `"text"` with quotes and backslashes escaped (an IMAP quoted string).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn imap(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let mut c = Conn::open(addr)?;
    c.line()?;
    c.send(&format!("d1 LOGIN {} {}", quoted(user), quoted(password)))?;
    loop {
        let line = c.line()?;
        if let Some(answer) = line.strip_prefix("d1 ") {
            if !answer.starts_with("OK") {
                return Err(format!("the server said {answer:?}"));
            }
            break;
        }
    }
    c.send("d2 LOGOUT")?;
    Ok(())
}

fn pop3(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let mut c = Conn::open(addr)?;
    c.line()?;
    c.send(&format!("USER {user}"))?;
    let answer = c.line()?;
    if answer.starts_with("+OK") {
        c.send(&format!("PASS {password}"))?;
        let answer = c.line()?;
        if answer.starts_with("+OK") {
            c.send("QUIT")?;
            return Ok(());
        }
        return Err(format!("the server said {answer:?}"));
    }
    Err(format!("the server said {answer:?}"))
}
