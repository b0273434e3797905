#!/usr/bin/env python3
"""Write the small face fixtures under tests/fixtures/faces/ from ../shared/data.

Run once from the repository root: /work/pyenv/bin/python scripts/make-face-fixtures.py
The output is committed; tests never read ../shared.

Layout written (one sub-folder per identity, 5 images each, downscaled by 2 for ORL
(46x56) and to 49x56 for Yale B, greyscale):
- orl_s1..orl_s4: PGM (P5), except one JPEG, one BMP and one lossless WebP;
- yaleb_B02..B05: PNG (moderate illumination only);
plus deliberately broken files (a truncated PNG, a text file named .jpg, an empty PGM)
and hidden entries (a hidden file and a hidden folder holding a valid image), which a
scan must skip.
"""
import os
import shutil
from pathlib import Path

from PIL import Image

SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
if not SRC.exists():
    SRC = Path("/work/shared/data")
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces"

ORL = ["s1", "s2", "s3", "s4"]
ORL_IMAGES = ["1", "3", "5", "7", "9"]
YALE = ["yaleB02", "yaleB03", "yaleB04", "yaleB05"]
YALE_CONDITIONS = ["A+000E+00", "A+000E+20", "A+000E-20", "A+010E+00", "A-010E+00"]
# One image of some ORL identities in each extra format (identity, image index, ext).
OTHER_FORMATS = {("s1", "3"): "jpg", ("s2", "5"): "bmp", ("s3", "7"): "webp"}


def save(img: Image.Image, path: Path) -> None:
    ext = path.suffix[1:]
    if ext == "webp":
        img.save(path, lossless=True)
    elif ext == "jpg":
        img.save(path, quality=95)
    else:
        img.save(path)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for ident in ORL:
        d = OUT / f"orl_{ident}"
        d.mkdir()
        for i in ORL_IMAGES:
            img = Image.open(SRC / "orl" / ident / f"{i}.pgm").convert("L")
            img = img.resize((46, 56), Image.Resampling.BILINEAR)
            ext = OTHER_FORMATS.get((ident, i), "pgm")
            save(img, d / f"{i}.{ext}")
    for ident in YALE:
        d = OUT / f"yaleb_{ident[4:]}"
        d.mkdir()
        for cond in YALE_CONDITIONS:
            img = Image.open(SRC / "yaleb" / ident / f"{ident}_P00{cond}.pgm").convert("L")
            img = img.resize((49, 56), Image.Resampling.BILINEAR)
            save(img, d / f"{cond}.png")
    # Broken files: each must be skipped and counted by a scan.
    good = (OUT / "yaleb_B02" / "A+000E+00.png").read_bytes()
    (OUT / "yaleb_B03" / "truncated.png").write_bytes(good[: len(good) // 2])
    (OUT / "orl_s4" / "not-an-image.jpg").write_bytes(b"this is not a JPEG\n")
    (OUT / "orl_s2" / "empty.pgm").write_bytes(b"")
    # Hidden entries: ignored without being counted as broken.
    (OUT / "orl_s1" / ".DS_Store").write_bytes(b"\x00\x01 not an image")
    hidden = OUT / ".thumbnails"
    hidden.mkdir()
    shutil.copy(OUT / "orl_s1" / "1.pgm", hidden / "1.pgm")
    hidden_id = OUT / "orl_s1" / ".cache"
    hidden_id.mkdir()
    shutil.copy(OUT / "orl_s1" / "1.pgm", hidden_id / "1.pgm")
    for root, _, files in os.walk(OUT):
        for f in files:
            print(Path(root, f).relative_to(OUT))


if __name__ == "__main__":
    main()
