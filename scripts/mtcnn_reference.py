#!/usr/bin/env python3
"""Reference MTCNN detections for tests/detect_golden.rs, from facenet-pytorch itself.

Runs facenet-pytorch 2.6.0's own `MTCNN` (the implementation whose weights
models/mtcnn.safetensors holds) on every image of tests/fixtures/detect, each read as
grey and copied into R, G and B (the service detects on grey images), at the
detector's default settings (min_face_size 40, factor 0.709, thresholds 0.6/0.7/0.7)
and at min_face_size 20. Writes tests/fixtures/detect/mtcnn_reference.json:

    {"<file>": {"<min_face_size>": [{"box": [x1, y1, x2, y2], "prob": p,
                                     "landmarks": [[x, y] × 5]}, …]}}

Deterministic (no randomness; CPU, float32). Rerun from the repository root with a
Python that has torch, torchvision, pillow and facenet-pytorch (installed with
`pip install torch torchvision pillow` and `pip install --no-deps facenet-pytorch==2.6.0`):

    /work/pyenv/bin/python scripts/mtcnn_reference.py
"""

import json
from pathlib import Path

import torch
from facenet_pytorch import MTCNN
from PIL import Image

FIXTURES = Path("tests/fixtures/detect")
SIZES = (40, 20)


def main():
    torch.set_num_threads(1)
    out = {}
    files = sorted(p for p in FIXTURES.iterdir() if p.suffix in {".jpg", ".pgm", ".png"})
    for path in files:
        image = Image.open(path).convert("L").convert("RGB")
        per_size = {}
        for size in SIZES:
            mtcnn = MTCNN(keep_all=True, min_face_size=size, device="cpu")
            boxes, probs, points = mtcnn.detect(image, landmarks=True)
            faces = []
            if boxes is not None:
                for b, p, l in zip(boxes, probs, points):
                    faces.append(
                        {
                            "box": [float(v) for v in b],
                            "prob": float(p),
                            "landmarks": [[float(x), float(y)] for x, y in l],
                        }
                    )
            per_size[str(size)] = faces
        out[path.name] = per_size
        print(path.name, {k: len(v) for k, v in per_size.items()})
    (FIXTURES / "mtcnn_reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
