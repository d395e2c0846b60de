#!/usr/bin/env bash
# Opens the same 100,000-message maildir with roost and with Dovecot's imap binary, one fresh
# process each time, and prints wall time and peak RSS. Needs root (installs dovecot-imapd from
# Debian if missing and runs Dovecot's imap as nobody). Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
command -v /usr/lib/dovecot/imap >/dev/null 2>&1 || [ -x /usr/lib/dovecot/imap ] ||
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null)
cargo build --release -q -p roost-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make_maildir() {
  mkdir -p "$1"/{cur,new,tmp}
  python3 - "$1" "$N" <<'PY'
import sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(f"{root}/new/1700000000.M{i}P1.bench", "w") as f:
        f.write(f"From: a{i}@example.com\r\nSubject: message {i}\r\n\r\nbody {i}\r\n")
PY
}
make_maildir "$work/roost/Maildir"
make_maildir "$work/dovecot/Maildir"
chown -R nobody:nogroup "$work/dovecot"
chmod 755 "$work"
cat > "$work/dovecot.conf" <<CONF
mail_location = maildir:$work/dovecot/Maildir
first_valid_uid = 1
ssl = no
log_path = $work/dovecot.log
CONF
echo "roost (first open, then opens with a current index):"
for i in 1 2 3 4; do
  /usr/bin/time -f "  %e s, max RSS %M KB" ./target/release/roost-bench open "$work/roost/Maildir" >/dev/null
done
echo "Dovecot imap, SELECT INBOX (first open, then with its index):"
for i in 1 2 3 4; do
  printf 'a SELECT INBOX\r\nb LOGOUT\r\n' |
    /usr/bin/time -f "  %e s, max RSS %M KB" runuser -u nobody -- env USER=bench HOME="$work/dovecot" \
      MAIL="maildir:$work/dovecot/Maildir" /usr/lib/dovecot/imap -c "$work/dovecot.conf" >/dev/null
done
