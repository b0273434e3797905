#!/usr/bin/env python3
"""A face crop embedded whole (`detect=false`) against the same crop detected and aligned:
the cosine between the two embeddings from a running server's /embed, over every second
image of a folder of identity sub-folders (BENCHMARKS.md, "A face crop with and without
detection"). Needs numpy.

    FACEPRINT_SERVER__BIND=127.0.0.1:8099 cargo run --release &   # the model to judge
    python3 scripts/crop_agreement.py http://127.0.0.1:8099 ../shared/data/orl
"""

import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np


def embed(url, path, detect):
    body = json.dumps({"image": base64.b64encode(path.read_bytes()).decode(), "detect": detect})
    request = urllib.request.Request(
        f"{url}/embed", data=body.encode(), headers={"content-type": "application/json"}
    )
    try:
        return np.array(json.load(urllib.request.urlopen(request))["embedding"])
    except urllib.error.HTTPError:
        return None


def main():
    url, folder = sys.argv[1], Path(sys.argv[2])
    cosines, missed = [], 0
    for path in sorted(p for p in folder.glob("*/*") if p.is_file())[::2]:
        detected = embed(url, path, True)
        if detected is None:
            missed += 1
            continue
        cosines.append(float(detected @ embed(url, path, False)))
    c = np.array(cosines)
    print(
        f"{len(c)} crops with a face ({missed} without); cosine detected vs whole: median "
        f"{np.median(c):.3f}, mean {c.mean():.3f}, min {c.min():.3f}, share >= 0.98 {(c >= 0.98).mean():.3f}"
    )


if __name__ == "__main__":
    main()
