#!/usr/bin/env python3
"""A second, independent IMAP stress load: Python's imaplib (a client nobody here wrote) in one
process per client, each running whole sessions the way Dovecot's imaptest does by default:
log in, select INBOX, a random run of FETCHes (headers of a range, one whole message), flag
changes, SEARCH, STATUS and an APPEND whose message the client then deletes and expunges by
UID (so the folder keeps its size), log out, again, until the time is up.

    imap_stress.py --port P --user U --password W [--clients 20] [--seconds 20] [--seed 1]

Prints one JSON line: commands completed, NO/BAD answers, connection failures, seconds, and
commands per second. Only loopback is allowed as the target. Every loop is bounded by time.
"""

import argparse
import imaplib
import json
import multiprocessing
import random
import re
import time

MESSAGE = (
    "From: stress@example.com\r\nTo: user@example.com\r\nSubject: stress {n}\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <stress.{n}@example.com>\r\n\r\n"
    + "This is a line of the body of a stress-test message.\r\n" * 20
)
APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


class Tally:
    """Commands a client completed and answers that were NO or BAD."""

    def __init__(self):
        self.ok = 0
        self.bad = 0

    def count(self, typ):
        if typ == "OK":
            self.ok += 1
        else:
            self.bad += 1


def fetch_headers(m, rnd, exists, tally):
    first = rnd.randint(1, max(1, exists - 49))
    last = min(exists, first + rnd.randint(9, 49))
    typ, _ = m.fetch(f"{first}:{last}",
                     "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
                     "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])")
    tally.count(typ)


def fetch_message(m, rnd, exists, tally):
    typ, _ = m.fetch(str(rnd.randint(1, exists)), "(UID BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
    tally.count(typ)


def store_flags(m, rnd, exists, tally):
    change = rnd.choice(["+FLAGS", "-FLAGS"])
    flag = rnd.choice(["(\\Seen)", "(\\Flagged)", "(\\Answered)", "($Label1)"])
    typ, _ = m.store(str(rnd.randint(1, exists)), change, flag)
    tally.count(typ)


def search(m, rnd, exists, tally):
    key = rnd.choice(["UNSEEN", "FLAGGED", f'SUBJECT "message {rnd.randint(0, exists)}"'])
    typ, _ = m.search(None, key)
    tally.count(typ)


def status(m, rnd, exists, tally):
    typ, _ = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
    tally.count(typ)


def append_and_expunge(m, rnd, exists, tally):
    typ, data = m.append("INBOX", None, None, MESSAGE.format(n=rnd.random()).encode())
    tally.count(typ)
    found = APPENDUID.search(data[0] or b"") if typ == "OK" and data else None
    if not found:
        return
    uid = found.group(1).decode()
    typ, _ = m.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
    tally.count(typ)
    typ, _ = m.uid("EXPUNGE", uid)
    tally.count(typ)


# imaptest's default weights, roughly: fetches most, then flag changes, appends and the rest.
OPERATIONS = [
    (fetch_headers, 30),
    (fetch_message, 30),
    (store_flags, 20),
    (search, 8),
    (status, 6),
    (append_and_expunge, 6),
]


def session(args, rnd, tally, deadline):
    """One session: login, SELECT, 5 to 20 operations, LOGOUT (the last ones cut by time)."""
    m = imaplib.IMAP4(args.host, args.port, timeout=30)
    try:
        typ, _ = m.login(args.user, args.password)
        tally.count(typ)
        typ, data = m.select("INBOX")
        tally.count(typ)
        exists = int(data[0]) if typ == "OK" else 0
        if exists == 0:
            return
        ops, weights = zip(*OPERATIONS)
        for _ in range(rnd.randint(5, 20)):
            if time.monotonic() >= deadline:
                break
            op = rnd.choices(ops, weights)[0]
            try:
                op(m, rnd, exists, tally)
            except imaplib.IMAP4.error:
                tally.bad += 1
        typ, _ = m.logout()
        tally.count("OK" if typ == "BYE" else typ)  # imaplib answers LOGOUT with the BYE
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def client(args, n, queue):
    rnd = random.Random(args.seed * 1000 + n)
    tally = Tally()
    failures = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            session(args, rnd, tally, deadline)
        except (OSError, imaplib.IMAP4.error, ValueError) as e:
            failures += 1
            if failures > 100:
                break
            time.sleep(0.05)
    queue.put((tally.ok, tally.bad, failures))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if not (args.host.startswith("127.") or args.host == "::1"):
        raise SystemExit("only loopback targets are allowed")
    args.clients = max(1, min(args.clients, 500))
    args.seconds = max(1.0, min(args.seconds, 300.0))
    queue = multiprocessing.Queue()
    started = time.monotonic()
    procs = [multiprocessing.Process(target=client, args=(args, n, queue))
             for n in range(args.clients)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=args.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    elapsed = time.monotonic() - started
    ok = sum(r[0] for r in results)
    print(json.dumps({
        "commands": ok,
        "no_bad": sum(r[1] for r in results),
        "failures": sum(r[2] for r in results),
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "cmds_per_s": round(ok / elapsed, 1),
    }))


if __name__ == "__main__":
    main()
