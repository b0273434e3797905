#!/usr/bin/env python3
"""The development analysis behind the impostor tail's settings (BENCHMARKS.md, "Open-set
FAR"): on calibration people only, never on the judged folds. It re-implements the
tail fit of src/eval/tail.rs and the promise check of src/eval/promise.rs in numpy.

    target/release/eval-embed --model models/default.safetensors --data data/lfw-calib \
        --detect --enroll 1 --rounds 1 --export runs/dev/calib.jsonl --out runs/dev/eval
    python3 scripts/tail_analysis.py fit    runs/dev/calib.jsonl  # fitted vs empirical exceedance
    python3 scripts/tail_analysis.py pairs  runs/dev/calib.jsonl  # the highest stranger pairs
    python3 scripts/tail_analysis.py splits runs/dev/calib.jsonl  # calibrate on a half, check the other

`splits` draws six random halves of the people, fits the tail (top 0.1%) on one half
and 30 identity-bootstrap resamples of it, and prints, per (bound quantile or None for
the point estimate, target FAR, gallery size), the measured/promised ratio on the other
half for each of the six splits (50 galleries drawn each) and their mean.
Needs numpy.
"""
import json
import sys
from collections import Counter

import numpy as np

def load(path):
    ids, embs = [], []
    for line in open(path):
        r = json.loads(line)
        ids.append(r["identity"]); embs.append(r["embedding"])
    x = np.asarray(embs, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return ids, x

def pwm_gpd(exc):  # ascending
    n = len(exc); a0 = exc.mean()
    j = np.arange(1, n + 1)
    a1 = ((1 - (j - 0.35) / n) * exc).mean()
    d = a0 - 2 * a1
    if d <= 0 or a0 <= 0:
        return 0.0, max(a0, 1e-6)
    return 2 - a0 / d, max(2 * a0 * a1 / d, 1e-9)

class Tail:
    def __init__(self, scores, frac=0.01):
        s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        n = len(s); m = max(int(np.ceil(frac * n)), 30)
        self.u = s[m]; self.zeta = m / n
        self.xi, self.sigma = pwm_gpd((s[:m] - self.u)[::-1])
        self.sorted = s
    def exceed(self, t):
        if t >= self.u:
            z = (t - self.u) / self.sigma
            if abs(self.xi) < 1e-9:
                tail = np.exp(-z)
            else:
                b = 1 + self.xi * z
                if b <= 0: return 0.0
                tail = b ** (-1 / self.xi)
            return min(self.zeta * tail, 1.0)
        s = self.sorted
        return np.searchsorted(-s, -t, side="right") / len(s)
    def threshold(self, far, n):
        lo, hi = -1.0, 1.0
        target = 1 - (1 - far) ** (1 / n)
        while hi - lo > 1e-6:
            mid = (lo + hi) / 2
            if self.exceed(mid) <= target: hi = mid
            else: lo = mid
        return hi

def groups_of(ids):
    g = {}
    for i, name in enumerate(ids):
        g.setdefault(name, []).append(i)
    return g

def impostor_scores(x, groups, names, rng):
    """Scores of every photo of the other `names` against one enrolled photo of each."""
    rows = np.concatenate([groups[n] for n in names])
    lab = np.concatenate([[k] * len(groups[n]) for k, n in enumerate(names)])
    out = []
    for k, n in enumerate(names):
        g = groups[n]
        if len(g) < 2:
            continue
        e = rng.choice(g, 1, replace=False)
        s = (x[rows] @ x[e].T).max(axis=1)
        out.append(s[lab != k])
    return np.concatenate(out)

def check(x, groups, names, tail, fars=(0.01, 0.001), draws=20, rng=None, sizes=None):
    eligible = [n for n in names if len(groups[n]) > 1]
    maxn = min(len(eligible), len(names) // 2)
    if sizes is None:
        sizes = [s for s in (5, 10, 20, 50, 100, 200, 500) if s < maxn] + [maxn]
    res = {}
    all_rows = np.concatenate([groups[n] for n in names])
    for n in sizes:
        ths = {f: tail.threshold(f, n) for f in fars}
        meas = {f: [] for f in fars}
        for _ in range(draws):
            gal = rng.choice(len(eligible), n, replace=False)
            gal_names = [eligible[i] for i in gal]
            enrolled = [rng.choice(groups[g]) for g in gal_names]
            ingal = set(r for g in gal_names for r in groups[g])
            strangers = np.array([r for r in all_rows if r not in ingal])
            best = (x[strangers] @ x[enrolled].T).max(axis=1)
            for f in fars:
                meas[f].append((best >= ths[f]).mean())
        for f in fars:
            m = np.array(meas[f])
            res[(f, n)] = (ths[f], m.mean(), m.mean() / f)
    return res



def fit(x, groups, names):
    rng = np.random.default_rng(5)
    s = impostor_scores(x, groups, names, rng)
    n = len(s)
    ss = np.sort(s)[::-1]
    for frac in (0.01, 0.003, 0.001, 0.0003):
        T = Tail(s, frac)
        print(f"top {frac}: u {T.u:.4f} xi {T.xi:.3f} sigma {T.sigma:.4f}")
        for k in (10, 30, 100, 300, 1000, 3000):
            t = ss[k - 1]
            emp = k / n
            print(f"   k={k:5d} t={t:.4f} empirical {emp:.2e} fitted {T.exceed(t):.2e} "
                  f"empirical/fitted {emp / T.exceed(t):.2f}")


def pairs(x, ids):
    S = x @ x.T
    lab = np.array([hash(i) for i in ids])
    S[lab[:, None] == lab[None, :]] = -1
    iu = np.triu_indices(len(ids), 1)
    v = S[iu]
    high = np.nonzero(v >= 0.95)[0]
    by = Counter(tuple(sorted((ids[iu[0][k]], ids[iu[1][k]]))) for k in high)
    print(f"{len(high)} stranger photo pairs at cosine >= 0.95, between {len(by)} pairs of people")
    for (a, b), c in by.most_common(15):
        print(f"  {c:3d}  {a} - {b}")


def splits(x, groups, names, frac=0.001, qs=(0.5, 0.8, 0.9), replicates=30):
    sizes = [5, 10, 20, 50, 100, 200]
    fars = (0.01, 0.001)

    def scores_with_labels(A, rng):
        rows = np.concatenate([groups[n] for n in A])
        lab = np.concatenate([[k] * len(groups[n]) for k, n in enumerate(A)])
        S, E, J = [], [], []
        for k, n in enumerate(A):
            e = rng.choice(groups[n])
            s = x[rows] @ x[e]
            keep = lab != k
            S.append(s[keep]); E.append(np.full(keep.sum(), k)); J.append(lab[keep])
        return np.concatenate(S), np.concatenate(E), np.concatenate(J)

    class Fixed:
        def __init__(self, t):
            self.t = t

        def threshold(self, f, n):
            return self.t[(f, n)]

    rng = np.random.default_rng(0)
    agg = {}
    for split in range(6):
        perm = rng.permutation(len(names))
        A = [names[i] for i in perm[: len(names) // 2]]
        B = [names[i] for i in perm[len(names) // 2:]]
        s, e, j = scores_with_labels(A, rng)
        ths = {}
        for _ in range(replicates):
            w = rng.multinomial(len(A), np.ones(len(A)) / len(A))
            T = Tail(np.repeat(s, w[e] * w[j]), frac)
            for f in fars:
                for n in sizes:
                    ths.setdefault((f, n), []).append(T.threshold(f, n))
        T0 = Tail(s, frac)
        for q in list(qs) + [None]:
            t = {k: (np.quantile(v, q) if q is not None else T0.threshold(*k)) for k, v in ths.items()}
            res = check(x, groups, B, Fixed(t), rng=np.random.default_rng(split), draws=50, sizes=sizes)
            for k, (th, m, r) in res.items():
                agg.setdefault((q,) + k, []).append((r, th))
    for key in sorted(agg, key=str):
        rs = [r for r, _ in agg[key]]
        print(key, " ".join(f"{r:.2f}" for r in rs), f"mean {np.mean(rs):.2f}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("fit", "pairs", "splits"):
        sys.exit(__doc__)
    ids, x = load(sys.argv[2])
    groups = groups_of(ids)
    names = sorted(groups)
    if sys.argv[1] == "fit":
        fit(x, groups, names)
    elif sys.argv[1] == "pairs":
        pairs(x, ids)
    else:
        splits(x, groups, names)


if __name__ == "__main__":
    main()
