#!/usr/bin/env python3
"""How often batch-hard mining's hardest positive is a dark Extended Yale B face.

    scripts/hardest_positives.py EXPORT.jsonl

EXPORT is `eval-embed --export` of a training folder whose Yale B identities are named
`yaleb-*` (as examples/split-identities writes them). For each Yale B face, 20 times:
draw 3 other faces of its identity (a 16×4 batch holds K = 4 per identity) and take
the farthest under the embedding, as batch-hard mining does. Prints how often that
positive is among the darkest quarter and tenth of Yale B faces (mean grey level of
the raw image; chance is 25% and 10%), and the mean genuine cosine of the darkest tenth
against the rest.
"""
import json
import sys

import numpy as np
from PIL import Image

if len(sys.argv) != 2:
    sys.exit(__doc__)
rows = [json.loads(line) for line in open(sys.argv[1])]
E = np.array([r["embedding"] for r in rows])
ids = np.array([r["identity"] for r in rows])
bright = np.array([np.asarray(Image.open(r["path"]).convert("L"), dtype=float).mean() for r in rows])
yale = np.array([i.startswith("yaleb") for i in ids])
S = E @ E.T
hardest = []
for a in np.where(yale)[0]:
    same = np.where((ids == ids[a]) & (np.arange(len(ids)) != a))[0]
    rng = np.random.default_rng(a)
    for _ in range(20):
        pos = rng.choice(same, 3, replace=False)
        hardest.append(pos[np.argmin(S[a, pos])])
hardest = np.array(hardest)
q25, q10 = np.percentile(bright[yale], [25, 10])
print(f"Yale B faces: {yale.sum()}; darkest quarter: mean grey < {q25:.1f}, tenth < {q10:.1f}")
print(f"hardest positive in the darkest quarter: {(bright[hardest] < q25).mean():.2f} (chance 0.25)")
print(f"hardest positive in the darkest tenth: {(bright[hardest] < q10).mean():.2f} (chance 0.10)")
genuine = np.array([S[a, (ids == ids[a]) & (np.arange(len(ids)) != a)].mean() for a in np.where(yale)[0]])
dark = bright[yale] < q10
print(f"mean genuine cosine: darkest tenth {genuine[dark].mean():.3f}, the rest {genuine[~dark].mean():.3f}")
