//! Vacation (RFC 5230, with RFC 6131's `:seconds`): compiling the command, the checks that
//! depend on the message alone (RFC 5230 §4.5-4.6, RFC 3834 §2), and the reply message.

use base64::Engine as _;

use super::compile::args::{err, Args};
use super::compile::Ctx;
use super::date::{self, When};
use super::ir::{Cmd, VacationCmd};
use super::run::Run;
use super::variables::Frame;
use super::{address, Action, CompileError};

const DAY: u64 = 86_400;
/// Shortest period between two replies to one sender.
pub(crate) const MIN_PERIOD: u64 = DAY;
/// Longest period between two replies to one sender.
pub(crate) const MAX_PERIOD: u64 = 30 * DAY;
/// The period when the script gives none.
pub(crate) const DEFAULT_PERIOD: u64 = 7 * DAY;

/// Compiles `vacation [:days n | :seconds n] [:subject s] [:from s] [:addresses l] [:mime]
/// [:handle s] reason`.
pub(crate) fn compile(ctx: &Ctx, args: &mut Args) -> Result<Cmd, CompileError> {
    ctx.need("vacation", "'vacation'", args.line)?;
    let mut v = VacationCmd {
        period: DEFAULT_PERIOD,
        subject: None,
        from: None,
        addresses: Vec::new(),
        mime: false,
        handle: None,
        reason: String::new(),
    };
    let mut period_given = false;
    for tag in args.take_tags() {
        match tag.name.as_str() {
            "days" | "seconds" => {
                if period_given {
                    return Err(err(tag.line, "vacation takes one of :days or :seconds"));
                }
                period_given = true;
                let n = tag.number()?;
                v.period = if tag.name == "days" {
                    n.saturating_mul(DAY)
                } else {
                    ctx.need("vacation-seconds", ":seconds", tag.line)?;
                    n
                };
                v.period = v.period.clamp(MIN_PERIOD, MAX_PERIOD);
            }
            "subject" => v.subject = Some(tag.string()?),
            "from" => v.from = Some(tag.string()?),
            "addresses" => v.addresses = tag.list()?,
            "mime" => v.mime = true,
            "handle" => v.handle = Some(tag.string()?),
            _ => return Err(tag.unknown("vacation")),
        }
    }
    v.reason = args.string("reason")?;
    Ok(Cmd::Vacation(Box::new(v)))
}

/// FNV-1a, 64 bits, over `parts` each ended by a NUL, in hex: the default `:handle`, and the
/// key delivery's vacation memory files a (handle, sender) pair under.
pub fn fnv1a(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Senders that never get an automatic reply (RFC 3834 §2, RFC 5230 §4.6).
fn robot_sender(sender: &str) -> bool {
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    sender.is_empty()
        || local == "mailer-daemon"
        || local == "listserv"
        || local == "majordomo"
        || local.starts_with("owner-")
        || local.ends_with("-request")
}

/// Whether the message came from a list or a robot, by its header.
fn automatic(run: &Run<'_, '_>) -> bool {
    let mail = &run.mail;
    let auto = mail.values("auto-submitted").iter().any(|v| {
        !v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("no")
    });
    let list = [
        "list-id",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-post",
        "list-owner",
        "list-archive",
    ]
    .iter()
    .any(|h| mail.has(h));
    let bulk = mail.values("precedence").iter().any(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "bulk" || v == "list" || v == "junk"
    });
    auto || list || bulk
}

/// Whether one of `mine` is among the message's recipients.
fn addressed_to(run: &Run<'_, '_>, mine: &[String]) -> bool {
    ["to", "cc", "bcc", "resent-to", "resent-cc"]
        .iter()
        .any(|h| {
            run.mail
                .raw_values(h)
                .into_iter()
                .flat_map(address::in_header)
                .any(|a| mine.iter().any(|m| m.eq_ignore_ascii_case(&a)))
        })
}

