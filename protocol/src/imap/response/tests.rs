//! Every response, byte for byte, as roost sent it before responses were values (the lines
//! come from a recorded session with the earlier, `format!`-built server).

use super::*;

fn bytes(response: Response<'_>) -> String {
    let mut out = Vec::new();
    response.encode(&mut out);
    String::from_utf8(out).unwrap()
}

fn ok(code: Option<Code<'_>>, text: &str) -> String {
    bytes(Response::Ok { code, text })
}

const CAPS: &str = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN AUTH=LOGIN";

#[test]
fn status_responses() {
    assert_eq!(
        ok(Some(Code::Capability(CAPS)), "roost ready."),
        format!("* OK [CAPABILITY {CAPS}] roost ready.\r\n")
    );
    assert_eq!(ok(None, "Still here"), "* OK Still here\r\n");
    assert_eq!(
        ok(Some(Code::Closed), "Previous mailbox closed."),
        "* OK [CLOSED] Previous mailbox closed.\r\n"
    );
    assert_eq!(
        ok(Some(Code::Unseen(2)), "First unseen."),
        "* OK [UNSEEN 2] First unseen.\r\n"
    );
    assert_eq!(
        ok(Some(Code::UidValidity(1_772_000_000)), "UIDs valid."),
        "* OK [UIDVALIDITY 1772000000] UIDs valid.\r\n"
    );
    assert_eq!(
        ok(Some(Code::UidNext(5)), "Predicted next UID."),
        "* OK [UIDNEXT 5] Predicted next UID.\r\n"
    );
    assert_eq!(
        ok(Some(Code::HighestModSeq(1)), "Highest."),
        "* OK [HIGHESTMODSEQ 1] Highest.\r\n"
    );
    let all = [
        "\\Draft",
        "\\Flagged",
        "\\Answered",
        "\\Seen",
        "\\Deleted",
        "$Junk",
        "\\*",
    ];
    assert_eq!(
        ok(Some(Code::PermanentFlags(&all)), "Flags permitted."),
        "* OK [PERMANENTFLAGS (\\Draft \\Flagged \\Answered \\Seen \\Deleted $Junk \\*)] Flags permitted.\r\n"
    );
    let moved = Code::CopyUid {
        uidvalidity: 7,
        source: vec![1],
        destination: vec![6],
    };
    assert_eq!(ok(Some(moved), "Moved."), "* OK [COPYUID 7 1 6] Moved.\r\n");
    assert_eq!(
        bytes(Response::Bad {
            text: "Missing or invalid tag"
        }),
        "* BAD Missing or invalid tag\r\n"
    );
}

#[test]
fn bye_responses() {
    let bye = |code, text| bytes(Response::Bye { code, text });
    assert_eq!(bye(None, "Logging out"), "* BYE Logging out\r\n");
    assert_eq!(
        bye(None, "Too many invalid IMAP commands."),
        "* BYE Too many invalid IMAP commands.\r\n"
    );
    assert_eq!(
        bye(
            Some(Code::UidValidityChanged),
            "The mailbox was rebuilt; please reselect."
        ),
        "* BYE [UIDVALIDITY] The mailbox was rebuilt; please reselect.\r\n"
    );
    assert_eq!(
        bye(
            Some(Code::ServerBug),
            "Cannot open your mailbox; the error is logged."
        ),
        "* BYE [SERVERBUG] Cannot open your mailbox; the error is logged.\r\n"
    );
}

#[test]
fn session_data_responses() {
    assert_eq!(
        bytes(Response::Capability("IMAP4rev1 IDLE")),
        "* CAPABILITY IMAP4rev1 IDLE\r\n"
    );
    assert_eq!(bytes(Response::Enabled(&[])), "* ENABLED\r\n");
    assert_eq!(
        bytes(Response::Enabled(&["CONDSTORE", "UTF8=ACCEPT"])),
        "* ENABLED CONDSTORE UTF8=ACCEPT\r\n"
    );
    assert_eq!(
        bytes(Response::Id(&[("name", "roost")])),
        "* ID (\"name\" \"roost\")\r\n"
    );
    assert_eq!(bytes(Response::Id(&[])), "* ID NIL\r\n");
    assert_eq!(
        bytes(Response::Namespace { separator: '/' }),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );
}

