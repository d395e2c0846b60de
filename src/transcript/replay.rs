//! Replaying a transcript against the real session code over an in-memory pipe: `C:` lines are
//! written (consecutive ones in one write, as a client sends a pipelined burst), every `S:` line
//! must be the next line the server sends, `CLOSED` must be the server hanging up, and once the
//! script is done the client closes its side and the server must end without another byte.
//!
//! [`bless`] runs the same session but records what the server says instead of checking it,
//! for writing and updating transcripts (see `tests/transcripts/README.md`).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;

use super::fixture::{self, Fixture};
use super::script::{client_bytes, matches, Item, Script};

/// How long the runner waits for a line the transcript expects before calling it missing.
const LINE_WAIT: Duration = Duration::from_secs(5);
/// Bless mode only: a reply is taken as complete after this much server silence.
const BLESS_QUIET: Duration = Duration::from_millis(250);
/// Room in the pipe each way; the runner reads while the server writes, so any size works.
const PIPE_BYTES: usize = 64 * 1024;
/// Exchanged lines shown around a mismatch.
const CONTEXT_LINES: usize = 12;

/// What the server did next.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// A line; `false` when the connection ended before its CRLF.
    Line(String, bool),
    /// The server closed the connection.
    Eof,
    /// Nothing arrived in time.
    Silent,
}

/// The client's end of the pipe, with the session it talks to.
struct Client {
    reader: ReadHalf<DuplexStream>,
    writer: WriteHalf<DuplexStream>,
    buffer: Vec<u8>,
    session: JoinHandle<()>,
    /// What was exchanged so far, for failure messages.
    seen: Vec<String>,
}

impl Client {
    /// Starts the session for `script` in `fixture` and connects to it.
    fn start(fixture: &Fixture, script: &Script) -> Result<Self, String> {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let session = tokio::spawn(fixture::serve(fixture, &script.setup, theirs)?);
        let (reader, writer) = tokio::io::split(ours);
        Ok(Self {
            reader,
            writer,
            buffer: Vec::new(),
            session,
            seen: Vec::new(),
        })
    }

    /// Sends client lines, each with CRLF, in one write.
    async fn send(&mut self, lines: &[String]) -> Result<(), String> {
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(&client_bytes(line));
            bytes.extend_from_slice(b"\r\n");
            self.seen.push(format!("C: {line}"));
        }
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| format!("the server stopped reading: {e}"))
    }

    /// The next line (or EOF) within `wait`.
    async fn next(&mut self, wait: Duration) -> Got {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..at + 2).take(at).collect();
                return self.saw(Got::Line(String::from_utf8_lossy(&line).into_owned(), true));
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout(wait, self.reader.read(&mut chunk)).await {
                Err(_) => return Got::Silent,
                Ok(Ok(0)) | Ok(Err(_)) if self.buffer.is_empty() => return self.saw(Got::Eof),
                Ok(Ok(0)) | Ok(Err(_)) => {
                    let rest = std::mem::take(&mut self.buffer);
                    return self.saw(Got::Line(
                        String::from_utf8_lossy(&rest).into_owned(),
                        false,
                    ));
                }
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn saw(&mut self, got: Got) -> Got {
        self.seen.push(describe(&got));
        got
    }

    /// Closes the client's side; returns what the server still sent before ending.
    async fn finish(mut self) -> Result<Vec<Got>, String> {
        let _ = self.writer.shutdown().await;
        let mut rest = Vec::new();
        loop {
            match self.next(LINE_WAIT).await {
                Got::Eof => break,
                Got::Silent => return Err("the session did not end after the client closed".into()),
                line => rest.push(line),
            }
        }
        match tokio::time::timeout(LINE_WAIT, self.session).await {
            Ok(Ok(())) => Ok(rest),
            Ok(Err(e)) => Err(format!("the session failed: {e}")),
            Err(_) => Err("the session closed the pipe but did not end".into()),
        }
    }

    /// The last lines exchanged, as a transcript.
    fn context(&self) -> String {
        let from = self.seen.len().saturating_sub(CONTEXT_LINES);
        self.seen[from..].join("\n")
    }
}

/// How a server event reads in a transcript.
fn describe(got: &Got) -> String {
    match got {
        Got::Line(text, true) => format!("S: {text}"),
        Got::Line(text, false) => format!("S: {text}    (no CRLF before the end)"),
        Got::Eof => "CLOSED".into(),
        Got::Silent => "(nothing within the wait)".into(),
    }
}

/// Whether the server event is what `item` (an `S:` or `CLOSED` line) expects.
fn expected(item: &Item, got: &Got, host: &str) -> bool {
    match (item, got) {
        (Item::Server(pattern), Got::Line(line, true)) => matches(pattern, line, host),
        (Item::Closed, Got::Eof) => true,
        _ => false,
    }
}

/// Replays `script` against a session in `fixture`; `Err` says where and how they differ.
pub async fn check(script: &Script, fixture: &Fixture) -> Result<(), String> {
    let host = roost_storage::host::name();
    let mut client = Client::start(fixture, script)?;
    let mut burst: Vec<String> = Vec::new();
    for (n, item) in script.items.iter().enumerate() {
        if let Item::Client(line) = item {
            burst.push(line.clone());
            continue;
        }
        if !burst.is_empty() {
            client.send(&std::mem::take(&mut burst)).await?;
        }
        if let Item::Other(_) = item {
            continue;
        }
        let got = client.next(LINE_WAIT).await;
        if !expected(item, &got, host) {
            let want = Script::render(std::slice::from_ref(item));
            return Err(format!(
                "line {}: expected\n    {}\nbut the server sent\n    {}\nafter:\n{}",
                n + 1,
                want.trim_end(),
                describe(&got),
                client.context()
            ));
        }
    }
    if !burst.is_empty() {
        client.send(&burst).await?;
    }
    let rest = client.finish().await?;
    if !rest.is_empty() {
        let lines: Vec<String> = rest.iter().map(describe).collect();
        return Err(format!(
            "the server sent more than the transcript says:\n{}",
            lines.join("\n")
        ));
    }
    Ok(())
}

