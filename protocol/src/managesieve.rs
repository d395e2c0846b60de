//! ManageSieve (RFC 5804): client commands decoded from bytes, server responses encoded.
//!
//! ```text
//!   bytes ──► Decoder (atoms, "quoted", {N+} literals; line and literal caps) ──► Vec<Token>
//!         ──► Command::from_tokens ──► Command
//!   OK/NO/BYE (response code) "text", capability lines, strings ──► bytes
//! ```
//! A literal's bytes are waited for, never guessed: while one is incomplete the decoder
//! remembers how many bytes the buffer must hold and returns `Ok(None)` until it does. A
//! literal over the cap is skipped unstored and the command is refused once it is over.

mod decode;
mod response;

pub use decode::{Decoder, Token, MAX_LINE, MAX_QUOTED};
pub use response::{
    bye, capability, literal_line, no, ok, response, script_line, string_line, Code, Status,
};

/// One ManageSieve command, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `AUTHENTICATE mechanism [initial-response]` (the response still base64).
    Authenticate {
        /// `PLAIN`, `LOGIN`...
        mechanism: String,
        /// The SASL initial response, base64 as sent.
        initial: Option<Vec<u8>>,
    },
    /// `STARTTLS`
    StartTls,
    /// `LOGOUT`
    Logout,
    /// `CAPABILITY`
    Capability,
    /// `HAVESPACE name size`
    HaveSpace {
        /// The script name.
        name: String,
        /// The size the client means to upload.
        size: u64,
    },
    /// `PUTSCRIPT name script`
    PutScript {
        /// The script name.
        name: String,
        /// The script text.
        script: Vec<u8>,
    },
    /// `LISTSCRIPTS`
    ListScripts,
    /// `SETACTIVE name` (`""` deactivates).
    SetActive(String),
    /// `GETSCRIPT name`
    GetScript(String),
    /// `DELETESCRIPT name`
    DeleteScript(String),
    /// `RENAMESCRIPT old new`
    RenameScript(String, String),
    /// `CHECKSCRIPT script`
    CheckScript(Vec<u8>),
    /// `NOOP [tag]`; the tag comes back as `OK (TAG ...)`.
    Noop(Option<Vec<u8>>),
    /// `UNAUTHENTICATE` (RFC 5804 2.14.1).
    Unauthenticate,
}

