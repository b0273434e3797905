#!/usr/bin/env bash
# Trains the face-crop model (models/orl-yaleb.safetensors, configured by
# models/orl-yaleb.toml) from ORL and Extended Yale B, judges it with eval-embed on the
# identities it never saw, beside the raw-pixel, Eigenfaces and Fisherfaces baselines,
# and stores the open-set thresholds measured there in the model.
#
#   scripts/train-orl-yaleb.sh            # data from ../shared/data
#   DATA=/path/to/data scripts/train-orl-yaleb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}

cargo build --release --bin train-embed --bin eval-embed --example split-identities

# Two thirds of each database's identities for training, one third held out (seed 0).
target/release/examples/split-identities --out data/split --heldout 0.34 "$DATA/orl" "$DATA/yaleb"

rm -rf runs/orl-yaleb   # a fresh run (train-embed refuses to overwrite a checkpoint)
start=$(date +%s)
target/release/train-embed --config models/orl-yaleb.toml
echo "training took $(( $(date +%s) - start )) s"

# The held-out third: the numbers in BENCHMARKS.md, and the thresholds the server uses
# by default (open-set, half of these 20 identities enrolled).
target/release/eval-embed --model models/orl-yaleb.safetensors --data data/split/heldout \
  --baseline-train data/split/train --out runs/orl-yaleb/eval \
  --calibrate-into models/orl-yaleb.safetensors
