//! Entering the selected state: SELECT and EXAMINE (RFC 3501 6.3.1–2, with RFC 7162's CONDSTORE
//! and QRESYNC parameters), and ENABLE (RFC 5161), which changes how the selected state talks.

use roost_protocol::imap::imap_types::command::SelectParameter;
use roost_protocol::imap::imap_types::extensions::enable::CapabilityEnable;
use roost_protocol::imap::imap_types::sequence::SequenceSet;
use roost_protocol::imap::response::{Code, Response};

use super::command::Select;
use super::context::{Cx, Step};
use super::mailboxes::mailbox_name;
use super::reply::Tagged;
use super::selected::{SelectStyle, Selected};
use super::state::Account;

/// What QRESYNC asked SELECT to report: the client's UIDVALIDITY, mod-sequence and known UIDs.
type Resync<'a> = (u32, u64, &'a Option<SequenceSet>);

/// SELECT / EXAMINE: any selected mailbox is left first, even when the new one can't be opened.
pub fn select(
    account: &mut Account<'_>,
    previous: Option<&mut Selected>,
    args: &Select,
    cx: &mut Cx<'_>,
) -> Step {
    if previous.is_some() && (account.enabled.qresync || account.enabled.rev2) {
        cx.send(Response::Ok {
            code: Some(Code::Closed),
            text: "Previous mailbox closed.",
        });
    }
    match open(account, args, cx) {
        Ok(selected) => {
            let verb = if args.read_only { "Examine" } else { "Select" };
            let tagged = cx.ok_code(selected.access_code(), &format!("{verb} completed."));
            Step::Enter(tagged, selected)
        }
        Err(refused) => Step::Leave(refused),
    }
}

/// Opens the mailbox and writes the SELECT responses (and QRESYNC's catch-up).
fn open(
    account: &mut Account<'_>,
    args: &Select,
    cx: &mut Cx<'_>,
) -> Result<Box<Selected>, Tagged> {
    let resync = parameters(account, &args.parameters, cx)?;
    let enabled = account.enabled;
    let name =
        mailbox_name(&args.mailbox, enabled.utf8).map_err(|why| cx.no(Some(Code::Cannot), why))?;
    let style = SelectStyle {
        rev2: enabled.rev2,
        utf8: enabled.utf8,
    };
    let mut untagged = Vec::new();
    let mut selected = Selected::open(&account.store, &name, args.read_only, style, &mut untagged)
        .map_err(|e| cx.failure(account.name(), &e))?;
    cx.out.extend(untagged);
    selected.qresync = enabled.qresync;
    if let Some((validity, modseq, known)) = resync {
        if validity == selected.uidvalidity() {
            selected.resync(modseq, known.as_ref(), &mut cx.out);
        }
    }
    Ok(Box::new(selected))
}

/// CONDSTORE turns CONDSTORE on; QRESYNC (only once enabled) asks for a catch-up.
fn parameters<'p>(
    account: &mut Account<'_>,
    parameters: &'p [SelectParameter],
    cx: &Cx<'_>,
) -> Result<Option<Resync<'p>>, Tagged> {
    let mut resync = None;
    for p in parameters {
        match p {
            SelectParameter::CondStore => account.enabled.condstore = true,
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => {
                if !account.enabled.qresync {
                    return Err(cx.bad("QRESYNC must be enabled first (ENABLE QRESYNC)."));
                }
                resync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids));
            }
        }
    }
    Ok(resync)
}

/// ENABLE: turns extensions on and says which.
pub fn enable(
    account: &mut Account<'_>,
    mut selected: Option<&mut Selected>,
    capabilities: &[CapabilityEnable<'_>],
    cx: &mut Cx<'_>,
) -> Step {
    let enabled = &mut account.enabled;
    let mut names = Vec::new();
    for cap in capabilities {
        if matches!(cap, CapabilityEnable::CondStore) {
            enabled.condstore = true;
            names.push("CONDSTORE");
        } else if matches!(cap, CapabilityEnable::Utf8(_)) {
            enabled.utf8 = true;
            names.push("UTF8=ACCEPT");
        } else if cap.to_string().eq_ignore_ascii_case("IMAP4rev2") {
            enabled.rev2 = true;
            enabled.utf8 = true;
            names.push("IMAP4rev2");
        } else if cap.to_string().eq_ignore_ascii_case("QRESYNC") {
            // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
            enabled.condstore = true;
            enabled.qresync = true;
            if let Some(s) = selected.as_deref_mut() {
                s.qresync = true;
            }
            names.push("QRESYNC");
        }
    }
    cx.send(Response::Enabled(&names));
    Step::Reply(cx.ok("Enabled."))
}
