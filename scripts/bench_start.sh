#!/usr/bin/env bash
# Start-up of the server on a fresh SQLite file and the shipped model: seconds from
# spawning each binary to its first 200 on /readyz (polled every 5 ms), ROUNDS rounds,
# the binaries alternating. Prints the load average first.
#
# Usage: scripts/bench_start.sh ROUNDS BIN [BIN…]   (e.g. target/release/faceprint-server)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?rounds}
shift
[ $# -gt 0 ] || { echo "usage: $0 ROUNDS BIN [BIN…]" >&2; exit 2; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for r in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    rm -f "$dir"/x.db*
    start=$(date +%s.%N)
    FACEPRINT_SERVER__BIND=127.0.0.1:$port FACEPRINT_DATABASE__URL="sqlite://$dir/x.db" \
      FACEPRINT_MODEL__PATH=models/default.safetensors FACEPRINT_AUTH__ALLOW_OPEN=true \
      RUST_LOG=warn "$bin" >/dev/null 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
      kill -0 "$pid" 2>/dev/null || { echo "$bin exited before it was ready" >&2; exit 1; }
      sleep 0.005
    done
    ready=$(date +%s.%N)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    echo "round $r $bin: ready in $(python3 -c "print(f'{$ready - $start:.3f}')") s"
  done
done
