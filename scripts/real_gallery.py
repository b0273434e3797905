#!/usr/bin/env python3
"""Index-benchmark files from real embeddings: a faceprint SQLite database → the files
`cargo bench --bench index -- --data DIR` writes, for `scripts/bench_hnswlib.py`.

Usage:
    FACEPRINT_DATABASE__URL=sqlite:///tmp/lfw.db \\
        target/release/faceprint-server import --detect ../shared/data/lfw
    python3 scripts/real_gallery.py /tmp/lfw.db /tmp/real-index
    python3 scripts/bench_hnswlib.py /tmp/real-index

Queries are one face of each identity with two or more faces (its newest), held out of
the base; the base is every other face, N of them. Writes `base_N.f32`,
`queries_N.f32` (row-major little-endian f32, D = 128) and `truth_N.u32` (each query's
exact top-10 base rows by inner product), and prints how the embeddings are spread:
the median similarity of the r-th nearest face, and how many principal directions hold
90% of the variance (the synthetic galleries of `tests/support/index.rs` are isotropic:
114 of 128 at 100 000 faces).
"""

import os
import sqlite3
import sys

import numpy as np

D = 128
K = 10


def main():
    db, out = sys.argv[1], sys.argv[2]
    rows = sqlite3.connect(db).execute(
        "SELECT identity_id, embedding FROM faces ORDER BY identity_id, id"
    ).fetchall()
    identity = np.array([r[0] for r in rows])
    vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32)
    assert vectors.shape[1] == D, vectors.shape
    # The last face of each identity that has another one is a query.
    last = np.r_[identity[1:] != identity[:-1], True]
    first = np.r_[True, identity[1:] != identity[:-1]]
    is_query = last & ~first
    base, queries = vectors[~is_query], vectors[is_query]
    n = len(base)
    sims = queries @ base.T
    truth = np.argsort(-sims, axis=1)[:, :K].astype("<u4")
    os.makedirs(out, exist_ok=True)
    base.astype("<f4").tofile(os.path.join(out, f"base_{n}.f32"))
    queries.astype("<f4").tofile(os.path.join(out, f"queries_{n}.f32"))
    truth.tofile(os.path.join(out, f"truth_{n}.u32"))

    ranked = -np.sort(-sims, axis=1)
    ranks = ", ".join(
        f"{r}: {np.median(ranked[:, r - 1]):.3f}" for r in [1, 2, 5, 10, 11, 20, 50, 100, 1000]
    )
    centred = base - base.mean(axis=0)
    var = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    p90 = int(np.searchsorted(np.cumsum(var) / var.sum(), 0.9)) + 1
    print(f"{len(rows)} faces of {len(np.unique(identity))} identities: base N = {n}, "
          f"{len(queries)} queries")
    print(f"median similarity of the r-th nearest base face, by r: {ranks}")
    print(f"principal directions holding 90% of the variance: {p90} of {D}")


if __name__ == "__main__":
    main()
