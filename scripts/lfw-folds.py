#!/usr/bin/env python3
"""Training folders from LFW that leave out the identities of chosen View 2 folds.

LFW's View 2 folds are identity-disjoint: a model judged on the pairs of a fold must not
have trained on anyone in it. This writes DST/<identity>/ folders of symbolic links to
SRC's images for every identity of SRC that appears in none of the --exclude folds'
pairs and has at least --min-images images. Identities that appear in no fold at all
are kept (they are never judged on).

    python3 scripts/lfw-folds.py --pairs ../shared/data/lfw-pairs-dev.txt \\
        --exclude 6,7 --min-images 2 data/lfw-aligned data/lfw-train-not67

With --only, the reverse: only the identities of those folds (the held-out people).
With --part J/K, identities are further split into K seeded parts by name (cross-fitting):
--side train keeps every part but J, --side heldout only part J.

Prints how many identities and images were kept and left out.
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path


def fold_identities(pairs_path):
    """{fold number (1-based): set of identity names} of a View 2 pairs file."""
    lines = Path(pairs_path).read_text().splitlines()
    folds, per = (int(v) for v in lines[0].split())
    out, at = {}, 1
    for fold in range(1, folds + 1):
        names = set()
        for line in lines[at : at + 2 * per]:
            parts = line.split()
            if len(parts) == 3:
                names.add(parts[0])
            elif len(parts) == 4:
                names.update((parts[0], parts[2]))
            else:
                sys.exit(f"{pairs_path}: malformed pair line {line!r}")
        out[fold] = names
        at += 2 * per
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--exclude", default="", help="comma-separated fold numbers")
    ap.add_argument("--only", default="", help="keep only these folds' identities")
    ap.add_argument("--min-images", type=int, default=2)
    ap.add_argument("--part", default="", help="J/K: cross-fitting part J of K (1-based)")
    ap.add_argument("--side", choices=["train", "heldout"], default="train")
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args()
    folds = fold_identities(args.pairs)
    excluded = set()
    for f in filter(None, args.exclude.split(",")):
        excluded |= folds[int(f)]
    only = set()
    for f in filter(None, args.only.split(",")):
        only |= folds[int(f)]
    part = None
    if args.part:
        j, k = (int(v) for v in args.part.split("/"))
        part = (j, k)
    src, dst = Path(args.src).resolve(), Path(args.dst)
    if dst.exists():
        sys.exit(f"{dst} exists: remove it first")
    kept = left_fold = left_small = images = 0
    for identity in sorted(p.name for p in src.iterdir() if p.is_dir()):
        files = sorted(p for p in (src / identity).iterdir() if p.is_file())
        if identity in excluded or (only and identity not in only):
            left_fold += 1
            continue
        if part is not None:
            # A stable hash of the name (not Python's salted hash()).
            h = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16)
            in_part = h % part[1] == part[0] - 1
            if in_part != (args.side == "heldout"):
                left_fold += 1
                continue
        if len(files) < args.min_images:
            left_small += 1
            continue
        (dst / identity).mkdir(parents=True)
        for f in files:
            os.symlink(f, dst / identity / f.name)
        kept += 1
        images += len(files)
    print(
        f"{dst}: {kept} identities, {images} images; left out {left_fold} identities of "
        f"folds {args.exclude or '-'} and {left_small} with fewer than {args.min_images} images"
    )


if __name__ == "__main__":
    main()
