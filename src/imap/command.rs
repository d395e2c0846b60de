//! Client commands sorted by the states that admit them (RFC 3501 6.1–6.4), their arguments
//! taken out of `imap-types`' `CommandBody` once. The session's gate decides on the family,
//! so no handler ever matches on a command it cannot be given.

use roost_protocol::imap::imap_types::command::{
    CommandBody, FetchModifier, SelectParameter, StoreModifier,
};
use roost_protocol::imap::imap_types::core::Charset;
use roost_protocol::imap::imap_types::datetime::DateTime;
use roost_protocol::imap::imap_types::extensions::binary::LiteralOrLiteral8;
use roost_protocol::imap::imap_types::extensions::enable::CapabilityEnable;
use roost_protocol::imap::imap_types::extensions::sort::SortCriterion;
use roost_protocol::imap::imap_types::extensions::thread::ThreadingAlgorithm;
use roost_protocol::imap::imap_types::fetch::MacroOrMessageDataItemNames;
use roost_protocol::imap::imap_types::flag::{Flag, StoreResponse, StoreType};
use roost_protocol::imap::imap_types::mailbox::{ListMailbox, Mailbox};
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::imap_types::sequence::SequenceSet;
use roost_protocol::imap::imap_types::status::StatusDataItemName;
use roost_protocol::sasl::Credentials;

/// A command, by the states that admit it.
pub enum Request {
    /// Valid in every state (RFC 3501 6.1).
    Any(AnyState),
    /// Valid only before login (RFC 3501 6.2).
    NotAuthenticated(PreLogin),
    /// Valid once logged in, whether or not a mailbox is selected (RFC 3501 6.3).
    Authenticated(Authenticated),
    /// Valid only with a mailbox selected (RFC 3501 6.4).
    Selected(InMailbox),
    /// A command roost does not implement (QUOTA, METADATA).
    Unsupported,
}

/// CAPABILITY, NOOP, LOGOUT and ID.
pub enum AnyState {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// ID (RFC 2971); what the client says about itself is not used.
    Id,
}

/// The commands that log in or protect the login.
pub enum PreLogin {
    /// STARTTLS.
    StartTls,
    /// LOGIN with the credentials as sent.
    Login(Credentials),
    /// AUTHENTICATE (RFC 4959's initial response included).
    Authenticate {
        /// The SASL mechanism's name.
        mechanism: String,
        /// The decoded initial response.
        initial: Option<Vec<u8>>,
    },
}

