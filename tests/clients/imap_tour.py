#!/usr/bin/env python3
"""Drive roost's IMAP with Python's imaplib, a client nobody here wrote.

  imap_tour.py tour   --port N [--tls none|starttls|implicit] --user U --password P --folder F
      every command a client uses, each result checked; prints "BODY <uid> <sha256>" for every
      INBOX message (the exact bytes of BODY[]) and "TOUR OK" at the end.
  imap_tour.py dump   ... --folder F      "MSG <uid> <flags> <sha256>" of each message's
      BODY[] with LF line ends and without mbsync's X-TUID header
  imap_tour.py delete ... --folder F --subject S    STORE \\Deleted + EXPUNGE of that message

Exit status 0 when everything checked out, 1 otherwise (with the reason). Only loopback
addresses are contacted.
"""
import argparse
import hashlib
import imaplib
import re
import ssl
import sys
import time

CTX = ssl._create_unverified_context()  # the test server's certificate is self-signed
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


def fail(what):
    print("FAILED", what)
    sys.exit(1)


def check(cond, what):
    if not cond:
        fail(what)


def ok(result, what):
    typ, data = result
    if typ != "OK":
        fail("%s: %s %r" % (what, typ, data))
    print("OK", what)
    return data


def connect(a):
    if not (a.host.startswith("127.") or a.host == "::1"):
        fail("refusing to contact a non-loopback address")
    if a.tls == "implicit":
        m = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=CTX, timeout=60)
    else:
        m = imaplib.IMAP4(a.host, a.port, timeout=60)
        if a.tls == "starttls":
            ok(m.starttls(ssl_context=CTX), "STARTTLS")
    ok(m.login(a.user, a.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().upper().split()
    m.capabilities = tuple(caps)
    return m


def fetch_parts(data):
    """imaplib FETCH data as [(header bytes, literal bytes or None)]."""
    out = []
    for item in data:
        if isinstance(item, tuple):
            out.append((item[0], item[1]))
        elif item not in (b")", None):
            out.append((item, None))
    return out


def flags_of(header, recent=False):
    """The flags of a FETCH response, sorted; \\Recent (per session, not stored) only if asked."""
    m = re.search(rb"FLAGS \(([^)]*)\)", header)
    if not m:
        return None
    return sorted(f for f in m.group(1).decode().split() if recent or f != "\\Recent")


def uid_of(header):
    return int(re.search(rb"UID (\d+)", header).group(1))


def listed(data):
    out = {}
    for line in data:
        m = re.match(rb'\((?P<attrs>[^)]*)\) "(?P<delim>[^"]*)" (?P<name>.+)$', line)
        check(m, "LIST line %r" % line)
        out[m.group("name").decode().strip('"')] = m.group("attrs").decode().split()
        check(m.group("delim") == b"/", "delimiter /: %r" % line)
    return out


def tour(a):
    m = connect(a)
    for cap in ["IMAP4REV1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CONDSTORE",
                "ENABLE", "SPECIAL-USE", "CHILDREN", "ID", "LITERAL+"]:
        check(cap in m.capabilities, "capability %s in %r" % (cap, m.capabilities))
    data = ok(m.namespace(), "NAMESPACE")
    check(data[0] == b'(("" "/")) NIL NIL', "NAMESPACE %r" % data)
    typ, data = m._simple_command("ID", '("name" "imaplib")')
    check(typ == "OK", "ID")
    typ, data = m._untagged_response(typ, data, "ID")
    check(b'"roost"' in data[0], "ID response %r" % data)
    ok(m.enable("CONDSTORE"), "ENABLE CONDSTORE")
    ok(m.noop(), "NOOP")

    # Mailboxes.
    boxes = listed(ok(m.list(), "LIST"))
    for name, special in [("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Trash", "\\Trash"),
                          ("Junk", "\\Junk"), ("Archive", "\\Archive")]:
        check(special in boxes.get(name, []), "%s is %s: %r" % (name, special, boxes))
    check("INBOX" in boxes, "INBOX listed")
    subscribed = listed(ok(m.lsub(), "LSUB"))
    check(set(subscribed) >= {"INBOX", "Sent", "Drafts"}, "LSUB %r" % subscribed)
    f = a.folder
    ok(m.create(f), "CREATE")
    ok(m.create(f + "/Sub"), "CREATE child")
    boxes = listed(ok(m.list('""', f + "*"), "LIST pattern"))
    check(set(boxes) == {f, f + "/Sub"}, "LIST %s* %r" % (f, boxes))
    check("\\HasChildren" in boxes[f], "\\HasChildren on %s: %r" % (f, boxes))
    ok(m.rename(f + "/Sub", f + "/Renamed"), "RENAME")
    check(set(listed(ok(m.list('""', f + "/%"), "LIST %"))) == {f + "/Renamed"}, "renamed")
    ok(m.subscribe(f), "SUBSCRIBE")
    check(f in listed(ok(m.lsub('""', f), "LSUB one")), "subscribed")
    ok(m.unsubscribe(f), "UNSUBSCRIBE")
    check(not ok(m.lsub('""', f), "LSUB none")[0], "unsubscribed")
    ok(m.delete(f + "/Renamed"), "DELETE")
    typ, _ = m.delete("INBOX")
    check(typ == "NO", "DELETE INBOX refused")
    data = ok(m.status(f, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"), "STATUS")
    check(b"MESSAGES 0" in data[0] and b"UIDNEXT 1" in data[0], "STATUS %r" % data)

    # APPEND with flags and date.
    message = b"From: tour@example.com\r\nSubject: tour\r\n\r\nHello from imaplib.\r\n"
    when = imaplib.Time2Internaldate(time.mktime((2019, 2, 5, 14, 30, 0, 0, 0, -1)))
    data = ok(m.append(f, "(\\Flagged $Tour)", when, message), "APPEND")
    check(re.search(rb"\[APPENDUID \d+ 1\]", data[0]), "APPENDUID %r" % data)
    typ, data = m.append("Nowhere", None, None, message)
    check(typ == "NO" and b"TRYCREATE" in data[0], "APPEND to a missing folder %r" % data)
    data = ok(m.select(f), "SELECT")
    check(data == [b"1"], "one message in %s: %r" % (f, data))
    data = ok(m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"), "FETCH appended")
    header, body = fetch_parts(data)[0]
    check(body == message, "appended bytes %r" % body)
    # The session that selects the folder first has the appended message as \Recent.
    check(flags_of(header, recent=True) == ["$Tour", "\\Flagged", "\\Recent"], "appended flags %r" % header)
    check(("RFC822.SIZE %d" % len(message)).encode() in header, "size %r" % header)
    stamp = imaplib.Internaldate2tuple(header)
    check(stamp and stamp.tm_year == 2019, "INTERNALDATE %r" % header)
    ok(m.close(), "CLOSE")

    # INBOX: read-only EXAMINE first.
    data = ok(m.select("INBOX", readonly=True), "EXAMINE")
    count = int(data[0])
    check(count == a.expect, "INBOX has %d messages, expected %d" % (count, a.expect))
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
    check(typ == "NO", "STORE refused in EXAMINE: %s %r" % (typ, data))
    ok(m.unselect(), "UNSELECT")
    data = ok(m.select("INBOX"), "SELECT INBOX")
    ok(m.check(), "CHECK")
    typ, data = m.response("UIDVALIDITY")
    check(data and data[0], "UIDVALIDITY %r" % data)
    data = ok(m.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"),
              "FETCH 1:* metadata")
    check(len([d for d in data if d not in (b")",)]) >= count, "one response each %r" % data)
    data = ok(m.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
                    "(From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
                    "Newsgroups In-Reply-To Content-Type Reply-To)])"), "Thunderbird headers")
    check(len(fetch_parts(data)) == count, "headers for each")
    uids = []
    for header, body in fetch_parts(ok(m.uid("FETCH", "1:*", "(UID BODY.PEEK[])"), "BODY[]")):
        uids.append(uid_of(header))
        print("BODY", uid_of(header), hashlib.sha256(body).hexdigest())
    data = ok(m.fetch("1", "(BODY.PEEK[]<0.10>)"), "partial")
    check(re.search(rb"BODY\[\]<0> \{10\}", fetch_parts(data)[0][0]), "partial %r" % data)
    data = ok(m.fetch("1", "(BODY[TEXT])"), "BODY[TEXT]")
    everything = b"".join(x[0] if isinstance(x, tuple) else x for x in data)
    check(b"\\Seen" in everything, "BODY[] sets \\Seen: %r" % data)

    # STORE.
    data = ok(m.store("1", "+FLAGS", "(\\Flagged)"), "STORE +FLAGS")
    check(flags_of(data[0]) == ["\\Flagged", "\\Seen"], "+FLAGS %r" % data)
    data = ok(m.store("1", "-FLAGS", "(\\Seen)"), "STORE -FLAGS")
    check(flags_of(data[0]) == ["\\Flagged"], "-FLAGS %r" % data)
    ok(m.store("2", "FLAGS.SILENT", "(\\Answered $Tour)"), "STORE FLAGS.SILENT")
    data = ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS")
    check(flags_of(data[0]) == ["$Tour", "\\Answered"], "FLAGS %r" % data)
    data = ok(m.uid("STORE", str(uids[0]), "+FLAGS", "($Uid)"), "UID STORE")
    check(b"UID %d" % uids[0] in data[0], "UID STORE %r" % data)

    # SEARCH, with a UTF-8 literal.
    check(ok(m.search(None, "FLAGGED"), "SEARCH FLAGGED") == [b"1"], "FLAGGED")
    check(ok(m.search(None, "KEYWORD", "$Tour"), "SEARCH KEYWORD") == [b"2"], "KEYWORD")
    data = ok(m.search(None, "OR", "FROM", "alice", "SUBJECT", "nested"), "SEARCH OR")
    check(data == [b"1 2"], "OR %r" % data)
    data = ok(m.search(None, "NOT", "OR", "FLAGGED", "ANSWERED"), "SEARCH NOT")
    check(data == [" ".join(str(i) for i in range(3, count + 1)).encode()], "NOT %r" % data)
    data = ok(m.uid("SEARCH", "ALL"), "UID SEARCH")
    check(data == [" ".join(map(str, uids)).encode()], "UID SEARCH %r" % data)
    m.literal = "Köln".encode()
    check(ok(m.search("UTF-8", "BODY"), "SEARCH UTF-8") == [b"2"], "UTF-8 BODY")
    typ, data = m.search("ISO-8859-1", "BODY", "x")
    check(typ == "NO" and b"BADCHARSET" in data[0], "BADCHARSET %s %r" % (typ, data))

    # COPY, MOVE, EXPUNGE.
    data = ok(m.copy("1:2", "Archive"), "COPY")
    check(re.search(rb"\[COPYUID \d+ \S+ 1:2\]", data[0]), "COPYUID %r" % data)
    typ, data = m.copy("1", "Nowhere")
    check(typ == "NO" and b"TRYCREATE" in data[0], "COPY to a missing folder %r" % data)
    ok(m.uid("MOVE", str(uids[-1]), "Trash"), "UID MOVE")
    typ, data = m._untagged_response("OK", [None], "EXPUNGE")
    check(data == [str(count).encode()], "UID MOVE expunges the last message: %r" % data)
    ok(m.store("1", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(m.expunge(), "EXPUNGE")
    check(data == [b"1"], "EXPUNGE reports message 1: %r" % data)
    data = ok(m.select("Trash"), "SELECT Trash")
    check(data == [b"1"], "the moved message is in Trash: %r" % data)
    ok(m.store("1", "+FLAGS.SILENT", "(\\Deleted)"), "STORE in Trash")
    ok(m.uid("EXPUNGE", "1:*"), "UID EXPUNGE")
    check(ok(m.status("Trash", "(MESSAGES)"), "STATUS Trash")[0].endswith(b"(MESSAGES 0)"),
          "Trash emptied")

    # Errors leave the session usable.
    try:
        m._simple_command("FETCH", "99", "FLAGS")
        fail("FETCH 99 accepted")
    except imaplib.IMAP4.error as e:
        print("OK FETCH 99 refused:", e)
    ok(m.noop(), "NOOP after BAD")

    # IDLE: another session's APPEND wakes it.
    exists = int(ok(m.select("INBOX"), "SELECT for IDLE")[0])
    check(exists == count - 2, "INBOX after MOVE and EXPUNGE: %d" % exists)
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    check(m.readline().startswith(b"+"), "IDLE continuation")
    other = connect(a)
    ok(other.append("INBOX", None, None, b"Subject: during idle\r\n\r\nwake up\r\n"), "APPEND other")
    started = time.time()
    line = m.readline()
    check(re.match(rb"\* %d EXISTS\r\n" % (exists + 1), line), "EXISTS during IDLE: %r" % line)
    print("OK IDLE woke after %.3f s" % (time.time() - started))
    m.send(b"DONE\r\n")
    typ, data = m._command_complete("IDLE", tag)
    check(typ == "OK", "IDLE completed %r" % data)
    other.logout()
    ok(m.close(), "CLOSE")
    ok(m.delete(f), "DELETE folder")
    m.logout()
    print("TOUR OK")


def normalized(body):
    """LF line ends, and no X-TUID header (mbsync's own bookkeeping), for comparing copies."""
    body = body.replace(b"\r\n", b"\n")
    head, sep, rest = body.partition(b"\n\n")
    head = b"\n".join(l for l in head.split(b"\n") if not l.startswith(b"X-TUID: "))
    return head + sep + rest


def dump(a):
    m = connect(a)
    data = ok(m.select(a.folder, readonly=True), "EXAMINE")
    if data != [b"0"]:
        for header, body in fetch_parts(ok(m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"),
                                           "FETCH")):
            flags = flags_of(header)
            digest = hashlib.sha256(normalized(body)).hexdigest()
            print("MSG", uid_of(header), ",".join(flags) or "-", digest)
    m.logout()


def delete(a):
    m = connect(a)
    ok(m.select(a.folder), "SELECT")
    found = ok(m.search(None, "SUBJECT", '"%s"' % a.subject), "SEARCH")[0].split()
    check(len(found) == 1, "one message with subject %r: %r" % (a.subject, found))
    ok(m.store(found[0], "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    ok(m.expunge(), "EXPUNGE")
    m.logout()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["tour", "dump", "delete"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--folder", default="INBOX")
    ap.add_argument("--subject", default="")
    ap.add_argument("--expect", type=int, default=0, help="tour: messages in INBOX")
    a = ap.parse_args()
    {"tour": tour, "dump": dump, "delete": delete}[a.mode](a)


if __name__ == "__main__":
    main()
