#!/usr/bin/env bash
# Trains variants of the default recipe and judges each on the held-out identities with
# eval-embed; prints one Markdown table row per variant (mean ± std over the protocol's
# rounds) and the training time.
#
#   scripts/ablation.sh VARIANTS_FILE
#
# VARIANTS_FILE has one variant per line: a name, a `|`, then train-embed flags that
# override models/orl-yaleb.toml (blank lines and `#` comments are skipped), e.g.
#   softmax, linear head | --loss softmax --head linear
# Needs data/split/{train,heldout} (scripts/train-lfw-cnn.sh or examples/split-identities).
# env: BASE (default models/orl-yaleb.toml), OUT (default runs/ablation), PYTHON (python3),
#      SPLIT (default data/split: trains on $SPLIT/train, evaluates on $SPLIT/heldout),
#      BIN (a folder holding train-embed and eval-embed: use those, build nothing;
#      lets a long ablation run on while the tree is rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-models/orl-yaleb.toml}
OUT=${OUT:-runs/ablation}
PYTHON=${PYTHON:-python3}
SPLIT=${SPLIT:-data/split}
VARIANTS=${1:?usage: scripts/ablation.sh VARIANTS_FILE}
mkdir -p "$OUT"

if [ -n "${BIN:-}" ]; then
  TRAIN=$BIN/train-embed EVAL=$BIN/eval-embed
else
  cargo build --release --bin train-embed --bin eval-embed >&2
  TRAIN=target/release/train-embed EVAL=target/release/eval-embed
fi

echo "| variant | rank-1 | DIR@1% | DIR@10% | TAR@0.1% | TAR@1% | EER | epoch saved | train s |"
echo "|---|---|---|---|---|---|---|---|---|"
n=0
while IFS= read -r line; do
  line=${line%%#*}
  [ -z "${line// }" ] && continue
  name=$(echo "${line%%|*}" | sed 's/ *$//')
  flags=${line#*|}
  n=$((n + 1))
  dir="$OUT/$n"
  rm -rf "$dir"
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$TRAIN" --config "$BASE" --data "$SPLIT/train" $flags --output "$dir/model.safetensors" \
    --run-dir "$dir/run" >"$dir.train.log" 2>&1 || { echo "| $name | training failed: see $dir.train.log |"; continue; }
  secs=$(( $(date +%s) - start ))
  "$EVAL" --model "$dir/model.safetensors" --data "$SPLIT/heldout" \
    --out "$dir/eval" >"$dir.eval.log" 2>&1 || { echo "| $name | evaluation failed: see $dir.eval.log |"; continue; }
  $PYTHON - "$dir/eval/report.json" "$dir/run/log.jsonl" "$name" "$secs" <<'PY'
import json, sys
report, log, name, secs = sys.argv[1:]
r = json.load(open(report))["methods"][0]["report"]
def at(rates, far):
    x = next(x for x in rates if abs(x["far"] - far) < 1e-12)
    return f'{x["mean"]:.3f}±{x["std"]:.3f}'
ms = lambda m: f'{m["mean"]:.3f}±{m["std"]:.3f}'
epochs = [json.loads(l) for l in open(log)]
saved = max((e["epoch"] for e in epochs if e["best"]), default="-")
print(f'| {name} | {ms(r["rank1"])} | {at(r["dir_at_far"], 0.01)} | {at(r["dir_at_far"], 0.1)} '
      f'| {at(r["tar_at_far"], 0.001)} | {at(r["tar_at_far"], 0.01)} | {ms(r["eer"])} '
      f'| {saved}/{len(epochs)} | {secs} |', flush=True)
PY
done <"$VARIANTS"
