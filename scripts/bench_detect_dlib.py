#!/usr/bin/env python3
"""dlib's HOG face detector (and its 5-point landmarks, when the model file is given) on
the scenes `cargo bench --bench detect` writes to target/bench-scenes, timed the same
way: median milliseconds per image over FACEPRINT_BENCH_SECONDS (default 5) of runs.
No upsampling (dlib's smallest face is then about 80 pixels; with one upsampling 40, at
about four times the cost). Needs `pip install dlib-bin pillow numpy`.
"""

import os
import sys
import time
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

budget = float(os.environ.get("FACEPRINT_BENCH_SECONDS", "5"))
scenes = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench-scenes")
detector = dlib.get_frontal_face_detector()
print(f"dlib {dlib.__version__}, load average: {open('/proc/loadavg').read().strip()}")
for name in ("640x480.png", "1920x1080.png"):
    image = np.asarray(Image.open(scenes / name).convert("L"))
    for upsample in (0, 1):
        found = len(detector(image, upsample))
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < budget or len(times) < 5:
            t = time.perf_counter()
            detector(image, upsample)
            times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        print(
            f"dlib HOG {name[:-4]} upsample {upsample}: {times[len(times) // 2]:.1f} ms median "
            f"({times[0]:.1f}–{times[-1]:.1f}, {len(times)} runs), {found} faces found"
        )
