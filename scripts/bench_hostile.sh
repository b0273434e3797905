#!/usr/bin/env bash
# The hardening targets against a release server on a fresh SQLite file: 8 concurrent
# 4096x4096 uploads (peak RSS; server CPU after the answers), /healthz latency beside 70
# slow-body connections, 500 connections with unfinished headers closed within the
# header-read timeout. Prints what it measured (scripts/hostile_load.py measure).
#
# usage: scripts/bench_hostile.sh
# env:   BIN (a prebuilt server binary; default: build the release binary),
#        TIMEOUT_MS (limits.request_timeout_ms, default 2000),
#        HEADER_TIMEOUT_MS (server.header_read_timeout_ms, default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/hostile_load.py measure ${BIN:+--bin "$BIN"} \
  --timeout-ms "${TIMEOUT_MS:-2000}" --header-timeout-ms "${HEADER_TIMEOUT_MS:-5000}"
