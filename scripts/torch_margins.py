"""The angular-margin heads (CosFace, ArcFace, SphereFace) written independently in
PyTorch, and their fixture file.

Imported by scripts/torch_reference.py, which documents the fixtures and how to rerun.
ArcFace follows insightface's ArcMarginProduct (sqrt(1 − cos²) clamped, fallback
cos θ − m·sin m past θ + m = π, or the easy margin); SphereFace follows the A-Softmax
implementations that compute cos(mθ) by its polynomial in cos θ, k = ⌊mθ/π⌋ from acos,
ψ = (−1)^k cos(mθ) − 2k, and blend (λ cos θ + ψ)/(1 + λ).
"""

import json
import math

import torch
import torch.nn.functional as F

N, K, C = 8, 6, 5
LABELS = [0, 3, 1, 4, 2, 0, 3, 1]
# Each case is the engine's `HeadConfig` as JSON (stored in the file's metadata).
CASES = {
    "cosface": {"kind": "cosine", "scale": 16.0, "margin": 0.35},
    "arcface": {"kind": "arcface", "scale": 16.0, "margin": 0.5, "easy_margin": False},
    "arcface_easy": {"kind": "arcface", "scale": 16.0, "margin": 0.5, "easy_margin": True},
    "sphereface": {"kind": "sphereface", "scale": 16.0, "margin": 4, "lambda": 0.0},
    "sphereface_lambda": {"kind": "sphereface", "scale": 16.0, "margin": 3, "lambda": 5.0},
}
GAP = 1e-3  # every true-class cosine this far from a switch of ψ and from ±1


def chebyshev(m, c):
    t0, t1 = torch.ones_like(c), c
    for _ in range(1, m):
        t0, t1 = t1, 2 * c * t1 - t0
    return t1


def psi(case, cos):
    m = case["margin"]
    if case["kind"] == "cosine":
        return cos - m
    if case["kind"] == "arcface":
        sine = torch.sqrt((1.0 - cos**2).clamp(0, 1))
        phi = cos * math.cos(m) - sine * math.sin(m)
        if case["easy_margin"]:
            return torch.where(cos > 0, phi, cos)
        th, mm = math.cos(math.pi - m), math.sin(math.pi - m) * m
        return torch.where(cos > th, phi, cos - mm)
    lam = case["lambda"]
    theta = cos.detach().acos()
    k = (m * theta / math.pi).floor()
    phi = (-1.0) ** k * chebyshev(m, cos) - 2 * k
    return (lam * cos + phi) / (1 + lam)


def logits_and_loss(case, x, w, labels):
    cos = x @ F.normalize(w, dim=1).t()  # x is unit length already; the head does not renormalise it
    target = torch.zeros_like(cos, dtype=torch.bool)
    target[torch.arange(len(labels)), labels] = True
    # ψ of every entry, kept on the true class only (no cosine is ±1, so no ψ' is infinite)
    logits = case["scale"] * torch.where(target, psi(case, cos), cos)
    return logits, F.cross_entropy(logits, labels)


def switches(case):
    m = case["margin"]
    if case["kind"] == "arcface":
        return [0.0] if case["easy_margin"] else [math.cos(math.pi - m)]
    if case["kind"] == "sphereface":
        return [math.cos(j * math.pi / m) for j in range(1, m)]
    return []


def inputs():
    """Unit rows x, weights w: the first seed whose true-class cosines keep GAP from every
    switch, with both sides of ArcFace's switch used (two rows point away from their class)."""
    labels = torch.tensor(LABELS)
    for seed in range(10_000):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(C, K, generator=g).float()
        x = torch.randn(N, K, generator=g).double()
        w_hat = F.normalize(w.double(), dim=1)
        x[:2] = -3 * w_hat[labels[:2]] + 0.3 * x[:2]
        x = F.normalize(x, dim=1).float()
        cos = (x.double() @ F.normalize(w.double(), dim=1).t())[torch.arange(N), labels]
        cuts = [s for case in CASES.values() for s in switches(case)]
        near = min(abs(c - s) for c in cos.tolist() for s in cuts)
        if near > GAP and cos.abs().max() < 1 - GAP and cos.min() < math.cos(math.pi - 0.5):
            print(f"margin inputs: seed {seed}")
            return x, w, labels
    raise SystemExit("no seed gives margin inputs away from every switch")


def margin_fixtures():
    x, w, labels = inputs()
    t = {"x": x, "weight": w, "labels": labels}
    for name, case in CASES.items():
        xd = x.double().clone().requires_grad_(True)
        wd = w.double().clone().requires_grad_(True)
        logits, loss = logits_and_loss(case, xd, wd, labels)
        loss.backward()
        t[f"{name}.logits"] = logits.detach().float()
        t[f"{name}.loss"] = loss.detach().reshape(1).float()
        t[f"{name}.grad.x"] = xd.grad.float()
        t[f"{name}.grad.weight"] = wd.grad.float()
    return t, {"cases": json.dumps(CASES)}
