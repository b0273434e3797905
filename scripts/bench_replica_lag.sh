#!/usr/bin/env bash
# How long an enrollment made through one replica takes to be identified by another:
# two release servers on one PostgreSQL database, N enrollments through A; from each
# acknowledgement, poll B (every 5 ms, one request at a time) until it matches. Prints min / median / max in milliseconds.
#
# Usage: scripts/bench_replica_lag.sh postgres://postgres@127.0.0.1:5432/DB [N]
# (DB must exist; the run adds identities lag-0 … lag-N to its default gallery.)
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:?database URL}
n=${2:-20}
bin=target/release/faceprint-server
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port); pb=$(port)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for p in "$pa" "$pb"; do
  FACEPRINT_SERVER__BIND=127.0.0.1:$p FACEPRINT_DATABASE__URL=$url RUST_LOG=warn "$bin" >/dev/null &
  pids+=($!)
done
for p in "$pa" "$pb"; do
  until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do sleep 0.2; done
done
img=tests/fixtures/faces/orl_s1/1.pgm
lags=()
for i in $(seq 1 "$n"); do
  who="lag-$i-$$"
  # A new image each time (one pixel changed) so B can only match the new identity.
  tmp=$(mktemp); cp "$img" "$tmp"; printf "\\x$(printf %02x $((i % 256)))" | dd of="$tmp" bs=1 seek=200 conv=notrunc 2>/dev/null
  curl -sf -F identity="$who" -F image=@"$tmp" "http://127.0.0.1:$pa/enroll" >/dev/null
  start=$(date +%s%N)  # from the acknowledged enrollment
  until curl -sf -F image=@"$tmp" -F threshold=0.9999 "http://127.0.0.1:$pb/identify" | grep -q "\"identity\":\"$who\""; do
    sleep 0.005
  done
  lags+=($(( ($(date +%s%N) - start) / 1000000 )))
  rm -f "$tmp"
done
printf '%s\n' "${lags[@]}" | sort -n | awk '{a[NR]=$1} END {printf "enroll through A -> identified by B, %d runs: min %d ms, median %d ms, max %d ms\n", NR, a[1], a[int((NR+1)/2)], a[NR]}'
