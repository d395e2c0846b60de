//! The authenticated state (RFC 3501 6.3): where a logged-in session starts, in this process or
//! in a worker running as the mail owner, and the commands it runs with or without a selected
//! mailbox, one arm each.

use roost_protocol::imap::response::{Code, Response};

use super::blocking::blocking;
use super::command::Authenticated;
use super::context::{Cx, Step};
use super::input::Ended;
use super::selected::Selected;
use super::session::Session;
use super::state::{Account, Enabled};
use super::{changes, idle, list, live, mailboxes, quota, select};
use crate::listen::conn::Connection;
use crate::session::UserSession;

/// Runs the authenticated session until LOGOUT, disconnect, timeout or shutdown.
pub async fn run(conn: &mut Connection, user: &UserSession) {
    // Boxed: the future then holds a pointer where the compiler would otherwise reserve
    // room for the session twice (the `Result` it came in, and the binding).
    match open(user).map(Box::new) {
        Ok(mut session) => {
            session.run(conn).await;
        }
        Err(goodbye) => {
            let _ = conn.write(&goodbye).await;
        }
    }
}

/// The logged-in session of `user`, or the `* BYE` that says why there is none. Not async, so
/// the session's future holds only the session, not also what opening it took.
fn open(user: &UserSession) -> Result<Session<'_>, Vec<u8>> {
    let name = &user.user.name;
    let store = user.open_store().map_err(|e| {
        tracing::error!("imap({name}): cannot open mail store: {e}");
        let mut line = Vec::new();
        Response::Bye {
            code: Some(Code::ServerBug),
            text: "Cannot open your mailbox; the error is logged.",
        }
        .encode(&mut line);
        line
    })?;
    if let Err(e) = mailboxes::ensure_special_folders(&store) {
        tracing::warn!("imap({name}): cannot create the special-use folders: {e}");
    }
    let account = Account {
        user,
        store,
        enabled: Enabled::default(),
    };
    Ok(Session::authenticated(account))
}

/// Runs a command of the authenticated state; `selected` is the selected mailbox, if any.
pub async fn command(
    account: &mut Account<'_>,
    selected: Option<&mut Selected>,
    command: Authenticated,
    cx: &mut Cx<'_>,
) -> Step {
    match command {
        Authenticated::Check => match (cx.extras.cancel_update.take(), selected) {
            (None, _) => Step::Reply(cx.ok("Check completed.")),
            (Some(tags), Some(selected)) => {
                live::cancel(selected, &tags);
                Step::Reply(cx.ok("No further updates."))
            }
            (Some(_), None) => Step::Reply(cx.bad("CANCELUPDATE needs a selected mailbox.")),
        },
        Authenticated::Namespace => mailboxes::namespace(cx),
        Authenticated::Enable(caps) => select::enable(account, selected, &caps, cx),
        Authenticated::Compress => compress(account.name(), cx).await,
        Authenticated::Select(args) => blocking(|| select::select(account, selected, &args, cx)),
        Authenticated::Create(mailbox) => blocking(|| mailboxes::create(account, &mailbox, cx)),
        Authenticated::Delete(mailbox) => {
            blocking(|| mailboxes::delete(account, selected, &mailbox, cx))
        }
        Authenticated::Rename { from, to } => {
            blocking(|| mailboxes::rename(account, &from, &to, cx))
        }
        Authenticated::Subscribe { mailbox, subscribe } => {
            blocking(|| mailboxes::subscribe(account, &mailbox, subscribe, cx))
        }
        Authenticated::List(args) => blocking(|| list::list(account, &args, cx)),
        Authenticated::Status { mailbox, items } => {
            blocking(|| mailboxes::status(account, &mailbox, &items, cx))
        }
        Authenticated::Append(args) => blocking(|| changes::append(account, &args, cx)),
        Authenticated::GetQuotaRoot(mailbox) => {
            blocking(|| quota::get_quota_root(account, &mailbox, cx))
        }
        Authenticated::GetQuota(root) => blocking(|| quota::get_quota(account, &root, cx)),
        Authenticated::SetQuota => quota::set_quota(cx),
        Authenticated::Idle => idle::start(account.name(), selected.as_deref(), cx),
    }
}

/// COMPRESS DEFLATE (RFC 4978): the OK goes out uncompressed; everything after it is deflated.
async fn compress(user: &str, cx: &mut Cx<'_>) -> Step {
    if cx.conn.is_deflating() {
        let code = Some(Code::CompressionActive);
        return Step::Reply(cx.no(code, "DEFLATE is already active."));
    }
    let mut out = std::mem::take(&mut cx.out);
    out.extend(cx.ok("DEFLATE active."));
    if cx.conn.write(&out).await.is_err() {
        return Step::Ended(Ended::Closed);
    }
    if let Err(e) = cx.conn.start_deflate() {
        tracing::warn!("imap({user}): COMPRESS failed: {e}");
        return Step::Ended(Ended::Closed);
    }
    Step::Sent
}
