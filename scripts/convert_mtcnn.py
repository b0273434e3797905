#!/usr/bin/env python3
"""Convert facenet-pytorch's MTCNN weights to models/mtcnn.safetensors (no torch needed).

The `facenet-pytorch` 2.6.0 wheel (MIT, Timothy Esler; the weights trace back to the
original MTCNN release by Zhang et al., MIT) ships P-Net, R-Net and O-Net as legacy
(pre-1.6) PyTorch pickles: a magic number, a protocol version and system info, each
pickled; then the state dict, pickled, whose tensors refer to storages by key; then the
list of storage keys; then each storage as an int64 element count and its raw
little-endian float32 bytes. A restricted unpickler reads them: only
`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage`
are allowed, so the file cannot run code.

The engine flattens feature maps in (C, H, W) order; R-Net and O-Net were trained
flattening in (W, H, C) order (`x.permute(0, 3, 2, 1)`). Their first linear layer's
input columns are permuted here once, so `W'[o, (c·H + h)·W + w] = W[o, (w·H + h)·C + c]`.

Rerun from the repository root (downloads the wheel with pip; about 1.9 MB):

    python3 scripts/convert_mtcnn.py            # writes models/mtcnn.safetensors
    python3 scripts/convert_mtcnn.py --wheel facenet_pytorch-2.6.0-py3-none-any.whl

The output is byte-for-byte deterministic for a given wheel.
"""

import argparse
import io
import json
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

WHEEL = "facenet-pytorch==2.6.0"
NETS = ("pnet", "rnet", "onet")
# (net, linear layer, final feature map (C, H, W)) whose input columns are reordered.
PERMUTED = {("rnet", "dense4"): (64, 3, 3), ("onet", "dense5"): (128, 3, 3)}


class StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return TensorRef(storage, offset, tuple(size), tuple(stride))


class FloatStorage:
    pass


class Restricted(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch", "FloatStorage"): FloatStorage,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, view = pid
        if kind != "storage" or storage_type is not FloatStorage or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        return StorageRef(key, numel)


def load_legacy(data):
    """The state dict of a legacy torch file as {name: (shape, [float])}."""
    f = io.BytesIO(data)
    magic = pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError("not a legacy PyTorch file")
    if pickle.load(f) != 1001:
        raise ValueError("unknown legacy protocol version")
    info = pickle.load(f)
    if not info.get("little_endian", False):
        raise ValueError("big-endian file")
    state = Restricted(f).load()
    keys = pickle.load(f)
    storages = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(4 * numel)
        if len(raw) != 4 * numel:
            raise ValueError(f"storage {key} truncated")
        storages[key] = struct.unpack(f"<{numel}f", raw)
    if f.read(1):
        raise ValueError("trailing bytes after the last storage")
    out = OrderedDict()
    for name, t in state.items():
        values = storages[t.storage.key]
        # Some tensors are stored transposed (column-major strides): gather each element
        # of the row-major result at its strided position.
        positions = [t.offset]
        for dim, stride in zip(t.size, t.stride):
            positions = [p + k * stride for p in positions for k in range(dim)]
        out[name] = (list(t.size), [values[p] for p in positions])
    return out


def permute_whc_to_chw(shape, values, chw):
    c, h, w = chw
    o, i = shape
    if i != c * h * w:
        raise ValueError(f"expected {c * h * w} inputs, got {i}")
    out = [0.0] * (o * i)
    for row in range(o):
        base = row * i
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    out[base + (ci * h + hi) * w + wi] = values[base + (wi * h + hi) * c + ci]
    return out


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help="a downloaded facenet-pytorch wheel (default: pip download)")
    ap.add_argument("--out", default="models/mtcnn.safetensors")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp],
                check=True,
            )
            wheel = next(Path(tmp).glob("facenet_pytorch-*.whl"))
        tensors = {}
        with zipfile.ZipFile(wheel) as z:
            for net in NETS:
                state = load_legacy(z.read(f"facenet_pytorch/data/{net}.pt"))
                for name, (shape, values) in state.items():
                    layer, _, _ = name.partition(".")
                    chw = PERMUTED.get((net, layer))
                    if chw is not None and name.endswith(".weight"):
                        values = permute_whc_to_chw(shape, values, chw)
                    tensors[f"{net}.{name}"] = (shape, values)
    metadata = {
        "source": "facenet-pytorch 2.6.0 facenet_pytorch/data/{pnet,rnet,onet}.pt (MIT)",
        "flatten": "rnet.dense4 and onet.dense5 inputs reordered to (C, H, W)",
    }
    write_safetensors(args.out, tensors, metadata)
    for name in sorted(tensors):
        print(f"{name:24s} {tensors[name][0]}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
