#!/usr/bin/env python3
"""Drive roost with Python's standard-library mail clients (imaplib, poplib, smtplib, ssl).

These are third-party clients as far as roost is concerned: the integration tests use them to
prove that what roost speaks is what real clients expect. Exit status: 0 success, 3 the server
refused the login, 1 anything else. Only loopback addresses are ever contacted.
"""
import argparse
import base64
import hashlib
import imaplib
import os
import poplib
import smtplib
import ssl
import sys
import time

CTX = ssl._create_unverified_context()  # the test server's certificate is self-signed


def loopback(host):
    if not (host.startswith("127.") or host == "::1"):
        sys.exit("refusing to contact a non-loopback address")
    return host


def imap(a):
    if a.tls == "implicit":
        m = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=CTX)
    else:
        m = imaplib.IMAP4(a.host, a.port)
        if a.tls == "starttls":
            m.starttls(ssl_context=CTX)
    print("CAPS", " ".join(m.capabilities))
    try:
        if a.auth == "login":
            m.login(a.user, a.password)
        elif a.auth == "plain":
            m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (a.user, a.password)).encode())
        else:
            answers = iter([a.user.encode(), a.password.encode()])
            m.authenticate("LOGIN", lambda _: next(answers))
    except imaplib.IMAP4.error as e:
        print("REFUSED", e)
        sys.exit(3)
    print("LOGGED-IN")
    if a.append:
        typ, data = m.append("INBOX", None, None, a.append.encode().replace(b"\\n", b"\r\n"))
        print("APPEND", typ)
    if a.hold:
        time.sleep(a.hold)
    typ, data = m.status("INBOX", "(MESSAGES)")
    print("STATUS", data[0].decode())
    m.logout()


def pop3(a):
    if a.tls == "implicit":
        p = poplib.POP3_SSL(a.host, a.port, context=CTX, timeout=a.timeout)
    else:
        p = poplib.POP3(a.host, a.port, timeout=a.timeout)
        if a.tls == "starttls":
            p.stls(context=CTX)
    print("CAPA", " ".join(sorted(p.capa())))
    try:
        if a.auth == "login":
            p.user(a.user)
            p.pass_(a.password)
        else:
            blob = base64.b64encode(("\0%s\0%s" % (a.user, a.password)).encode()).decode()
            p._shortcmd("AUTH PLAIN " + blob)
    except poplib.error_proto as e:
        print("REFUSED", e)
        sys.exit(3)
    print("LOGGED-IN")
    print("STAT", *p.stat())
    if a.download:
        download(p, a.download)
    p.quit()


def download(p, directory):
    """LIST, UIDL, then RETR of every message, each written to DIRECTORY/N as a user's client
    would store it: poplib hands back the lines un-dot-stuffed and without their CRLF."""
    _, listing, _ = p.list()
    for line in listing:
        print("LIST", line.decode())
    _, uidls, _ = p.uidl()
    for line in uidls:
        print("UIDL", line.decode())
    for line in listing:
        n = int(line.split()[0])
        resp, lines, octets = p.retr(n)
        with open(os.path.join(directory, str(n)), "wb") as f:
            f.write(b"".join(l + b"\r\n" for l in lines))
        print("RETR", n, resp.decode())


def smtp(a):
    if a.tls == "implicit":
        s = smtplib.SMTP_SSL(a.host, a.port, context=CTX)
    else:
        s = smtplib.SMTP(a.host, a.port)
        if a.tls == "starttls":
            s.starttls(context=CTX)
    s.ehlo("client.test")
    print("EHLO", " ".join(sorted(s.esmtp_features)))
    s.user, s.password = a.user, a.password
    if a.auth != "none":
        try:
            mech = "PLAIN" if a.auth == "plain" else "LOGIN"
            code, text = s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
        except smtplib.SMTPException as e:
            print("REFUSED", e)
            sys.exit(3)
        print("LOGGED-IN", code)
    if a.rcpt:
        message = open(a.data, "rb").read() if a.data else b"Subject: smtplib\r\n\r\nhello\r\n"
        try:
            refused = s.sendmail(a.mail_from, a.rcpt, message)
            print("SENT", len(a.rcpt) - len(refused))
        except smtplib.SMTPRecipientsRefused as e:
            print("RCPT-REFUSED", " ".join(str(c) for c, _ in e.recipients.values()))
            sys.exit(4)
        except smtplib.SMTPSenderRefused as e:
            print("MAIL-REFUSED", e.smtp_code)
            sys.exit(4)
        except smtplib.SMTPResponseException as e:
            print("REFUSED-CODE", e.smtp_code)
            sys.exit(4)
    s.quit()


def fingerprint(a):
    pem = ssl.get_server_certificate((a.host, a.port))
    der = ssl.PEM_cert_to_DER_cert(pem)
    print(":".join("%02X" % b for b in hashlib.sha256(der).digest()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("protocol", choices=["imap", "pop3", "smtp", "fingerprint"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--auth", choices=["login", "plain", "login-mech", "none"], default="login")
    ap.add_argument("--mail-from", default="", help="smtp: send a message from this address")
    ap.add_argument("--rcpt", action="append", default=[], help="smtp: to this address")
    ap.add_argument("--data", default="", help="smtp: the message file (default: a short one)")
    ap.add_argument("--append", default="")
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--download", default="", help="pop3: LIST, UIDL, RETR all into this dir")
    ap.add_argument("--timeout", type=float, default=60, help="pop3: socket timeout, seconds")
    a = ap.parse_args()
    loopback(a.host)
    {"imap": imap, "pop3": pop3, "smtp": smtp, "fingerprint": fingerprint}[a.protocol](a)


if __name__ == "__main__":
    main()
