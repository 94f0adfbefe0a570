#!/usr/bin/env bash
# Bench tools, for `make bench` only (not CI): wrk (the load of the SSR and
# edge benches) and Debian's nginx (the baseline of benches/edge_vs_nginx.rs).
# Idempotent. Installing nginx must not start a system nginx on :80: while
# apt runs, /usr/sbin/policy-rc.d refuses every service start (exit 101),
# unless the machine already has a policy of its own.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "[setup-bench] need root (or sudo) to run: $*" >&2; exit 1; fi
}

missing=()
for p in wrk nginx; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[setup-bench] installing ${missing[*]}"

POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
  trap 'as_root rm -f "$POLICY"' EXIT
fi
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
