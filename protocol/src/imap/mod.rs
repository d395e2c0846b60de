//! IMAP command decoding on top of `imap-codec`, and (in [`response`]) every response roost
//! writes, as values.
//!
//! `imap-codec`'s `Fragmentizer` splits the byte stream into lines and literals before parsing,
//! so a malformed or oversized command is discarded at a clear boundary and never mistaken for
//! the next one. [`ImapDecoder`] adds what a server needs on top: literal size limits (refused
//! before the literal is sent), and the state-dependent choice between commands, AUTHENTICATE
//! continuation data and the `DONE` that ends IDLE.

use imap_codec::{
    decode::Decoder,
    fragmentizer::{DecodeMessageError, FragmentInfo, Fragmentizer, LiteralAnnouncement},
    imap_types::{
        auth::AuthenticateData,
        command::{Command, CommandBody},
        core::LiteralMode,
        IntoStatic,
    },
    AuthenticateDataCodec, CommandCodec, IdleDoneCodec,
};

pub use imap_codec::imap_types;

pub mod extended;
pub mod message;
pub mod multiappend;
pub mod mutf7;
pub mod parsed;
pub mod response;
pub mod strings;

pub use extended::{AppendMessage, Extras};
pub use response::Status;

/// Commands roost knows by name, to tell "unknown command" from "bad syntax" (and, for the
/// status page, which word of a relayed line is a command).
pub const KNOWN_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID",
    "IDLE",
    "ENABLE",
    "NAMESPACE",
    "ID",
    "COMPRESS",
    "CANCELUPDATE",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "SORT",
    "THREAD",
];

/// The largest literal a client may send before it has logged in (a password, a SASL
/// response); Dovecot allows 4 KiB.
pub const PRE_LOGIN_MAX_LITERAL: u32 = 4096;
/// The largest command (line and literals) before login.
pub const PRE_LOGIN_MAX_COMMAND: u32 = 8192;

/// What the decoder expects next; the session sets it as the conversation moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A tagged command.
    Command,
    /// A line of base64 SASL data (or `*`) after a `+` continuation.
    AuthenticateData,
    /// `DONE` ending an IDLE.
    IdleDone,
}