#[test]
fn mailbox_list_responses() {
    let name = |name| MailboxName { name, utf8: false };
    let list = |kind, attributes: &[ListAttribute<'_>], mailbox| {
        bytes(Response::List {
            kind,
            attributes,
            separator: '/',
            mailbox,
            subscribed_children: false,
        })
    };
    assert_eq!(
        list(ListKind::List, &[ListAttribute::Noselect], name("")),
        "* LIST (\\Noselect) \"/\" \"\"\r\n"
    );
    assert_eq!(
        list(
            ListKind::List,
            &[
                ListAttribute::HasNoChildren,
                ListAttribute::Subscribed,
                ListAttribute::SpecialUse("\\Archive")
            ],
            name("Archive")
        ),
        "* LIST (\\HasNoChildren \\Subscribed \\Archive) \"/\" Archive\r\n"
    );
    assert_eq!(
        bytes(Response::List {
            kind: ListKind::List,
            attributes: &[ListAttribute::HasChildren],
            separator: '/',
            mailbox: name("Foo"),
            subscribed_children: true,
        }),
        "* LIST (\\HasChildren) \"/\" Foo (CHILDINFO (\"SUBSCRIBED\"))\r\n"
    );
    assert_eq!(
        list(
            ListKind::List,
            &[ListAttribute::NonExistent, ListAttribute::HasChildren],
            name("a/b")
        ),
        "* LIST (\\NonExistent \\HasChildren) \"/\" a/b\r\n"
    );
    assert_eq!(
        list(ListKind::Lsub, &[], name("INBOX")),
        "* LSUB () \"/\" INBOX\r\n"
    );
    assert_eq!(
        list(ListKind::List, &[], name("Sent Items")),
        "* LIST () \"/\" \"Sent Items\"\r\n"
    );
    let utf8 = MailboxName {
        name: "&AOk-t&AOk-",
        utf8: true,
    };
    assert_eq!(
        list(ListKind::List, &[ListAttribute::HasNoChildren], utf8),
        "* LIST (\\HasNoChildren) \"/\" \"\u{e9}t\u{e9}\"\r\n"
    );
    assert_eq!(
        list(ListKind::List, &[], name("&AOk-t&AOk-")),
        "* LIST () \"/\" &AOk-t&AOk-\r\n"
    );
}

#[test]
fn mailbox_status_responses() {
    let name = |name| MailboxName { name, utf8: false };
    let items = [
        StatusItem::Messages(0),
        StatusItem::Unseen(0),
        StatusItem::UidNext(1),
        StatusItem::Size(0),
        StatusItem::HighestModSeq(1),
        StatusItem::Deleted(0),
        StatusItem::Recent(0),
        StatusItem::UidValidity(9),
    ];
    assert_eq!(
        bytes(Response::Status {
            mailbox: name("INBOX"),
            items: &items
        }),
        "* STATUS INBOX (MESSAGES 0 UNSEEN 0 UIDNEXT 1 SIZE 0 HIGHESTMODSEQ 1 DELETED 0 RECENT 0 UIDVALIDITY 9)\r\n"
    );
}

#[test]
fn mailbox_size_and_update_responses() {
    assert_eq!(
        bytes(Response::Flags(&["\\Draft", "\\Seen", "Custom"])),
        "* FLAGS (\\Draft \\Seen Custom)\r\n"
    );
    assert_eq!(bytes(Response::Exists(4)), "* 4 EXISTS\r\n");
    assert_eq!(bytes(Response::Recent(0)), "* 0 RECENT\r\n");
    assert_eq!(bytes(Response::Expunge(3)), "* 3 EXPUNGE\r\n");
    let vanished = |earlier, uids| bytes(Response::Vanished { earlier, uids });
    assert_eq!(vanished(false, &[3]), "* VANISHED 3\r\n");
    assert_eq!(vanished(true, &[1, 2, 4]), "* VANISHED (EARLIER) 1:2,4\r\n");
}

