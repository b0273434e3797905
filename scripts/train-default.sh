#!/usr/bin/env bash
# Trains the shipped default model (models/default.safetensors, configured by
# models/default.toml) from ORL and Extended Yale B, judges it with eval-embed on the
# identities it never saw, beside the raw-pixel, Eigenfaces and Fisherfaces baselines,
# and stores the open-set thresholds measured there in the model.
#
#   scripts/train-default.sh            # data from ../shared/data
#   DATA=/path/to/data scripts/train-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}

cargo build --release --bin train-embed --bin eval-embed --example split-identities

# Two thirds of each database's identities for training, one third held out (seed 0).
target/release/examples/split-identities --out data/split --heldout 0.34 "$DATA/orl" "$DATA/yaleb"

rm -rf runs/default   # a fresh run (train-embed refuses to overwrite a checkpoint)
start=$(date +%s)
target/release/train-embed --config models/default.toml
echo "training took $(( $(date +%s) - start )) s"

# The held-out third: the numbers in BENCHMARKS.md, and the thresholds the server uses
# by default (open-set, half of these 20 identities enrolled).
target/release/eval-embed --model models/default.safetensors --data data/split/heldout \
  --baseline-train data/split/train --out runs/default/eval \
  --calibrate-into models/default.safetensors
