#!/usr/bin/env python3
"""Per-probe look at eval-embed exports (`eval-embed --export FILE`), with numpy.

    scripts/open_set_analysis.py EXPORT.jsonl [MIRRORED_EXPORT.jsonl]

Re-runs an approximation of eval-embed's open-set protocol (5 seeded rounds, half the
identities known with 5 enrolled images, best face per identity, DIR at FAR 1%) in
NumPy — its own random draws, so its numbers are close to, not equal to, eval-embed's —
and prints, per round, the misses of known probes by database (the identity's prefix
before '-', as written by examples/split-identities) and the strangers that set the
threshold. With a second export of the same images mirrored left-right, it also scores
the normalised sum of the two embeddings (flip averaging).
"""
import json
import os
import sys

import numpy as np


def load(path):
    rows = [json.loads(line) for line in open(path)]
    key = lambda r: (r["identity"], os.path.splitext(os.path.basename(r["path"]))[0])
    return {key(r): np.array(r["embedding"]) for r in rows}


def protocol(E, ids, rounds=5, k=5, seed=0, verbose=False):
    rng = np.random.default_rng(seed)
    uids = sorted(set(ids))
    out = []
    for r in range(rounds):
        known = set(rng.permutation(uids)[: len(uids) // 2])
        gal, gl, kp, up = [], [], [], []
        for u in uids:
            idx = rng.permutation(np.where(ids == u)[0])
            if u in known:
                e = idx[: min(k, len(idx) - 1)]
                gal += list(e)
                gl += [u] * len(e)
                kp += list(idx[len(e):])
            else:
                up += list(idx)
        names, gl = sorted(known), np.array(gl)

        def best(P):
            S = E[P] @ E[gal].T
            sc = np.stack([S[:, gl == n].max(1) for n in names], 1)
            return sc.max(1), np.array(names)[sc.argmax(1)]

        ks, kn = best(kp)
        us, un = best(up)
        t = np.sort(us)[::-1][int(0.01 * len(us))]
        ok = (kn == ids[kp]) & (ks > t)
        out.append(((kn == ids[kp]).mean(), ok.mean()))
        if verbose:
            db = np.array([ids[p].split("-")[0] for p in kp])
            misses = {d: int((~ok & (db == d)).sum()) for d in sorted(set(db))}
            top = np.argsort(-us)[:5]
            strangers = [(ids[up[i]], un[i], round(float(us[i]), 3)) for i in top]
            print(f"round {r}: threshold {t:.3f}, DIR@1% {ok.mean():.3f}, misses {misses}")
            print(f"  strangers above it: {strangers}")
    return np.mean(out, 0)


def main():
    a = load(sys.argv[1])
    keys = sorted(a)
    ids = np.array([k[0] for k in keys])
    E = np.stack([a[k] for k in keys])
    print("plain: rank-1 %.3f, DIR@1%% %.3f" % tuple(protocol(E, ids, verbose=True)))
    if len(sys.argv) > 2:
        b = load(sys.argv[2])
        M = E + np.stack([b[k] for k in keys])
        M /= np.linalg.norm(M, axis=1, keepdims=True)
        print("flip-averaged: rank-1 %.3f, DIR@1%% %.3f" % tuple(protocol(M, ids)))


if __name__ == "__main__":
    main()
