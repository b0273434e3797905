#!/usr/bin/env python3
"""Do two faceprint model files hold bit-identical weights?

    python3 scripts/same_weights.py A.safetensors B.safetensors

Compares every tensor's name, dtype, shape and bytes, and the recorded model version
(the hash of the weights); the rest of the metadata (training time, paths) may differ.
Exit status 0 when identical, 1 otherwise. Used to check that a change to the engine or
the trainer leaves a recipe's training bit-for-bit the same (README, "Train").
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {
        name: (t["dtype"], tuple(t["shape"]), body[t["data_offsets"][0] : t["data_offsets"][1]])
        for name, t in header.items()
    }
    version = json.loads(meta.get("faceprint", "{}")).get("version")
    return tensors, version


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    (a, va), (b, vb) = read(sys.argv[1]), read(sys.argv[2])
    differ = sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))
    print(f"{len(a)} and {len(b)} tensors; versions {va} and {vb}")
    if differ or va != vb:
        print(f"DIFFERENT: {len(differ)} tensors differ, e.g. {differ[:5]}")
        sys.exit(1)
    print("identical weights")


if __name__ == "__main__":
    main()
