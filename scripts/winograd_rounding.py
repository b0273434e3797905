#!/usr/bin/env python3
"""Rounding error of Winograd's F(4×4, 3×3) and F(6×6, 3×3) in f32, with the matrices of
src/nn/winograd.rs and src/nn/winograd/six.rs (kernel, input and output transforms as matrix
products, the channel sum in the transformed domain; not the engine's order of operations), against the convolution in f64, relative to Σ |w|·|x|. One tile
of each form, 64 input channels, 200 seeded draws; prints, over the draws, the median and
the largest of a tile's largest relative error.

Run: python3 scripts/winograd_rounding.py   (needs numpy)
"""
import numpy as np

BT6 = np.array([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0], [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
                [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0], [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
                [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
                [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0], [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]])
G6 = np.array([[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9],
               [1 / 90, 1 / 45, 2 / 45], [1 / 90, -1 / 45, 2 / 45],
               [32 / 45, 16 / 45, 8 / 45], [32 / 45, -16 / 45, 8 / 45], [0, 0, 1]])
AT6 = np.array([[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
                [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0], [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
                [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0], [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1]])
BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
F = np.float32


def correlate(d, g, n):
    """The n×n outputs of a 3×3 cross-correlation of the tile d, in f64."""
    return np.array([[(d[i:i + 3, j:j + 3] * g).sum() for j in range(n)] for i in range(n)])


def worst(bt, g_m, at, draws, channels, rng):
    side, step = bt.shape[0], at.shape[0]
    errors = []
    for _ in range(draws):
        g = rng.standard_normal((channels, 3, 3)).astype(F)
        d = rng.standard_normal((channels, side, side)).astype(F)
        u = np.einsum('ia,cab,jb->cij', g_m.astype(F), g, g_m.astype(F)).astype(F)
        v = np.einsum('ia,cab,jb->cij', bt.astype(F), d, bt.astype(F)).astype(F)
        y = at.astype(F) @ (u * v).sum(0).astype(F) @ at.T.astype(F)
        want = sum(correlate(d[c].astype(np.float64), g[c].astype(np.float64), step)
                   for c in range(channels))
        scale = sum(correlate(np.abs(d[c]).astype(np.float64), np.abs(g[c]).astype(np.float64),
                              step) for c in range(channels))
        errors.append((np.abs(y - want) / scale).max())
    return np.median(errors), max(errors)


def main():
    rng = np.random.default_rng(0)
    for name, form in [("F(4x4, 3x3)", (BT4, G4, AT4)), ("F(6x6, 3x3)", (BT6, G6, AT6))]:
        median, largest = worst(*form, 200, 64, rng)
        print(f"{name}: a tile's largest error, median {median:.2e}, largest {largest:.2e}")


if __name__ == "__main__":
    main()
