#!/usr/bin/env bash
# Remakes docs/status-page.png: roost started as root with every protocol on its real port, a
# few mail clients from documentation addresses (RFC 5737), and headless chromium taking the
# picture. All of it runs in private network, UTS and mount namespaces, so nothing listens on
# the host, the host name is mail.example.com only in there, and /srv is a throwaway tmpfs.
#
# Needs root, util-linux (unshare), iproute2, python3, chromium, and a release build:
#   cargo build --release && sudo docs/status-screenshot.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export ROOST="${ROOST:-$repo/target/release/roost}" SHOT="$repo/docs/status-page.png"
[ -x "$ROOST" ] || { echo "build first: cargo build --release" >&2; exit 1; }

exec unshare --net --uts --mount --propagation private bash -euo pipefail -c '
hostname mail.example.com
ip link set lo up
for a in 192.0.2.1 192.0.2.10 198.51.100.23 203.0.113.5 203.0.113.66 198.51.100.99; do
  ip addr add "$a/32" dev lo
done
mount -t tmpfs tmpfs /srv
mkdir -p /srv/roost /srv/mail && chown nobody /srv/mail
for u in alice bob carol; do echo "$u:$("$ROOST" pw -s SHA512-CRYPT -p "demo-$u")::::::"; done > /srv/roost/users
cat > /srv/roost/roost.toml <<EOF
protocols = ["imap", "imaps", "pop3", "pop3s", "submission", "submissions", "smtp", "lmtp"]
[mail]
location = "maildir:/srv/mail/%u"
user = "nobody"
[auth]
passdb = ["passwd-file:users"]
failure_delay_ms = 10
[smtp]
local_domains = ["example.com"]
[status]
listen = "127.0.0.1:8025"
[autoconfig]
listen = "0.0.0.0:80"
EOF
"$ROOST" serve -c /srv/roost/roost.toml 2>/srv/roost/log &
server=$!
sleep 1.5
python3 - <<PY &
import socket, ssl, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def conn(src, port, tls=False):
    s = socket.create_connection(("192.0.2.1", port), source_address=(src, 0))
    s = ctx.wrap_socket(s) if tls else s
    s.recv(4096)
    return s
def say(s, line):
    s.sendall(line.encode() + b"\r\n"); time.sleep(0.1); return s.recv(4096)
held = []
a = conn("192.0.2.10", 143); say(a, "a1 STARTTLS"); a = ctx.wrap_socket(a)
say(a, "a2 LOGIN alice demo-alice"); say(a, "a3 SELECT INBOX"); held.append(a)
p = conn("198.51.100.23", 993, True); say(p, "p1 LOGIN alice demo-alice"); say(p, "p2 SELECT INBOX")
p.sendall(b"p3 IDLE\r\n"); time.sleep(0.1); p.recv(4096); held.append(p)
b = conn("203.0.113.5", 995, True); say(b, "USER bob"); say(b, "PASS demo-bob"); held.append(b)
for i in range(3):
    x = conn("203.0.113.66", 993, True); say(x, "x1 LOGIN carol guess%d" % i); x.close()
y = conn("203.0.113.66", 995, True); say(y, "USER admin"); say(y, "PASS admin"); y.close()
c = conn("198.51.100.99", 143); say(c, "c1 CAPABILITY"); held.append(c)
s = conn("203.0.113.5", 587); say(s, "EHLO laptop.example.net"); held.append(s)
m = conn("198.51.100.99", 25); say(m, "EHLO mx.example.org"); say(m, "MAIL FROM:<news@example.org>")
say(m, "RCPT TO:<bob@example.com>"); say(m, "DATA"); held.append(m)
time.sleep(30)
PY
clients=$!
sleep 4
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1060 \
  --user-data-dir=/srv/chromium --screenshot="$SHOT" http://127.0.0.1:8025/ 2>/dev/null
kill "$clients" "$server"
wait || true
echo "wrote $SHOT"
'
