#!/usr/bin/env bash
# The recipe search behind BENCHMARKS.md's "Faces in the wild" tuning table: each
# models/lfw-tuning/<run>.toml trained on the LFW people of no View 2 fold 4–7, judged
# on the pairs of folds 4 and 5 (folds 6 and 7 are kept for the chosen recipe).
# Training reads aligned crops written once by examples/align-folder.rs (the same
# detection and alignment as train-embed --detect, face nearest the centre).
#
#   scripts/lfw-tuning.sh              # every run: t1 t2 t4 t5 t6 t7
#   scripts/lfw-tuning.sh t1 t7        # some of them
#   DATA=/path/to/data scripts/lfw-tuning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
RUNS=${*:-t1 t2 t4 t5 t6 t7}

cargo build --release --bin train-embed --bin eval-embed --example align-folder
[ -d data/lfw-aligned ] || target/release/examples/align-folder "$DATA/lfw" data/lfw-aligned
for min in 2 1; do
  dir=data/lfw-not4567$([ $min = 1 ] && echo -all || true)
  [ -d "$dir" ] || python3 scripts/lfw-folds.py --pairs "$DATA/lfw-pairs-dev.txt" \
    --exclude 4,5,6,7 --min-images $min data/lfw-aligned "$dir"
done
mkdir -p runs/lfw-tuning
for run in $RUNS; do
  cfg=models/lfw-tuning/$run.toml
  model=$(sed -n 's/^output = "\(.*\)"/\1/p' "$cfg")
  rm -rf "$(sed -n 's/^run_dir = "\(.*\)"/\1/p' "$cfg")"
  target/release/train-embed --config "$cfg"
  target/release/eval-embed --model "$model" --data "$DATA/lfw" --pairs "$DATA/lfw-pairs-dev.txt" \
    --folds 4,5 --detect --enroll 1 --out "runs/lfw-tuning/$run-eval" | tee "runs/lfw-tuning/$run-eval.txt"
done
