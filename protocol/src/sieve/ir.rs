//! The compiled form of a script: typed commands and tests, every argument checked. Strings
//! stay as written; when the script requires `variables` they are expanded at run time.

use super::Location;

/// A compiled script body and the facts the interpreter needs about it.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    /// The top-level commands.
    pub(crate) commands: Vec<Cmd>,
    /// `require "variables"`: strings are expanded and match groups recorded.
    pub(crate) variables: bool,
}

/// A command.
#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    /// `if`/`elsif` branches in order, then `else`.
    If(Vec<(Test, Vec<Cmd>)>, Option<Vec<Cmd>>),
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    Stop,
    Return,
    FileInto {
        mailbox: String,
        copy: bool,
        create: bool,
        flags: Option<Vec<String>>,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        extended: bool,
    },
    /// setflag/addflag/removeflag, on a named variable or the internal one.
    Flag {
        op: FlagOp,
        var: Option<String>,
        flags: Vec<String>,
    },
    Set {
        name: String,
        value: String,
        mods: Vec<Modifier>,
    },
    Include {
        location: Location,
        name: String,
        once: bool,
        optional: bool,
    },
    Global(Vec<String>),
    Vacation(Box<VacationCmd>),
}

/// What setflag/addflag/removeflag do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

/// A `set` modifier (RFC 5229 §4.1), in the order they must be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    QuoteRegex,
    Length,
}

impl Modifier {
    /// RFC 5229's precedence: higher applies first; two of one precedence are an error.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard => 20,
            Modifier::QuoteRegex => 15,
            Modifier::Length => 10,
        }
    }
}

/// The arguments of `vacation`.
#[derive(Debug, Clone)]
pub(crate) struct VacationCmd {
    /// The period in seconds, already clamped.
    pub(crate) period: u64,
    pub(crate) subject: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) addresses: Vec<String>,
    pub(crate) mime: bool,
    pub(crate) handle: Option<String>,
    pub(crate) reason: String,
}

/// A comparator (RFC 4790) by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

/// A relational operator (RFC 5231).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A match type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Is,
    Contains,
    Matches,
    Regex,
    Value(Rel),
    Count(Rel),
}

/// A comparator and a match type together: how values are compared with keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matcher {
    pub(crate) comparator: Comparator,
    pub(crate) kind: MatchKind,
}

/// Which part of an address a test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// `:index N [:last]` (RFC 5260 §6): which occurrence of a header counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Index {
    /// 1-based.
    pub(crate) n: u64,
    pub(crate) last: bool,
}

/// The time zone a date test reports in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneOpt {
    /// The server's zone (`Input.zone_minutes`).
    Local,
    /// `:zone "+hhmm"`.
    Fixed(String),
    /// `:originalzone`: the zone written in the header.
    Original,
}

/// What part of the body the `body` test sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyTransform {
    Raw,
    Text,
    Content(Vec<String>),
}

/// A test.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Address {
        m: Matcher,
        part: AddrPart,
        headers: Vec<String>,
        keys: Vec<String>,
        index: Option<Index>,
    },
    Envelope {
        m: Matcher,
        part: AddrPart,
        fields: Vec<String>,
        keys: Vec<String>,
    },
    Header {
        m: Matcher,
        headers: Vec<String>,
        keys: Vec<String>,
        index: Option<Index>,
    },
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Body {
        m: Matcher,
        transform: BodyTransform,
        keys: Vec<String>,
    },
    Date {
        m: Matcher,
        zone: ZoneOpt,
        header: String,
        part: String,
        keys: Vec<String>,
        index: Option<Index>,
    },
    CurrentDate {
        m: Matcher,
        zone: ZoneOpt,
        part: String,
        keys: Vec<String>,
    },
    Str {
        m: Matcher,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    HasFlag {
        m: Matcher,
        vars: Vec<String>,
        keys: Vec<String>,
    },
}
