//! The selected state's commands (RFC 3501 6.4 and extensions), one arm each: what a client
//! does inside the mailbox it selected.

use roost_storage::{Flags, Uid};

use super::blocking::blocking;
use super::changes::{self, expunge_uids};
use super::command::InMailbox;
use super::context::{Cx, Step};
use super::selected::Selected;
use super::state::Account;
use super::{fetch, search, sort, thread};

/// Runs a command of the selected state.
pub async fn command(
    account: &mut Account<'_>,
    selected: &mut Selected,
    command: InMailbox,
    cx: &mut Cx<'_>,
) -> Step {
    match command {
        InMailbox::Close { expunge } => blocking(|| close(account, selected, expunge, cx)),
        InMailbox::Fetch(args) => fetch::fetch(account, selected, &args, cx).await,
        InMailbox::Store(args) => blocking(|| changes::store(account, selected, &args, cx)),
        InMailbox::Search(args) => blocking(|| search::search(account, selected, &args, cx)),
        InMailbox::Sort(args) => blocking(|| sort::sort_command(account, selected, &args, cx)),
        InMailbox::Thread(args) => {
            blocking(|| thread::thread_command(account, selected, &args, cx))
        }
        InMailbox::Copy(args) => blocking(|| changes::copy_or_move(account, selected, &args, cx)),
        InMailbox::Expunge(only) => {
            blocking(|| changes::expunge(account, selected, only.as_ref(), cx))
        }
    }
}

/// CLOSE (which first expunges `\Deleted` messages, silently, RFC 3501 6.4.2) and UNSELECT
/// (RFC 3691): back to the authenticated state either way.
fn close(account: &Account<'_>, selected: &mut Selected, expunge: bool, cx: &Cx<'_>) -> Step {
    if expunge && !selected.read_only {
        let doomed: Vec<Uid> = (0..selected.len())
            .filter(|i| selected.view.flags(*i).contains(Flags::DELETED))
            .map(|i| selected.uid(i))
            .collect();
        if let Err(e) = expunge_uids(selected, &doomed, &mut Vec::new()) {
            return Step::Leave(cx.failure(account.name(), &e));
        }
    }
    Step::Leave(cx.ok(match expunge {
        true => "Close completed.",
        false => "Unselect completed.",
    }))
}