/// One thing the decoder found in the byte stream.
#[derive(Debug)]
pub enum Event {
    /// A complete, well-formed command.
    Command(Box<Command<'static>>),
    /// A SASL continuation line.
    AuthenticateData(AuthenticateData<'static>),
    /// `DONE` after IDLE.
    IdleDone,
    /// The client announced a synchronizing literal within limits: send `+ ...` so it goes on.
    LiteralAccepted,
    /// A literal over the limit that the client sends without waiting (LITERAL+), from a
    /// client that has not logged in: end the connection with `* BYE reason`, unread.
    Overflow {
        /// Why, for the `* BYE` line.
        reason: String,
    },
    /// The input was refused; answer `tag BAD reason` (or `* BAD` without a tag).
    Rejected {
        /// The tag, when the line had a recognizable one.
        tag: Option<String>,
        /// A human-readable reason for the BAD response.
        reason: String,
    },
}

/// Turns bytes into [`Event`]s, holding at most one command (its literals included) in memory.
#[derive(Debug)]
pub struct ImapDecoder {
    fragmentizer: Fragmentizer,
    max_literal: u32,
    /// Before login an unwanted literal is not swallowed but ends the connection.
    end_on_overflow: bool,
    /// The longest command line outside literals.
    max_line: u32,
    /// A line of the current command was longer than `max_line`: it gets a BAD, not parsed.
    line_too_long: bool,
    expect: Expect,
    extras: Extras,
    saved: extended::Saved,
}

impl ImapDecoder {
    /// A decoder refusing literals above `max_literal` bytes and commands above `max_command`.
    pub fn new(max_literal: u32, max_command: u32) -> Self {
        Self {
            fragmentizer: Fragmentizer::new(max_command.max(max_literal.saturating_add(8192))),
            max_literal,
            end_on_overflow: false,
            max_line: max_command,
            line_too_long: false,
            expect: Expect::Command,
            extras: Extras::default(),
            saved: extended::Saved::default(),
        }
    }

    /// The decoder for a client that has not logged in (Dovecot's imap-login limits): literals
    /// up to [`PRE_LOGIN_MAX_LITERAL`] bytes, commands up to [`PRE_LOGIN_MAX_COMMAND`] bytes, and
    /// a LITERAL+ over the limit is [`Event::Overflow`] instead of being read and dropped.
    pub fn before_login() -> Self {
        Self {
            // The whole command, literals included, within the limit.
            fragmentizer: Fragmentizer::new(PRE_LOGIN_MAX_COMMAND),
            end_on_overflow: true,
            ..Self::new(PRE_LOGIN_MAX_LITERAL, PRE_LOGIN_MAX_COMMAND)
        }
    }

    /// Tells the decoder what the session expects next.
    pub fn expect(&mut self, expect: Expect) {
        self.expect = expect;
    }

    /// The extended-syntax options of the last command returned (ESEARCH, LIST-EXTENDED).
    pub fn take_extras(&mut self) -> Extras {
        std::mem::take(&mut self.extras)
    }

    /// What `$` stands for in the next commands (RFC 5182 SEARCHRES).
    pub fn set_saved(&mut self, saved: extended::Saved) {
        self.saved = saved;
    }

    /// Feeds bytes read from the connection.
    pub fn enqueue(&mut self, bytes: &[u8]) {
        self.fragmentizer.enqueue_bytes(bytes);
    }

    /// The next event, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let info = self.fragmentizer.progress()?;
            if let Some(refused) = self.check_line_length(info) {
                return Some(refused);
            }
            if let FragmentInfo::Line {
                announcement: Some(LiteralAnnouncement { mode, length }),
                ..
            } = info
            {
                if length > self.max_literal {
                    let tag = self.tag();
                    if mode == LiteralMode::Sync && tag.is_some() {
                        // The client waits for our go-ahead: refuse, and it sends nothing more.
                        self.fragmentizer.skip_message();
                    } else if self.end_on_overflow {
                        return Some(Event::Overflow {
                            reason: format!(
                                "Literal of {length} bytes exceeds the limit of {} bytes before login",
                                self.max_literal
                            ),
                        });
                    } else {
                        // A non-synchronizing literal arrives anyway: let the fragmentizer
                        // swallow it (it stores nothing past the limit), then refuse it.
                        self.fragmentizer.poison_message();
                        continue;
                    }
                    return Some(Event::Rejected {
                        tag,
                        reason: format!(
                            "Literal of {length} bytes exceeds the limit of {} bytes",
                            self.max_literal
                        ),
                    });
                }
                if mode == LiteralMode::Sync {
                    return Some(Event::LiteralAccepted);
                }
                continue;
            }
            if !self.fragmentizer.is_message_complete() {
                continue;
            }
            if std::mem::take(&mut self.line_too_long) {
                return Some(self.line_too_long_rejection());
            }
            return Some(self.decode_complete());
        }
    }

    /// Notes a line over `max_line`; a literal it announces is refused (synchronizing) or
    /// swallowed unstored, so the command is answered once it is over.
    fn check_line_length(&mut self, info: FragmentInfo) -> Option<Event> {
        let FragmentInfo::Line {
            start,
            end,
            announcement,
            ..
        } = info
        else {
            return None;
        };
        if end.saturating_sub(start) > self.max_line as usize {
            self.line_too_long = true;
        }
        let announcement = announcement.filter(|_| self.line_too_long)?;
        if announcement.mode == LiteralMode::Sync && self.tag().is_some() {
            let refused = self.line_too_long_rejection();
            self.fragmentizer.skip_message();
            self.line_too_long = false;
            return Some(refused);
        }
        self.fragmentizer.poison_message();
        None
    }

    fn line_too_long_rejection(&self) -> Event {
        Event::Rejected {
            tag: self.tag(),
            reason: format!("Command line too long (limit {} bytes)", self.max_line),
        }
    }

    fn tag(&self) -> Option<String> {
        self.fragmentizer
            .decode_tag()
            .map(|tag| tag.as_ref().to_string())
    }

