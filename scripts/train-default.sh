#!/usr/bin/env bash
# Trains the shipped default model (models/default.safetensors, configured by
# models/default.toml) from ORL and Extended Yale B, then judges it with eval-embed on
# the identities it never saw, beside the raw-pixel and Fisherfaces baselines.
#
#   scripts/train-default.sh            # data from ../shared/data
#   DATA=/path/to/data scripts/train-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}

cargo build --release --bin train-embed --bin eval-embed --example split-identities

# Half of each database's identities for training, half held out (seed 0, the split
# eval-baselines uses too).
target/release/examples/split-identities --out data/split "$DATA/orl" "$DATA/yaleb"

start=$(date +%s)
target/release/train-embed --config models/default.toml
echo "training took $(( $(date +%s) - start )) s"

target/release/eval-embed --model models/default.safetensors --data data/split/heldout \
  --baseline-train data/split/train --out runs/default/eval
