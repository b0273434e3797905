#!/usr/bin/env python3
"""Genuine and impostor cosine scores of eval-embed exports (`eval-embed --export FILE`).

    scripts/score_spread.py EXPORT.jsonl [EXPORT.jsonl ...]

For every pair of images in an export: the mean ± std of the cosine similarity of
same-identity pairs (genuine) and of different-identity pairs (impostor), the
separation d' = (mean_g - mean_i) / sqrt((var_g + var_i) / 2), and the 99.9th percentile
of impostor scores. An embedding that spreads identities over the sphere has impostor
scores near 0; one that has collapsed into a narrow cone has them near 1.
"""
import json
import sys

import numpy as np


def spread(path):
    rows = [json.loads(line) for line in open(path)]
    E = np.array([r["embedding"] for r in rows])
    ids = np.array([r["identity"] for r in rows])
    S = E @ E.T
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    g, i = S[same & off], S[~same]
    d = (g.mean() - i.mean()) / np.sqrt(0.5 * (g.var() + i.var()))
    return (f"genuine {g.mean():.3f}±{g.std():.3f}  impostor {i.mean():.3f}±{i.std():.3f}  "
            f"d' {d:.2f}  impostor 99.9th percentile {np.percentile(i, 99.9):.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        print(f"{path}: {spread(path)}")
