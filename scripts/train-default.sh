#!/usr/bin/env bash
# Trains the shipped default model (models/default.safetensors, configured by
# models/default.toml) on the LFW identities of ../shared/data/lfw outside View 2 folds
# 6 and 7, through the server's own detection and alignment, then judges it once on
# the pairs of folds 6 and 7 (identities it never saw) with the same detect-and-align
# path, and on the held-out third of ORL and Extended Yale B.
#
#   scripts/train-default.sh            # data from ../shared/data
#   DATA=/path/to/data scripts/train-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}

cargo build --release --bin train-embed --bin eval-embed --example split-identities

rm -rf data/lfw-not67
python3 scripts/lfw-folds.py --pairs "$DATA/lfw-pairs-dev.txt" --exclude 6,7 --min-images 2 \
  "$DATA/lfw" data/lfw-not67

rm -rf runs/default   # a fresh run (train-embed refuses to overwrite a checkpoint)
start=$(date +%s)
target/release/train-embed --config models/default.toml
echo "training took $(( $(date +%s) - start )) s"

# LFW verification (10-fold style over folds 6 and 7) and open-set identification on
# their identities, one photo enrolled, photos through detection and alignment.
target/release/eval-embed --model models/default.safetensors --data "$DATA/lfw" \
  --pairs "$DATA/lfw-pairs-dev.txt" --folds 6,7 --detect --enroll 1 --out runs/default/eval-lfw

# The face crops of the former default model's held-out third (ORL, Yale B).
target/release/examples/split-identities --out data/split --heldout 0.34 "$DATA/orl" "$DATA/yaleb"
target/release/eval-embed --model models/default.safetensors --data data/split/heldout \
  --out runs/default/eval-crops