/// Runs `script` and returns it rewritten with what the server really sent: each reply block
/// that still matches keeps its text (and placeholders), the others are replaced.
pub async fn bless(script: &Script, fixture: &Fixture) -> Result<String, String> {
    let mut client = Client::start(fixture, script)?;
    let bursts = bursts(&script.items);
    let mut actual = vec![quiet_block(&mut client).await];
    for burst in &bursts {
        client.send(burst).await?;
        actual.push(quiet_block(&mut client).await);
    }
    let rest = client.finish().await?;
    if let Some(last) = actual.last_mut() {
        last.extend(rest);
    }
    Ok(Script::render(&rewrite(&script.items, &actual)))
}

/// The consecutive runs of `C:` lines, in order.
fn bursts(items: &[Item]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut previous_was_client = false;
    for item in items {
        match item {
            Item::Client(line) if previous_was_client => {
                if let Some(last) = out.last_mut() {
                    last.push(line.clone());
                }
            }
            Item::Client(line) => out.push(vec![line.clone()]),
            _ => {}
        }
        previous_was_client = matches!(item, Item::Client(_));
    }
    out
}

/// Everything the server says until it falls silent or closes.
async fn quiet_block(client: &mut Client) -> Vec<Got> {
    let mut block = Vec::new();
    loop {
        match client.next(BLESS_QUIET).await {
            Got::Silent => return block,
            Got::Eof => {
                block.push(Got::Eof);
                return block;
            }
            line => block.push(line),
        }
    }
}

/// For each item, the reply block it belongs to: block 0 is the greeting, block `k` what the
/// server says after the `k`-th burst of `C:` lines.
fn segments(items: &[Item]) -> Vec<usize> {
    let mut segment = 0;
    let mut previous_was_client = false;
    items
        .iter()
        .map(|item| {
            let client = matches!(item, Item::Client(_));
            if previous_was_client && !client {
                segment += 1;
            }
            previous_was_client = client;
            segment
        })
        .collect()
}

/// The items with block `k` of `actual` in place of the `S:`/`CLOSED` lines the file had
/// there: kept as written when they still match, replaced by what was sent when not.
fn rewrite(items: &[Item], actual: &[Vec<Got>]) -> Vec<Item> {
    let host = roost_storage::host::name();
    let segment = segments(items);
    let mut written: Vec<Vec<Item>> = vec![Vec::new(); actual.len()];
    for (item, k) in items.iter().zip(&segment) {
        if matches!(item, Item::Server(_) | Item::Closed) {
            if let Some(w) = written.get_mut(*k) {
                w.push(item.clone());
            }
        }
    }
    let chosen: Vec<Vec<Item>> = actual
        .iter()
        .zip(written)
        .map(|(got, file)| {
            let same =
                got.len() == file.len() && got.iter().zip(&file).all(|(g, f)| expected(f, g, host));
            if same {
                file
            } else {
                got.iter().map(|g| as_item(g, host)).collect()
            }
        })
        .collect();
    place(items, &segment, chosen)
}

/// Puts block 0 just before the first burst and block `k` just after burst `k`; the file's
/// own `S:`/`CLOSED` lines were folded into the blocks already.
fn place(items: &[Item], segment: &[usize], chosen: Vec<Vec<Item>>) -> Vec<Item> {
    let mut blocks: Vec<Option<Vec<Item>>> = chosen.into_iter().map(Some).collect();
    let mut take = |k: usize| blocks.get_mut(k).and_then(Option::take).unwrap_or_default();
    let mut out = Vec::new();
    let mut previous_was_client = false;
    for (item, &k) in items.iter().zip(segment) {
        let client = matches!(item, Item::Client(_));
        if client != previous_was_client {
            // A burst starts (the block before it is due) or ends (its answer is due).
            out.extend(take(k));
        }
        if !matches!(item, Item::Server(_) | Item::Closed) {
            out.push(item.clone());
        }
        previous_was_client = client;
    }
    for k in 0..=segment.last().map_or(0, |k| k + 1) {
        out.extend(take(k));
    }
    out
}

fn as_item(got: &Got, host: &str) -> Item {
    match got {
        Got::Line(text, _) => Item::Server(with_host_placeholder(text, host)),
        Got::Eof | Got::Silent => Item::Closed,
    }
}

/// `line` with `{host}` for every occurrence of the host name that stands as a word of its
/// own (not inside a longer name or number).
fn with_host_placeholder(line: &str, host: &str) -> String {
    if host.is_empty() {
        return line.to_string();
    }
    let part_of_name =
        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_');
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(host) {
        let end = at + host.len();
        let word = !part_of_name(rest[..at].chars().next_back())
            && !part_of_name(rest[end..].chars().next());
        out.push_str(&rest[..at]);
        out.push_str(if word { "{host}" } else { host });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Reads and parses one transcript file.
pub fn load(path: &Path, protocol: crate::config::Protocol) -> Result<Script, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    Script::parse(&text, protocol)
}