#[test]
fn search_sort_and_thread_responses() {
    let search = |numbers, modseq| bytes(Response::Search { numbers, modseq });
    assert_eq!(search(&[], None), "* SEARCH\r\n");
    assert_eq!(search(&[1, 2, 4], None), "* SEARCH 1 2 4\r\n");
    assert_eq!(search(&[1, 2], Some(17)), "* SEARCH 1 2 (MODSEQ 17)\r\n");
    let sort = |numbers, modseq| bytes(Response::Sort { numbers, modseq });
    assert_eq!(sort(&[1, 2, 4, 3], None), "* SORT 1 2 4 3\r\n");
    assert_eq!(sort(&[], None), "* SORT\r\n");
    assert_eq!(sort(&[3, 1], Some(7)), "* SORT 3 1 (MODSEQ 7)\r\n");
    assert_eq!(
        bytes(Response::Thread("(3)(1 (4)(2))")),
        "* THREAD (3)(1 (4)(2))\r\n"
    );
    assert_eq!(bytes(Response::Thread("")), "* THREAD\r\n");
}

#[test]
fn esearch_responses() {
    let esearch = |e| bytes(Response::Esearch(e));
    assert_eq!(
        esearch(Esearch {
            tag: "a113",
            all: Some(AllNumbers::Set(&[1, 2, 3, 4])),
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a113\") ALL 1:4\r\n"
    );
    assert_eq!(
        esearch(Esearch {
            tag: "a114",
            min: Some(1),
            max: Some(4),
            count: Some(4),
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a114\") MIN 1 MAX 4 COUNT 4\r\n"
    );
    assert_eq!(
        esearch(Esearch {
            tag: "a115",
            uid: true,
            all: Some(AllNumbers::Set(&[1, 2, 3, 4])),
            modseq: Some(9),
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a115\") UID ALL 1:4 MODSEQ 9\r\n"
    );
    assert_eq!(
        esearch(Esearch {
            tag: "a127",
            min: Some(3),
            max: Some(2),
            count: Some(4),
            all: Some(AllNumbers::Ordered(&[3, 1, 4, 2])),
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a127\") MIN 3 MAX 2 COUNT 4 ALL 3,1,4,2\r\n"
    );
    // Ascending runs in sort order are ranges; the order itself stays (RFC 5267).
    assert_eq!(
        esearch(Esearch {
            tag: "a128",
            all: Some(AllNumbers::Ordered(&[3, 4, 5, 1, 2, 9, 7, 8])),
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a128\") ALL 3:5,1:2,9,7:8\r\n"
    );
    assert_eq!(
        esearch(Esearch {
            tag: "a174",
            ..Esearch::default()
        }),
        "* ESEARCH (TAG \"a174\")\r\n"
    );
}

#[test]
fn tagged_and_continuation_lines() {
    let tagged = |tag, status, code, text| {
        let mut out = Vec::new();
        Tagged {
            tag,
            status,
            code,
            text,
        }
        .encode(&mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        tagged(
            "a1",
            Status::Ok,
            Some(Code::Capability("IMAP4rev1")),
            "Logged in"
        ),
        "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    );
    assert_eq!(
        tagged(
            "a9",
            Status::No,
            Some(Code::TryCreate),
            "Mailbox doesn't exist."
        ),
        "a9 NO [TRYCREATE] Mailbox doesn't exist.\r\n"
    );
    assert_eq!(
        tagged("*", Status::Bad, None, "Missing tag"),
        "* BAD Missing tag\r\n"
    );
    assert_eq!(
        tagged("x1", Status::Bad, None, "Authentication aborted by client."),
        "x1 BAD Authentication aborted by client.\r\n"
    );
    let mut out = Vec::new();
    push_continuation(&mut out, "idling");
    push_continuation(&mut out, "");
    assert_eq!(out, b"+ idling\r\n+ \r\n");
}

#[test]
fn number_sets_collapse_runs_in_the_order_given() {
    assert_eq!(compact_set([1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    assert_eq!(compact_set([5]), "5");
    assert_eq!(compact_set([]), "");
    assert_eq!(compact_set([4, 5, 1, 2]), "4:5,1:2");
    assert_eq!(compact_set([u32::MAX, 0]), "4294967295,0");
}
