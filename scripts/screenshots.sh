#!/usr/bin/env bash
# Screenshots of each view of the web page (Key, Identify, Enroll, People, Status), on a
# desktop (1280 px) and a phone (360 px), written to docs/web-<view>-<desktop|phone>.png.
# Drives headless Chromium through chromedriver against a real server with the shipped
# model and the committed fixture photos (tests/web_screenshots.rs).
# Needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y chromium chromium-driver" >&2; exit 1; }
done
FACEPRINT_SCREENSHOTS_DIR="$PWD/docs" cargo test --locked --test web_screenshots -- --ignored
ls -l docs/web-*.png
