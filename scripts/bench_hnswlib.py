#!/usr/bin/env python3
"""hnswlib on the vectors `cargo bench --bench index -- --data DIR` wrote, at matched recall.

Usage:
    cargo bench --bench index -- --data /tmp/faceprint-index
    /work/pyenv/bin/python scripts/bench_hnswlib.py /tmp/faceprint-index [M EF_CONSTRUCTION]

For each size N with base_N.f32 / queries_N.f32 / truth_N.u32 in DIR (row-major
little-endian, D = 128; truth = exact face-level top-10 rows per query), builds an
hnswlib index (space "ip", i.e. distance 1 - <a, b>, the same as faceprint's
UnitCosine; M = 16, ef_construction = 200 unless given, 2 build threads like the Rust
bench), then sweeps ef and prints single-thread queries/s and recall@10. If the Rust bench also
wrote ours_N.csv (ef, recall, q/s, build s of hnsw_rs), it prints hnswlib's q/s at
each of our recalls (linear interpolation on hnswlib's recall curve) and the ratio.
"""

import os
import sys
import time

import hnswlib
import numpy as np

D = 128
K = 10
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768]
# Passes over the queries per ef; the fastest counts (the machine is shared, as in the
# Rust bench).
PASSES = 3


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def load(data_dir, n):
    base = np.fromfile(os.path.join(data_dir, f"base_{n}.f32"), dtype="<f4").reshape(-1, D)
    queries = np.fromfile(os.path.join(data_dir, f"queries_{n}.f32"), dtype="<f4").reshape(-1, D)
    truth = np.fromfile(os.path.join(data_dir, f"truth_{n}.u32"), dtype="<u4").reshape(-1, K)
    return base, queries, truth


def recall(labels, truth):
    hit = sum(len(set(row) & set(t)) for row, t in zip(labels.tolist(), truth.tolist()))
    return hit / truth.size


def tail(base, queries):
    """Median similarity of each query's r-th nearest face, for r in RANKS: how far the
    10 answers stand out from the rest of the gallery (a flat tail is hard for any graph)."""
    sims = queries @ base.T  # (Q, N)
    ranked = -np.sort(-sims, axis=1)
    return {r: float(np.median(ranked[:, r - 1])) for r in RANKS if r <= base.shape[0]}


RANKS = [1, 2, 5, 10, 11, 20, 50, 100, 1000]


def sweep(base, queries, truth, m, ef_construction):
    n = base.shape[0]
    rss0 = rss_bytes()
    index = hnswlib.Index(space="ip", dim=D)
    t0 = time.perf_counter()
    index.init_index(max_elements=n, M=m, ef_construction=ef_construction, random_seed=100)
    index.set_num_threads(2)
    index.add_items(base, np.arange(n))
    build = time.perf_counter() - t0
    mem = (rss_bytes() - rss0) / n
    index.set_num_threads(1)
    curve = []
    for ef in EFS:
        index.set_ef(max(ef, K))
        best = float("inf")
        for _ in range(PASSES):
            t0 = time.perf_counter()
            labels, _ = index.knn_query(queries, k=K)
            best = min(best, time.perf_counter() - t0)
        qps = len(queries) / best
        curve.append((ef, recall(labels, truth), qps))
    return build, mem, curve


def qps_at(curve, target):
    """hnswlib's q/s at recall `target`, interpolated; None if it never gets there."""
    pts = sorted((r, q) for _, r, q in curve)
    if target <= pts[0][0]:
        return pts[0][1]
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/faceprint-index"
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    ef_construction = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    sizes = sorted(
        int(f[len("base_"):-len(".f32")]) for f in os.listdir(data_dir) if f.startswith("base_")
    )
    print(f"hnswlib {getattr(hnswlib, '__version__', '?')}, numpy {np.__version__}")
    for n in sizes:
        base, queries, truth = load(data_dir, n)
        ranks = ", ".join(f"{r}: {s:.3f}" for r, s in tail(base, queries).items())
        print(f"\nN = {n}: median similarity of the r-th nearest face, by r: {ranks}")
        build, mem, curve = sweep(base, queries, truth, m, ef_construction)
        print(f"N = {n}: hnswlib M = {m}, ef_construction = {ef_construction}: "
              f"build {build:.3f} s (2 threads), RSS {mem:.0f} bytes/point")
        print("| ef | recall@10 | q/s |")
        print("|---|---|---|")
        for ef, r, q in curve:
            print(f"| {ef} | {r:.4f} | {q:.0f} |")
        ours = os.path.join(data_dir, f"ours_{n}.csv")
        if not os.path.exists(ours):
            continue
        rows = np.loadtxt(ours, delimiter=",", ndmin=2)
        print("\n| hnsw_rs ef | recall@10 | hnsw_rs q/s | hnswlib q/s at that recall | hnswlib / hnsw_rs | build hnsw_rs / hnswlib |")
        print("|---|---|---|---|---|---|")
        for ef, r, q, b in rows:
            theirs = qps_at(curve, r)
            ratio = f"{theirs / q:.2f}" if theirs else "—"
            shown = f"{theirs:.0f}" if theirs else "not reached"
            print(f"| {ef:.0f} | {r:.4f} | {q:.0f} | {shown} | {ratio} | {b / build:.2f} |")


if __name__ == "__main__":
    main()