    fn decode_complete(&mut self) -> Event {
        match self.expect {
            Expect::Command => {
                self.extras = Extras::default();
                let substituted =
                    extended::substitute_saved(self.fragmentizer.message_bytes(), &self.saved);
                let message = substituted
                    .as_deref()
                    .unwrap_or(self.fragmentizer.message_bytes());
                if let Some(appends) = multiappend::split(message) {
                    return self.decode_multiappend(appends);
                }
                let rewritten = match extended::extract(message) {
                    Some(found) => Some(found),
                    None => substituted.map(|plain| (plain, Extras::default())),
                };
                if let Some((plain, extras)) = rewritten {
                    return match CommandCodec::default().decode(&plain) {
                        Ok(([], command)) => {
                            self.extras = extras;
                            Event::Command(Box::new(command.into_static()))
                        }
                        _ => Event::Rejected {
                            tag: self.tag(),
                            reason: self.syntax_reason(true),
                        },
                    };
                }
                match self.fragmentizer.decode_message(&CommandCodec::default()) {
                    Ok(command) => Event::Command(Box::new(command.into_static())),
                    Err(err) => self.rejected(&err),
                }
            }
            Expect::AuthenticateData => {
                match self
                    .fragmentizer
                    .decode_message(&AuthenticateDataCodec::default())
                {
                    Ok(data) => Event::AuthenticateData(data.into_static()),
                    Err(_) => Event::Rejected {
                        tag: None,
                        reason: "Invalid base64 in authentication data".into(),
                    },
                }
            }
            Expect::IdleDone => match self.fragmentizer.decode_message(&IdleDoneCodec::default()) {
                Ok(_) => Event::IdleDone,
                Err(_) => Event::Rejected {
                    tag: None,
                    reason: "Expected DONE".into(),
                },
            },
        }
    }

    /// A MULTIAPPEND or CATENATE, cut into one APPEND per message: the first is the command,
    /// the others ride along in [`Extras::more_messages`] and CATENATE parts in
    /// [`Extras::catenate`]; one message the grammar refuses refuses all.
    fn decode_multiappend(&mut self, appends: multiappend::Appends) -> Event {
        let mut first = None;
        let mut more = Vec::with_capacity(appends.commands.len().saturating_sub(1));
        for one in &appends.commands {
            let command = match CommandCodec::default().decode(one) {
                Ok(([], command)) => command.into_static(),
                _ => {
                    return Event::Rejected {
                        tag: self.tag(),
                        reason: self.syntax_reason(true),
                    }
                }
            };
            if first.is_none() {
                first = Some(command);
                continue;
            }
            if let CommandBody::Append {
                flags,
                date,
                message,
                ..
            } = command.body
            {
                more.push(AppendMessage {
                    flags,
                    date,
                    message,
                });
            }
        }
        match first {
            Some(command) => {
                self.extras = Extras {
                    more_messages: more,
                    catenate: appends.catenate,
                    ..Extras::default()
                };
                Event::Command(Box::new(command))
            }
            None => Event::Rejected {
                tag: self.tag(),
                reason: self.syntax_reason(true),
            },
        }
    }

    fn rejected<C: Decoder>(&self, err: &DecodeMessageError<'_, C>) -> Event {
        let tag = self.tag();
        let reason = match err {
            DecodeMessageError::MessageTooLong { .. } => "Command line too long".to_string(),
            DecodeMessageError::MessagePoisoned { .. } => "Literal too large".to_string(),
            _ => self.syntax_reason(tag.is_some()),
        };
        Event::Rejected { tag, reason }
    }

