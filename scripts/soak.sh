#!/usr/bin/env bash
# Soak test: a bounded mixed load (identify, enroll, delete, bad inputs, slow clients)
# against a release server on a fresh SQLite file for DURATION seconds; prints requests
# served, the 5xx count, RSS before / peak / after and open files before / after
# (scripts/hostile_load.py soak). "Before" is taken after WARMUP seconds of the same mix
# whose enrollments are deleted again, "after" once the identities the load left
# enrolled are deleted: both with the same gallery. Exits non-zero on any 5xx or failed
# connection.
#
# usage: scripts/soak.sh [DURATION_SECONDS]     (default 1800: the 30-minute run)
# env:   BIN (a prebuilt server binary; default: build the release binary),
#        WORKERS (concurrent clients, default 6), WARMUP (seconds, default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/hostile_load.py soak ${BIN:+--bin "$BIN"} --seconds "${1:-1800}" \
  --workers "${WORKERS:-6}" --warmup "${WARMUP:-60}" --port 18091 --fixtures tests/fixtures/server
