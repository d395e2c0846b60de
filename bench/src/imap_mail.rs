//! The IMAP benchmark's mailbox: realistic messages of mixed sizes (LF line ends, as an MTA
//! writes them), most already read (in `cur/` with `:2,S`), the rest new.

use std::fs;
use std::path::Path;

/// A small xorshift generator: the same mailbox and the same command sequence on every run.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "meeting",
    "please",
    "find",
    "attached",
    "regards",
    "project",
    "deadline",
    "budget",
    "review",
    "thanks",
    "schedule",
    "update",
    "customer",
    "invoice",
    "server",
    "release",
    "notes",
    "team",
    "Grüße",
    "naïve",
    "café",
    "déjà",
    "vu",
    "über",
];

fn text_lines(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
    let end = out.len() + bytes;
    while out.len() < end {
        let target = rng.range(20, 76);
        let start = out.len();
        while out.len() - start < target {
            out.extend_from_slice(WORDS[rng.range(0, WORDS.len())].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
}

fn base64_lines(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = 0;
    for _ in 0..bytes / 4 * 4 {
        out.push(A[(rng.next_u64() % 64) as usize]);
        line += 1;
        if line == 76 {
            out.push(b'\n');
            line = 0;
        }
    }
    out.push(b'\n');
}

/// The subject of message `i`; `SEARCH SUBJECT "message {i} about"` finds exactly it.
pub fn subject(i: usize) -> String {
    format!("message {i} about the quarterly report")
}

/// One message: 60 % plain text (1–8 kB), 30 % multipart text + HTML (15–70 kB), 10 %
/// multipart with a base64 attachment (50–250 kB); about 35 kB on average.
pub fn message(rng: &mut Rng, i: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for hop in 0..3 {
        m.extend_from_slice(
            format!(
                "Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}])\n\
                 \tby mail.example.com (Postfix) with ESMTPS id 4Q{i:06}X{hop}\n\
                 \tfor <bench@example.com>; Tue, 14 Nov 2023 10:{:02}:00 +0100 (CET)\n",
                i % 60
            )
            .as_bytes(),
        );
    }
    m.extend_from_slice(b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=s1;\n\tb=");
    base64_lines(rng, 300, &mut m);
    let thread = i.saturating_sub(rng.range(1, 5));
    m.extend_from_slice(
        format!(
            "From: Sender {} <sender{}@example.net>\nTo: bench@example.com\n\
             Cc: team{}@example.com\nSubject: {}\n\
             Date: Tue, 14 Nov 2023 10:{:02}:00 +0100\nMessage-ID: <{i}.bench@example.net>\n\
             In-Reply-To: <{thread}.bench@example.net>\nReferences: <{thread}.bench@example.net>\n\
             MIME-Version: 1.0\n",
            i % 97,
            i % 97,
            i % 7,
            subject(i),
            i % 60
        )
        .as_bytes(),
    );
    let kind = rng.range(0, 10);
    if kind < 6 {
        m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n\n");
        let n = rng.range(1_000, 8_000);
        text_lines(rng, n, &mut m);
    } else {
        m.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n");
        m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n\n");
        let n = rng.range(2_000, 10_000);
        text_lines(rng, n, &mut m);
        if kind < 9 {
            m.extend_from_slice(b"--b\nContent-Type: text/html; charset=utf-8\n\n<html><body>\n");
            let n = rng.range(13_000, 60_000);
            text_lines(rng, n, &mut m);
            m.extend_from_slice(b"</body></html>\n");
        } else {
            m.extend_from_slice(
                b"--b\nContent-Type: application/pdf; name=\"report.pdf\"\n\
                  Content-Transfer-Encoding: base64\n\n",
            );
            let n = rng.range(50_000, 250_000);
            base64_lines(rng, n, &mut m);
        }
        m.extend_from_slice(b"--b--\n");
    }
    m
}

/// A small message a client appends (a sent mail or a draft), CRLF line ends as IMAP wants.
pub fn small_message(client: usize, n: u64) -> Vec<u8> {
    let mut m = format!(
        "From: bench@example.com\r\nTo: someone{client}@example.net\r\n\
         Subject: draft {n} of client {client}\r\nDate: Wed, 15 Nov 2023 09:00:00 +0100\r\n\
         Message-ID: <draft.{client}.{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    for line in 0..20 {
        m.extend_from_slice(
            format!("Line {line} of a short reply: thanks, see you at the meeting.\r\n").as_bytes(),
        );
    }
    m
}

/// Writes the mailbox into `maildir`: 85 % read (`cur/…:2,S`), 15 % new (`new/`). Returns the
/// bytes written.
pub fn make_maildir(maildir: &Path, count: usize) -> u64 {
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut bytes = 0;
    for i in 0..count {
        let m = message(&mut rng, i);
        bytes += m.len() as u64;
        let base = format!("1700000000.M{i:05}P1.bench,S={}", m.len());
        let path = if rng.range(0, 100) < 85 {
            maildir.join("cur").join(format!("{base}:2,S"))
        } else {
            maildir.join("new").join(base)
        };
        fs::write(path, &m).expect("write message");
    }
    bytes
}

/// Writes `count` tiny messages (a From, a Subject, one body line) into `maildir/new`, as the
/// storage benchmark does: the SELECT-of-a-large-folder and idle workloads measure per-message
/// and per-connection costs, not message sizes. Returns the bytes written.
pub fn make_tiny_maildir(maildir: &Path, count: usize) -> u64 {
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let mut bytes = 0;
    for i in 0..count {
        let m = format!("From: a{i}@example.com\r\nSubject: message {i}\r\n\r\nbody {i}\r\n");
        bytes += m.len() as u64;
        fs::write(
            maildir.join("new").join(format!("1700000000.M{i}P1.bench")),
            m,
        )
        .expect("write message");
    }
    bytes
}