    fn syntax_reason(&self, has_tag: bool) -> String {
        if !has_tag {
            return "Missing or invalid tag".into();
        }
        let bytes = self.fragmentizer.message_bytes();
        let line = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        let mut words = line.split_ascii_whitespace();
        let keyword = words.nth(1).unwrap_or("").to_ascii_uppercase();
        if keyword.is_empty() {
            "Missing command".into()
        } else if KNOWN_COMMANDS.contains(&keyword.as_str()) {
            format!("Error in IMAP command {keyword}: invalid arguments")
        } else {
            format!(
                "Unknown command {}",
                keyword.chars().take(32).collect::<String>()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::command::CommandBody;

    fn events(input: &[u8], chunk: usize) -> Vec<String> {
        let mut dec = ImapDecoder::new(100, 1000);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            dec.enqueue(piece);
            while let Some(ev) = dec.next_event() {
                out.push(match ev {
                    Event::Command(c) => format!("{} {}", c.tag.as_ref(), c.body.name()),
                    Event::LiteralAccepted => "+".into(),
                    Event::Rejected { tag, reason } => format!("BAD {tag:?} {reason}"),
                    other => format!("{other:?}"),
                });
            }
        }
        out
    }

    #[test]
    fn commands_and_literals_survive_every_chunking() {
        let input = b"a1 CAPABILITY\r\na2 LOGIN {5}\r\nalice {6}\r\nsecret\r\na3 LOGOUT\r\n";
        for chunk in 1..=input.len() {
            assert_eq!(
                events(input, chunk),
                vec!["a1 CAPABILITY", "+", "+", "a2 LOGIN", "a3 LOGOUT"],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn oversized_sync_literal_is_refused_before_it_is_sent() {
        assert_eq!(
            events(b"a1 APPEND INBOX {5000}\r\na2 NOOP\r\n", 3),
            vec![
                "BAD Some(\"a1\") Literal of 5000 bytes exceeds the limit of 100 bytes".to_string(),
                "a2 NOOP".to_string()
            ]
        );
    }

    #[test]
    fn over_long_lines_are_refused_whatever_the_literal_limit() {
        // `events` decodes with literals up to 100 bytes and lines up to 1000.
        let long = format!("a1 SELECT {}\r\na2 NOOP\r\n", "x".repeat(1200));
        let synced = format!("b1 APPEND {} {{5}}\r\nb2 NOOP\r\n", "x".repeat(1200));
        for chunk in [1, 7, 64, 4096] {
            assert_eq!(
                events(long.as_bytes(), chunk),
                vec![
                    "BAD Some(\"a1\") Command line too long (limit 1000 bytes)".to_string(),
                    "a2 NOOP".to_string()
                ],
                "chunk {chunk}"
            );
            assert_eq!(
                events(synced.as_bytes(), chunk),
                vec![
                    "BAD Some(\"b1\") Command line too long (limit 1000 bytes)".to_string(),
                    "b2 NOOP".to_string()
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn before_login_a_big_literal_plus_ends_the_connection_unread() {
        for chunk in [1, 7, 64] {
            let mut dec = ImapDecoder::before_login();
            let mut seen = Vec::new();
            let input = b"a1 LOGIN {50000000+}\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
            for piece in input.chunks(chunk) {
                dec.enqueue(piece);
                while let Some(ev) = dec.next_event() {
                    seen.push(ev);
                }
            }
            assert!(
                matches!(seen.as_slice(), [Event::Overflow { reason }] if reason.contains("4096")),
                "{seen:?}"
            );
        }
        // Within the limit, LOGIN with literals works as before.
        let mut dec = ImapDecoder::before_login();
        dec.enqueue(b"a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n");
        assert!(matches!(dec.next_event(), Some(Event::Command(_))));
        // A synchronizing one over the limit is refused; the session goes on.
        let mut dec = ImapDecoder::before_login();
        dec.enqueue(b"a1 LOGIN {5000}\r\na2 NOOP\r\n");
        assert!(matches!(dec.next_event(), Some(Event::Rejected { .. })));
        assert!(matches!(dec.next_event(), Some(Event::Command(_))));
    }

    #[test]
    fn garbage_gets_a_reason_and_the_stream_goes_on() {
        let out = events(b"a1 FROB x\r\na2 SELECT\r\n\r\na3 NOOP\r\n", 4);
        assert_eq!(out[0], "BAD Some(\"a1\") Unknown command FROB");
        assert_eq!(
            out[1],
            "BAD Some(\"a2\") Error in IMAP command SELECT: invalid arguments"
        );
        assert_eq!(out.last().map(String::as_str), Some("a3 NOOP"));
    }

    #[test]
    fn login_arguments_are_decoded() {
        let mut dec = ImapDecoder::new(100, 1000);
        dec.enqueue(b"x LOGIN \"al ice\" {3+}\r\np\"w\r\n");
        match dec.next_event() {
            Some(Event::Command(c)) => match c.body {
                CommandBody::Login { username, password } => {
                    assert_eq!(username.as_ref(), b"al ice");
                    assert_eq!(password.declassify().as_ref(), b"p\"w");
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
}
