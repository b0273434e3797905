#!/usr/bin/env bash
# Cross-fitted calibration of the open-set impostor tail (README, "Open-set threshold").
#
# The development identities are split into K parts by name; models/lfw-cnn.toml's
# recipe is trained K times, each time without one part, and each model scores the
# strangers-against-identity comparisons of the part it never saw (eval-embed
# --impostors-out). The pooled scores, to which every identity contributes, are fitted
# into a model file (eval-embed --calibrate-into --impostors).
#
#   scripts/calibrate-crossfit.sh check   # folds 6 and 7 left out of everything:
#                                         # calibrate on the rest, check the promise on them
#   scripts/calibrate-crossfit.sh ship    # the tail of the shipped model, from every
#                                         # development identity (folds 6 and 7 scored by
#                                         # the check run's models, which never saw them)
#
# Environment: K (parts, default 3), EPOCHS (training epochs per part, default the
# recipe's), DATA (default ../shared/data), TRAIN_EMBED / EVAL_EMBED (binaries, default
# target/release/...), DRAWS (galleries drawn per size in the check, default 20). Part
# models and score files already under runs/crossfit-not67 are reused: remove it to retrain.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-check}
K=${K:-3}
DATA=${DATA:-../shared/data}
DRAWS=${DRAWS:-20}
TRAIN_EMBED=${TRAIN_EMBED:-target/release/train-embed}
EVAL_EMBED=${EVAL_EMBED:-target/release/eval-embed}
PAIRS="$DATA/lfw-pairs-dev.txt"
RUNS=runs/crossfit-not67
WORK=data/crossfit-not67

if [[ ${TRAIN_EMBED} == target/release/* || ${EVAL_EMBED} == target/release/* ]]; then
  cargo build --release --bin train-embed --bin eval-embed
fi

# The recipe, with EPOCHS epochs (and the cosine schedule over them) if set.
mkdir -p "$RUNS" "$WORK"
if [[ -n ${EPOCHS:-} ]]; then
  sed -e "s/^epochs = .*/epochs = $EPOCHS/" -e "s/total = [0-9]*,/total = $EPOCHS,/" \
    models/lfw-cnn.toml > "$RUNS/recipe.toml"
else
  cp models/lfw-cnn.toml "$RUNS/recipe.toml"
fi

# Folds 6 and 7: only ever judged on (every photo; one-photo people are strangers).
[[ -d data/lfw-67 ]] || python3 scripts/lfw-folds.py --pairs "$PAIRS" --only 6,7 --min-images 1 \
  "$DATA/lfw" data/lfw-67

for j in $(seq 1 "$K"); do
  out="$RUNS/$j"
  if [[ ! -f $out/model.safetensors ]]; then
    rm -rf "$WORK/train-$j" "$WORK/heldout-$j"
    python3 scripts/lfw-folds.py --pairs "$PAIRS" --exclude 6,7 --min-images 2 \
      --part "$j/$K" --side train "$DATA/lfw" "$WORK/train-$j"
    "$TRAIN_EMBED" --config "$RUNS/recipe.toml" --data "$WORK/train-$j" \
      --output "$out/model.safetensors" --run-dir "$out"
  fi
  if [[ ! -f $out/impostors.json ]]; then
    [[ -d $WORK/heldout-$j ]] || python3 scripts/lfw-folds.py --pairs "$PAIRS" --exclude 6,7 \
      --min-images 1 --part "$j/$K" --side heldout "$DATA/lfw" "$WORK/heldout-$j"
    # The part this model never saw: its strangers-against-identity scores.
    "$EVAL_EMBED" --model "$out/model.safetensors" --data "$WORK/heldout-$j" --detect \
      --enroll 1 --impostors-out "$out/impostors.json" --out "$out/eval-heldout"
  fi
done
pooled=$(ls "$RUNS"/*/impostors.json | paste -sd, -)

case "$MODE" in
  check)
    # Each part model, with the tail pooled over all parts, checked on folds 6 and 7.
    for j in $(seq 1 "$K"); do
      out="$RUNS/$j"
      "$EVAL_EMBED" --model "$out/model.safetensors" --data data/lfw-67 --detect --enroll 1 \
        --impostors "$pooled" --calibrate-into "$out/calibrated.safetensors" \
        --check-promise --promise-draws "$DRAWS" --out "$out/eval-67" | tee "$out/eval-67.txt"
    done
    ;;
  ship)
    # Folds 6 and 7 scored by part 1's model (it never saw them), pooled with the parts.
    [[ -f $RUNS/67-impostors.json ]] || "$EVAL_EMBED" --model "$RUNS/1/model.safetensors" \
      --data data/lfw-67 --detect --enroll 1 --impostors-out "$RUNS/67-impostors.json" \
      --out "$RUNS/eval-67-scores"
    "$EVAL_EMBED" --model models/lfw-cnn.safetensors --data data/lfw-67 --detect --enroll 1 \
      --impostors "$pooled,$RUNS/67-impostors.json" --calibrate-into models/lfw-cnn.safetensors \
      --out runs/lfw-cnn/eval-calibrate
    ;;
  *)
    echo "usage: $0 check|ship" >&2
    exit 2
    ;;
esac
