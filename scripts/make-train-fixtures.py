#!/usr/bin/env python3
"""Write the small training fixtures under tests/fixtures/train/ from ../shared/data/orl.

Run once from the repository root: /work/pyenv/bin/python scripts/make-train-fixtures.py
The output is committed; tests never read ../shared.

- tests/fixtures/train/faces/: 12 ORL identities (s1..s13 as listed, sorted) x 6 images,
  downscaled 4x to 23x28, PGM: enough identities for a P x K batch, a held-out
  validation split and a short training run that must separate them.
- tests/fixtures/train/unseen/: 8 other ORL identities x 6 images, same format: the
  identities `eval-embed` is tested on (never seen by the training fixtures).
"""
from pathlib import Path

from PIL import Image

SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "orl"
if not SRC.exists():
    SRC = Path("/work/shared/data/orl")
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "train"

IMAGES = ["1", "2", "4", "6", "8", "10"]
SIZE = (23, 28)  # width, height: 92x112 / 4


def write(identities, folder):
    for ident in identities:
        dst = OUT / folder / ident
        dst.mkdir(parents=True, exist_ok=True)
        for name in IMAGES:
            img = Image.open(SRC / ident / f"{name}.pgm").convert("L")
            img.resize(SIZE, Image.Resampling.LANCZOS).save(dst / f"{name}.pgm")


def main():
    subjects = sorted((p.name for p in SRC.iterdir() if p.is_dir()), key=lambda s: int(s[1:]))
    write(subjects[:12], "faces")
    write(subjects[12:20], "unseen")


if __name__ == "__main__":
    main()