/// The commands of the authenticated state (RFC 3501 6.3 and extensions).
pub enum Authenticated {
    /// CHECK (allowed without a selected mailbox, as before).
    Check,
    /// NAMESPACE (RFC 2342).
    Namespace,
    /// ENABLE (RFC 5161).
    Enable(Vec<CapabilityEnable<'static>>),
    /// COMPRESS DEFLATE (RFC 4978).
    Compress,
    /// SELECT or EXAMINE.
    Select(Select),
    /// CREATE.
    Create(Mailbox<'static>),
    /// DELETE.
    Delete(Mailbox<'static>),
    /// RENAME.
    Rename {
        /// The existing name.
        from: Mailbox<'static>,
        /// The new name.
        to: Mailbox<'static>,
    },
    /// SUBSCRIBE or UNSUBSCRIBE.
    Subscribe {
        /// The mailbox.
        mailbox: Mailbox<'static>,
        /// SUBSCRIBE (else UNSUBSCRIBE).
        subscribe: bool,
    },
    /// LIST or LSUB.
    List(List),
    /// STATUS.
    Status {
        /// The mailbox.
        mailbox: Mailbox<'static>,
        /// The items asked for.
        items: Vec<StatusDataItemName>,
    },
    /// APPEND.
    Append(Append),
    /// IDLE (RFC 2177).
    Idle,
    /// GETQUOTAROOT (RFC 9208).
    GetQuotaRoot(Mailbox<'static>),
    /// GETQUOTA (RFC 9208), with the root named.
    GetQuota(String),
    /// SETQUOTA (RFC 9208), refused.
    SetQuota,
}

/// SELECT / EXAMINE arguments.
pub struct Select {
    /// The mailbox.
    pub mailbox: Mailbox<'static>,
    /// CONDSTORE, QRESYNC (RFC 7162).
    pub parameters: Vec<SelectParameter>,
    /// EXAMINE.
    pub read_only: bool,
}

/// LIST / LSUB arguments (the LIST-EXTENDED options travel in the decoder's `Extras`).
pub struct List {
    /// The reference name.
    pub reference: Mailbox<'static>,
    /// The mailbox pattern.
    pub pattern: ListMailbox<'static>,
    /// LSUB.
    pub lsub: bool,
}

/// APPEND arguments.
pub struct Append {
    /// The target mailbox.
    pub mailbox: Mailbox<'static>,
    /// Flags to set.
    pub flags: Vec<Flag<'static>>,
    /// The internal date to give it.
    pub date: Option<DateTime>,
    /// The message.
    pub message: LiteralOrLiteral8<'static>,
}

/// The commands of the selected state (RFC 3501 6.4 and extensions).
pub enum InMailbox {
    /// CLOSE or UNSELECT (RFC 3691).
    Close {
        /// CLOSE: expunge `\Deleted` messages silently first.
        expunge: bool,
    },
    /// FETCH / UID FETCH.
    Fetch(Fetch),
    /// STORE / UID STORE.
    Store(Store),
    /// SEARCH / UID SEARCH.
    Search(Search),
    /// SORT / UID SORT (RFC 5256).
    Sort(Sort),
    /// THREAD / UID THREAD (RFC 5256).
    Thread(Thread),
    /// COPY / MOVE and their UID forms.
    Copy(Copy),
    /// EXPUNGE, or UID EXPUNGE of a set (RFC 4315).
    Expunge(Option<SequenceSet>),
}

/// FETCH arguments.
pub struct Fetch {
    /// Which messages.
    pub set: SequenceSet,
    /// What about them.
    pub items: MacroOrMessageDataItemNames<'static>,
    /// UID FETCH.
    pub uid: bool,
    /// CHANGEDSINCE, VANISHED.
    pub modifiers: Vec<FetchModifier>,
}

/// STORE arguments.
pub struct Store {
    /// Which messages.
    pub set: SequenceSet,
    /// FLAGS, +FLAGS or -FLAGS.
    pub kind: StoreType,
    /// `.SILENT` or not.
    pub response: StoreResponse,
    /// The flags.
    pub flags: Vec<Flag<'static>>,
    /// UID STORE.
    pub uid: bool,
    /// UNCHANGEDSINCE.
    pub modifiers: Vec<StoreModifier>,
}

/// SEARCH arguments.
pub struct Search {
    /// CHARSET.
    pub charset: Option<Charset<'static>>,
    /// The keys, all of which must match.
    pub criteria: Vec<SearchKey<'static>>,
    /// UID SEARCH.
    pub uid: bool,
}

/// SORT arguments.
pub struct Sort {
    /// The sort keys, most significant first.
    pub criteria: Vec<SortCriterion>,
    /// The search charset.
    pub charset: Charset<'static>,
    /// Which messages.
    pub keys: Vec<SearchKey<'static>>,
    /// UID SORT.
    pub uid: bool,
}

/// THREAD arguments.
pub struct Thread {
    /// ORDEREDSUBJECT or REFERENCES.
    pub algorithm: ThreadingAlgorithm<'static>,
    /// The search charset.
    pub charset: Charset<'static>,
    /// Which messages.
    pub keys: Vec<SearchKey<'static>>,
    /// UID THREAD.
    pub uid: bool,
}

/// COPY / MOVE arguments.
pub struct Copy {
    /// Which messages.
    pub set: SequenceSet,
    /// Where to.
    pub mailbox: Mailbox<'static>,
    /// UID COPY / UID MOVE.
    pub uid: bool,
    /// MOVE (RFC 6851).
    pub moving: bool,
}

impl Request {
    /// Whether the session reports what changed in the selected mailbox after this command.
    /// FETCH, STORE, SEARCH, SORT and THREAD by sequence number must not report expunges
    /// (RFC 3501 7.4.1); IDLE reported them while it ran.
    pub fn reports_changes(&self) -> bool {
        match self {
            Self::Selected(InMailbox::Fetch(Fetch { uid, .. }))
            | Self::Selected(InMailbox::Store(Store { uid, .. }))
            | Self::Selected(InMailbox::Search(Search { uid, .. }))
            | Self::Selected(InMailbox::Sort(Sort { uid, .. }))
            | Self::Selected(InMailbox::Thread(Thread { uid, .. })) => *uid,
            Self::Authenticated(Authenticated::Idle) => false,
            _ => true,
        }
    }
}

impl From<CommandBody<'static>> for Request {
    fn from(body: CommandBody<'static>) -> Self {
        match body {
            CommandBody::Capability => Self::Any(AnyState::Capability),
            CommandBody::Noop => Self::Any(AnyState::Noop),
            CommandBody::Logout => Self::Any(AnyState::Logout),
            CommandBody::Id { .. } => Self::Any(AnyState::Id),
            CommandBody::StartTLS => Self::NotAuthenticated(PreLogin::StartTls),
            CommandBody::Login { username, password } => {
                Self::NotAuthenticated(PreLogin::Login(Credentials {
                    username: String::from_utf8_lossy(username.as_ref()).into_owned(),
                    password: String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
                }))
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => Self::NotAuthenticated(PreLogin::Authenticate {
                mechanism: mechanism.as_ref().to_string(),
                initial: initial_response.map(|r| r.declassify().to_vec()),
            }),
            body => authenticated(body),
        }
    }
}

/// The commands for a logged-in session.
fn authenticated(body: CommandBody<'static>) -> Request {
    let command = match body {
        CommandBody::Check => Authenticated::Check,
        CommandBody::Namespace => Authenticated::Namespace,
        CommandBody::Enable { capabilities } => {
            Authenticated::Enable(capabilities.as_ref().to_vec())
        }
        CommandBody::Compress { .. } => Authenticated::Compress,
        CommandBody::Select {
            mailbox,
            parameters,
        } => Authenticated::Select(Select {
            mailbox,
            parameters,
            read_only: false,
        }),
        CommandBody::Examine {
            mailbox,
            parameters,
        } => Authenticated::Select(Select {
            mailbox,
            parameters,
            read_only: true,
        }),
        CommandBody::Create { mailbox } => Authenticated::Create(mailbox),
        CommandBody::Delete { mailbox } => Authenticated::Delete(mailbox),
        CommandBody::Rename { from, to } => Authenticated::Rename { from, to },
        CommandBody::Subscribe { mailbox } => Authenticated::Subscribe {
            mailbox,
            subscribe: true,
        },
        CommandBody::Unsubscribe { mailbox } => Authenticated::Subscribe {
            mailbox,
            subscribe: false,
        },
        body => return listing(body),
    };
    Request::Authenticated(command)
}

/// LIST, LSUB, STATUS, APPEND and IDLE.
fn listing(body: CommandBody<'static>) -> Request {
    let command = match body {
        CommandBody::List {
            reference,
            mailbox_wildcard,
        } => Authenticated::List(List {
            reference,
            pattern: mailbox_wildcard,
            lsub: false,
        }),
        CommandBody::Lsub {
            reference,
            mailbox_wildcard,
        } => Authenticated::List(List {
            reference,
            pattern: mailbox_wildcard,
            lsub: true,
        }),
        CommandBody::Status {
            mailbox,
            item_names,
        } => Authenticated::Status {
            mailbox,
            items: item_names.into_owned(),
        },
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        } => Authenticated::Append(Append {
            mailbox,
            flags,
            date,
            message,
        }),
        CommandBody::Idle => Authenticated::Idle,
        CommandBody::GetQuotaRoot { mailbox } => Authenticated::GetQuotaRoot(mailbox),
        CommandBody::GetQuota { root } => {
            Authenticated::GetQuota(String::from_utf8_lossy(root.as_ref()).into_owned())
        }
        CommandBody::SetQuota { .. } => Authenticated::SetQuota,
        body => return in_mailbox(body),
    };
    Request::Authenticated(command)
}

/// The commands for a selected mailbox.
fn in_mailbox(body: CommandBody<'static>) -> Request {
    let command = match body {
        CommandBody::Close => InMailbox::Close { expunge: true },
        CommandBody::Unselect => InMailbox::Close { expunge: false },
        CommandBody::Expunge => InMailbox::Expunge(None),
        CommandBody::ExpungeUid { sequence_set } => InMailbox::Expunge(Some(sequence_set)),
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } => InMailbox::Fetch(Fetch {
            set: sequence_set,
            items: macro_or_item_names,
            uid,
            modifiers,
        }),
        CommandBody::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => InMailbox::Store(Store {
            set: sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        }),
        body => return searching(body),
    };
    Request::Selected(command)
}

/// SEARCH, SORT, THREAD, COPY and MOVE; everything left is unsupported.
fn searching(body: CommandBody<'static>) -> Request {
    let command = match body {
        CommandBody::Search {
            charset,
            criteria,
            uid,
        } => InMailbox::Search(Search {
            charset,
            criteria: criteria.into_inner(),
            uid,
        }),
        CommandBody::Sort {
            sort_criteria,
            charset,
            search_criteria,
            uid,
        } => InMailbox::Sort(Sort {
            criteria: sort_criteria.into_inner(),
            charset,
            keys: search_criteria.into_inner(),
            uid,
        }),
        CommandBody::Thread {
            algorithm,
            charset,
            search_criteria,
            uid,
        } => InMailbox::Thread(Thread {
            algorithm,
            charset,
            keys: search_criteria.into_inner(),
            uid,
        }),
        CommandBody::Copy {
            sequence_set,
            mailbox,
            uid,
        } => InMailbox::Copy(Copy {
            set: sequence_set,
            mailbox,
            uid,
            moving: false,
        }),
        CommandBody::Move {
            sequence_set,
            mailbox,
            uid,
        } => InMailbox::Copy(Copy {
            set: sequence_set,
            mailbox,
            uid,
            moving: true,
        }),
        _ => return Request::Unsupported,
    };
    Request::Selected(command)
}
