#!/usr/bin/env bash
# /identify throughput and latency at 16 concurrent clients (CLIENTS) with 1k, 10k and 100k
# enrolled faces (synthetic unit vectors of the model's dimension), start-to-ready time
# and resident memory per face. Needs `wrk` (Debian package) and /work/pyenv-style
# Python with numpy (PYTHON=...). Prints one Markdown table row per gallery size.
#
# usage: scripts/bench_server.sh [SIZES...]       (default: 1000 10000 100000)
# env:   MODEL (default models/default.safetensors), DURATION (wrk run, default 20s),
#        BIN (a prebuilt server binary; default: build the release binary),
#        IMAGE (the query image, default tests/fixtures/server/s1/1.png, a 92×112 crop),
#        DETECT (the query's `detect` field: true = find faces first, false = take the
#        image as a face crop; default false, as before detection existed),
#        CLIENTS (concurrent connections of wrk, default 16, as the issue's table),
#        SEED_DIR (keep the seeded databases there and reuse them on the next run: seeding
#        a million faces takes about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DURATION=${DURATION:-20s}
SIZES=("${@:-1000 10000 100000}")
read -r -a SIZES <<<"${SIZES[*]}"

MODEL=${MODEL:-models/default.safetensors}
if [ -n "${SEED_DIR:-}" ]; then
  mkdir -p "$SEED_DIR"
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin faceprint-server >&2
  BIN=target/release/faceprint-server
fi
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=18089
URL="http://127.0.0.1:$PORT"

# start_server DB → sets SERVER_PID; writes the seconds until /readyz answered 200 to
# $WORK/ready_s (not printed: a command substitution would run it in a subshell)
start_server() {
  local start now
  start=$(date +%s.%N)
  FACEPRINT_SERVER__BIND="127.0.0.1:$PORT" FACEPRINT_DATABASE__URL="sqlite://$1" FACEPRINT_MODEL__PATH="$MODEL" \
    FACEPRINT_LIMITS__MAX_CONCURRENT_REQUESTS=64 RUST_LOG=warn "$BIN" >&2 &
  SERVER_PID=$!
  for _ in $(seq 1 6000); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" || true
      SERVER_PID=
      echo "the server exited before it was ready (its error is above)" >&2
      exit 1
    fi
    if curl -fs "$URL/readyz" >/dev/null 2>&1; then
      now=$(date +%s.%N)
      echo "$now - $start" | bc -l >"$WORK/ready_s"
      return
    fi
    sleep 0.05
  done
  echo "server did not become ready" >&2
  exit 1
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# The query: a real face from the test fixtures, as JSON with base64. Bodies go through
# files (curl's `-d @file`, read by wrk's script): an argument of a command is limited to
# 128 KiB, less than a photograph's base64.
IMAGE_B64=$(base64 -w0 "${IMAGE:-tests/fixtures/server/s1/1.png}")
DETECT=${DETECT:-false}
CLIENTS=${CLIENTS:-16}
WRK_THREADS=$(( CLIENTS < 2 ? 1 : 2 ))  # wrk wants at least one connection a thread
printf '{"image": "%s", "top_k": 5, "detect": %s}' "$IMAGE_B64" "$DETECT" >"$WORK/query.json"
printf '{"image": "%s"}' "$IMAGE_B64" >"$WORK/warm.json"
cat >"$WORK/identify.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("$WORK/query.json", "rb"))
wrk.body = f:read("*a")
f:close()
LUA

# Empty database: migrate, learn the model's version and dimension, baseline memory.
start_server "$WORK/empty.db" >/dev/null
READY=$(curl -fs "$URL/readyz")
VERSION=$($PYTHON -c 'import json,sys; print(json.loads(sys.argv[1])["model"])' "$READY")
DIM=$($PYTHON -c 'import json,sys; print(json.loads(sys.argv[1])["dim"])' "$READY")
curl -fs -H 'Content-Type: application/json' -d @"$WORK/warm.json" "$URL/identify" >/dev/null
BASE_RSS=$(rss_kib)
stop_server

echo "| faces | index | start-to-ready (s) | index built (s) | RSS (MiB) | RSS per face (bytes) | requests/s | p50 | p99 |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for n in "${SIZES[@]}"; do
  db="${SEED_DIR:-$WORK}/faces-$n-$DIM-$(echo "$VERSION" | tr -c "A-Za-z0-9.\n-" _).db"
  if [ -z "${SEED_DIR:-}" ] || [ ! -f "$db" ]; then
    rm -f "$db"
    start_server "$db" >/dev/null   # migrate
    stop_server
    $PYTHON scripts/seed_gallery.py "$db" "$n" "$DIM" "$VERSION"
  fi
  start=$(date +%s.%N)
  start_server "$db"
  ready_s=$(cat "$WORK/ready_s")
  # Past the crossover the server is ready on the exact index while the HNSW graph is
  # built behind it: wait for the graph, so wrk measures the index that will serve.
  while curl -fs "$URL/readyz" | $PYTHON -c 'import json,sys; sys.exit(0 if any(i["building"] for i in json.load(sys.stdin)["indexes"]) else 1)'; do
    sleep 0.2
  done
  built_s=$(echo "$(date +%s.%N) - $start" | bc -l)
  kind=$(curl -fs "$URL/readyz" | $PYTHON -c 'import json,sys; print(",".join(sorted({i["kind"] for i in json.load(sys.stdin)["indexes"]})))')
  curl -fs -H 'Content-Type: application/json' -d @"$WORK/warm.json" "$URL/identify" >/dev/null
  rss=$(rss_kib)
  out=$(wrk -t"$WRK_THREADS" -c"$CLIENTS" -d"$DURATION" --latency -s "$WORK/identify.lua" "$URL/identify")
  echo "$out" >&2
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  if [ -n "$non2xx" ]; then echo "warning: $non2xx non-2xx responses at $n faces" >&2; fi
  per_face=$(( (rss - BASE_RSS) * 1024 / n ))
  printf '| %s | %s | %.2f | %.1f | %.0f | %s | %s | %s | %s |\n' "$n" "$kind" "$ready_s" "$built_s" "$(echo "$rss / 1024" | bc -l)" "$per_face" "$rps" "$p50" "$p99"
  stop_server
done
