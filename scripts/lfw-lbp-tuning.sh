#!/usr/bin/env bash
# The descriptor-branch weight behind models/lfw-cnn.toml's [lbp] section (BENCHMARKS.md,
# "Faces in the wild"): the t1 network of scripts/lfw-tuning.sh (trained without the
# people of View 2 folds 4-7) gets a branch fitted on the same training faces with
# examples/fit-lbp.rs at several weights, each judged on the pairs of folds 4 and 5.
# A weight near 0 is the descriptor alone. Run scripts/lfw-tuning.sh t1 first.
#
#   scripts/lfw-lbp-tuning.sh                 # weights 0.0001 0.3 0.5 0.7
#   scripts/lfw-lbp-tuning.sh 0.2 0.4
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
WEIGHTS=${*:-0.0001 0.3 0.5 0.7}
net=runs/lfw-tuning/t1-cnn-cosface.safetensors
[ -f "$net" ] || { echo "no $net: run scripts/lfw-tuning.sh t1 first" >&2; exit 1; }
cargo build --release --bin eval-embed --example fit-lbp
for w in $WEIGHTS; do
  out=runs/lfw-tuning/t1-lbp-w$w
  target/release/examples/fit-lbp "$net" data/lfw-not4567 "$out.safetensors" "$w"
  target/release/eval-embed --model "$out.safetensors" --data "$DATA/lfw" --pairs "$DATA/lfw-pairs-dev.txt" \
    --folds 4,5 --detect --enroll 1 --out "$out-eval" | tee "$out-eval.txt"
done