/// Why a command was refused; the text is sent as `NO "text"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The command line (outside literals) is longer than [`MAX_LINE`].
    #[error("Command line too long (limit {MAX_LINE} bytes)")]
    LineTooLong,
    /// A literal over the decoder's cap; its bytes were skipped.
    #[error("String of {size} bytes exceeds the limit of {limit} bytes")]
    LiteralTooLarge {
        /// The command it belonged to (upper case), when the line started with one.
        command: Option<String>,
        /// The announced size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Malformed syntax.
    #[error("{0}")]
    Syntax(&'static str),
    /// Not a ManageSieve command.
    #[error("Unknown command {0}")]
    UnknownCommand(String),
}

impl Command {
    /// The keyword, for logs and the session registry.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::StartTls => "STARTTLS",
            Self::Logout => "LOGOUT",
            Self::Capability => "CAPABILITY",
            Self::HaveSpace { .. } => "HAVESPACE",
            Self::PutScript { .. } => "PUTSCRIPT",
            Self::ListScripts => "LISTSCRIPTS",
            Self::SetActive(_) => "SETACTIVE",
            Self::GetScript(_) => "GETSCRIPT",
            Self::DeleteScript(_) => "DELETESCRIPT",
            Self::RenameScript(..) => "RENAMESCRIPT",
            Self::CheckScript(_) => "CHECKSCRIPT",
            Self::Noop(_) => "NOOP",
            Self::Unauthenticate => "UNAUTHENTICATE",
        }
    }

    /// Makes a command of a decoded line.
    pub fn from_tokens(tokens: Vec<Token>) -> Result<Self, ParseError> {
        let mut args = tokens.into_iter();
        let name = match args.next() {
            Some(Token::Atom(name)) => name.to_ascii_uppercase(),
            Some(Token::String(_)) => return Err(ParseError::Syntax("Expected a command name")),
            None => return Err(ParseError::Syntax("Empty command line")),
        };
        let args: Vec<Token> = args.collect();
        let command = match (name.as_str(), args.as_slice()) {
            ("AUTHENTICATE", [mech]) => Self::authenticate(mech, None)?,
            ("AUTHENTICATE", [mech, Token::String(initial)]) => {
                Self::authenticate(mech, Some(initial.clone()))?
            }
            ("STARTTLS", []) => Self::StartTls,
            ("LOGOUT", []) => Self::Logout,
            ("CAPABILITY", []) => Self::Capability,
            ("LISTSCRIPTS", []) => Self::ListScripts,
            ("UNAUTHENTICATE", []) => Self::Unauthenticate,
            ("NOOP", []) => Self::Noop(None),
            ("NOOP", [Token::String(tag)]) => Self::Noop(Some(tag.clone())),
            ("HAVESPACE", [name, Token::Atom(size)]) => Self::HaveSpace {
                name: text(name)?,
                size: size
                    .parse()
                    .map_err(|_| ParseError::Syntax("Invalid script size"))?,
            },
            ("PUTSCRIPT", [name, Token::String(script)]) => Self::PutScript {
                name: text(name)?,
                script: script.clone(),
            },
            ("SETACTIVE", [name]) => Self::SetActive(text(name)?),
            ("GETSCRIPT", [name]) => Self::GetScript(text(name)?),
            ("DELETESCRIPT", [name]) => Self::DeleteScript(text(name)?),
            ("RENAMESCRIPT", [old, new]) => Self::RenameScript(text(old)?, text(new)?),
            ("CHECKSCRIPT", [Token::String(script)]) => Self::CheckScript(script.clone()),
            (known, _) if COMMANDS.contains(&known) => {
                return Err(ParseError::Syntax("Wrong arguments for this command"))
            }
            _ => {
                let shown: String = name.chars().take(32).collect();
                return Err(ParseError::UnknownCommand(shown));
            }
        };
        Ok(command)
    }

    fn authenticate(mech: &Token, initial: Option<Vec<u8>>) -> Result<Self, ParseError> {
        let mechanism = match mech {
            Token::Atom(word) => word.clone(),
            Token::String(_) => text(mech)?,
        };
        Ok(Self::Authenticate { mechanism, initial })
    }
}

/// Every command name, to tell wrong arguments from an unknown command (and, for the status
/// page, which word of a relayed line is a command).
pub const COMMANDS: &[&str] = &[
    "AUTHENTICATE",
    "STARTTLS",
    "LOGOUT",
    "CAPABILITY",
    "HAVESPACE",
    "PUTSCRIPT",
    "LISTSCRIPTS",
    "SETACTIVE",
    "GETSCRIPT",
    "DELETESCRIPT",
    "RENAMESCRIPT",
    "CHECKSCRIPT",
    "NOOP",
    "UNAUTHENTICATE",
];

/// A string argument as UTF-8 text (script names, mechanisms).
fn text(token: &Token) -> Result<String, ParseError> {
    match token {
        Token::String(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| ParseError::Syntax("A name must be UTF-8 text")),
        Token::Atom(_) => Err(ParseError::Syntax("Expected a quoted string or a literal")),
    }
}

/// The client's answer in a SASL exchange: one string on its own line (`"*"` cancels).
pub fn sasl_answer(tokens: Vec<Token>) -> Result<Vec<u8>, ParseError> {
    match <[Token; 1]>::try_from(tokens) {
        Ok([Token::String(bytes)]) => Ok(bytes),
        _ => Err(ParseError::Syntax(
            "Expected a string with the SASL response",
        )),
    }
}

#[cfg(test)]
mod tests;