/// The vacation action for this message, or `None` when no reply is due.
pub(crate) fn run(run: &Run<'_, '_>, v: &VacationCmd, frame: &Frame) -> Option<Action> {
    let expand = |s: &str| frame.expand(run_globals(run), s);
    let sender = run.input.envelope.from;
    let mut mine: Vec<String> = run.input.user_addresses.to_vec();
    mine.extend(v.addresses.iter().map(|a| expand(a)));
    let from = v.from.as_deref().map(&expand);
    if let Some(f) = &from {
        mine.extend(address::in_header(f.as_bytes()));
    }
    let sender_is_me = mine.iter().any(|m| m.eq_ignore_ascii_case(sender));
    if robot_sender(sender) || sender_is_me || automatic(run) || !addressed_to(run, &mine) {
        return None;
    }
    let reason = expand(&v.reason);
    let subject = v.subject.as_deref().map(&expand);
    let handle = match &v.handle {
        Some(h) => expand(h),
        None => fnv1a(&[
            reason.as_bytes(),
            subject.as_deref().unwrap_or("").as_bytes(),
            from.as_deref().unwrap_or("").as_bytes(),
            if v.mime { b"mime" } else { b"" },
        ]),
    };
    let reply = reply(run, v, &reason, subject, from, &handle);
    Some(Action::Vacation {
        to: sender.to_string(),
        handle,
        period_seconds: v.period,
        reply,
        envelope_from: String::new(),
    })
}

fn run_globals<'r>(run: &'r Run<'_, '_>) -> &'r super::variables::Globals {
    run.globals()
}

/// One header line's value with line breaks removed (no header injection).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// RFC 2047 encoding of a non-ASCII header value (base64 words of at most 45 bytes).
pub(crate) fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Normalises line ends to CRLF.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
    }
    out
}

fn reply(
    run: &Run<'_, '_>,
    v: &VacationCmd,
    reason: &str,
    subject: Option<String>,
    from: Option<String>,
    handle: &str,
) -> Vec<u8> {
    let input = run.input;
    let from = from
        .or_else(|| input.user_addresses.first().cloned())
        .unwrap_or_else(|| input.envelope.to.to_string());
    let subject = subject.unwrap_or_else(|| {
        let original = run
            .mail
            .values("subject")
            .into_iter()
            .next()
            .unwrap_or_default();
        format!("Auto: {original}")
    });
    let message_id = run.mail.values("message-id").into_iter().next();
    let domain = address::in_header(from.as_bytes())
        .first()
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let when = When {
        utc: input.now,
        zone: input.zone_minutes,
    };
    let id = fnv1a(&[
        handle.as_bytes(),
        input.envelope.from.as_bytes(),
        input.now.to_string().as_bytes(),
    ]);
    let mut h = String::new();
    h.push_str(&format!("From: {}\r\n", one_line(&from)));
    h.push_str(&format!("To: <{}>\r\n", one_line(input.envelope.from)));
    h.push_str(&format!(
        "Subject: {}\r\n",
        encode_word(&one_line(&subject))
    ));
    if let Some(id) = message_id.map(|i| one_line(&i)) {
        let refs = run
            .mail
            .values("references")
            .into_iter()
            .next()
            .map(|r| one_line(&r));
        h.push_str(&format!("In-Reply-To: {id}\r\n"));
        match refs {
            Some(r) if !r.is_empty() => h.push_str(&format!("References: {r} {id}\r\n")),
            _ => h.push_str(&format!("References: {id}\r\n")),
        }
    }
    h.push_str(&format!("Date: {}\r\n", date::std11(when)));
    h.push_str(&format!(
        "Message-ID: <vacation.{id}.{}@{domain}>\r\n",
        input.now
    ));
    h.push_str("Auto-Submitted: auto-replied (vacation)\r\nMIME-Version: 1.0\r\n");
    if v.mime {
        h.push_str(&crlf(reason.trim_start_matches(['\r', '\n'])));
    } else {
        h.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        h.push_str(&crlf(reason));
    }
    if !h.ends_with("\r\n") {
        h.push_str("\r\n");
    }
    h.into_bytes()
}
