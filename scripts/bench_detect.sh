#!/usr/bin/env bash
# Face detection side by side in one run, on the same two scenes (benches/detect.rs):
# faceprint's MTCNN, dlib's HOG detector (Python, dlib-bin), and the SeetaFace detector
# (rustface) that MTCNN replaced, built from the last commit that had it.
#
#   PYTHON=/path/to/python-with-dlib scripts/bench_detect.sh
#
# Run on an idle machine: each part prints the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OLD=${OLD:-e2e7264}   # the last commit with rustface
export FACEPRINT_BENCH_SECONDS=${FACEPRINT_BENCH_SECONDS:-5}

old_tree=target/bench-rustface
if [ ! -d "$old_tree" ]; then
  git worktree add --detach "$old_tree" "$OLD" >/dev/null
fi
# Build both first, so that no build runs beside a measurement.
cargo bench --bench detect --no-run
(cd "$old_tree" && CARGO_TARGET_DIR=../bench-rustface-target cargo bench --bench detect --no-run)

echo "== faceprint MTCNN"
cargo bench --bench detect
echo "== dlib HOG"
"$PYTHON" scripts/bench_detect_dlib.py target/bench-scenes
echo "== rustface (SeetaFace), commit $OLD"
(cd "$old_tree" && CARGO_TARGET_DIR=../bench-rustface-target cargo bench --bench detect)
