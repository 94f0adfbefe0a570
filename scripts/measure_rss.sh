#!/usr/bin/env bash
# Resident memory (VmRSS) of `slipway serve`: idle, while and after one
# sign-in, while and after 8 sign-ins at once. Each sign-in hashes with
# argon2id (19 MiB of memory per hash).
#
#   scripts/measure_rss.sh [path/to/slipway]
#
# Default binary: the one `make run` serves, $CARGO_TARGET_DIR/release/slipway.
# SETTLE (seconds, default 30): the wait before each "after" reading.
# Needs curl and python3; uses a temporary data dir and free ports.
set -euo pipefail

BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/slipway/target}/release/slipway}
SETTLE=${SETTLE:-30}
PW='correct horse battery staple'
DATA=$(mktemp -d)
PID=

cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Users u1..u8: sign-ins under different names, so the login rate limit
# (per name and address) never refuses one.
for i in 1 2 3 4 5 6 7 8; do
  printf '%s\n' "$PW" | SLIPWAY_DATA_DIR=$DATA "$BIN" admin create --name "u$i" --password-stdin >/dev/null
done

DASH=127.0.0.1:$(free_port)
EDGE=127.0.0.1:$(free_port)
SLIPWAY_DATA_DIR=$DATA SLIPWAY_DASHBOARD_ADDR=$DASH SLIPWAY_EDGE_ADDR=$EDGE SLIPWAY_LOG=warn \
  "$BIN" serve >"$DATA/server.log" 2>&1 &
PID=$!
for _ in $(seq 300); do
  curl -s -o /dev/null "http://$DASH/login" && break
  sleep 0.1
done

rss() { awk '/^VmRSS/ { printf "%.1f MB", $2 / 1024 }' "/proc/$PID/status"; }
peak_during() { # samples RSS every 20 ms while job $1 runs; prints the largest
  local peak=0 now
  while kill -0 "$1" 2>/dev/null; do
    now=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")
    ((now > peak)) && peak=$now
    sleep 0.02
  done
  awk -v k="$peak" 'BEGIN { printf "%.1f MB", k / 1024 }'
}
login() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://$DASH" \
    --data-urlencode "name=$1" --data-urlencode "password=$PW" "http://$DASH/rpc/login")
  [[ $code == 200 ]] || echo "sign-in of $1: HTTP $code" >&2
}

echo "binary: $BIN"
sleep 5
echo "idle (5 s after start):           $(rss)"
login u1 &
echo "during one sign-in (peak):        $(peak_during $!)"
echo "right after one sign-in:          $(rss)"
sleep "$SETTLE"
echo "$SETTLE s after one sign-in:           $(rss)"
(for i in 1 2 3 4 5 6 7 8; do login "u$i" & done; wait) &
start=$(date +%s.%N)
echo "during 8 sign-ins at once (peak): $(peak_during $!)"
echo "8 sign-ins took:                  $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f s", e - s }')"
echo "right after 8 sign-ins:           $(rss)"
sleep "$SETTLE"
echo "$SETTLE s after 8 sign-ins:            $(rss)"
