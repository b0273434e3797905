"""The losses of nn::loss written independently in PyTorch, and their fixture file.

Imported by scripts/torch_reference.py, which documents the fixtures and how to rerun.
"""

import torch
import torch.nn.functional as F

SQRT_EPS = 1e-12  # ε inside √ of the Euclidean distance (nn::loss::SQRT_EPS)
KINK_GAP = 1e-3


def pairwise(x, squared):
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return sq if squared else torch.sqrt(sq + SQRT_EPS)


def masks(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return same & ~eye, ~same  # positives (a ≠ p), negatives


def triplet_all(x, labels, margin, squared, soft=False):
    """Batch all: mean of the positive terms over every valid (a, p, n); soft margin:
    mean of softplus over every valid triplet."""
    d = pairwise(x, squared)
    pos, neg = masks(labels)
    valid = pos[:, :, None] & neg[:, None, :]
    z = (d[:, :, None] - d[:, None, :] + margin)[valid]
    active = (z > 0).sum()
    if soft:
        return F.softplus(z).mean(), valid.sum(), active
    return F.relu(z).sum() / active.clamp(min=1), valid.sum(), active


def triplet_batch_hard(x, labels, margin, squared, soft=False):
    """Batch hard: farthest positive and nearest negative per anchor, mean over anchors."""
    d = pairwise(x, squared)
    pos, neg = masks(labels)
    hardest_pos = torch.where(pos, d, torch.zeros_like(d)).max(1).values
    hardest_neg = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
    z = hardest_pos - hardest_neg + margin
    terms = F.softplus(z) if soft else F.relu(z)
    return terms.mean(), torch.tensor(len(labels)), (z > 0).sum()


def _masked_maximum(data, mask, dim=1):
    axis_minimums = data.min(dim, keepdim=True).values
    return ((data - axis_minimums) * mask).max(dim, keepdim=True).values + axis_minimums


def _masked_minimum(data, mask, dim=1):
    axis_maximums = data.max(dim, keepdim=True).values
    return ((data - axis_maximums) * mask).min(dim, keepdim=True).values + axis_maximums


def triplet_semi_hard(x, labels, margin, squared, soft=False):
    """A line-by-line port of TensorFlow Addons' triplet_semihard_loss (soft margin:
    softplus instead of its hinge, over the same pairs)."""
    pdist = pairwise(x, squared)
    n = len(labels)
    adjacency = (labels[:, None] == labels[None, :]).to(x.dtype)
    adjacency_not = 1 - adjacency
    pdist_tile = pdist.repeat(n, 1)
    mask = adjacency_not.repeat(n, 1) * (pdist_tile > pdist.t().reshape(-1, 1)).to(x.dtype)
    mask_final = (mask.sum(1, keepdim=True) > 0).reshape(n, n).t()
    negatives_outside = _masked_minimum(pdist_tile, mask).reshape(n, n).t()
    negatives_inside = _masked_maximum(pdist, adjacency_not).repeat(1, n)
    semi_hard = torch.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = margin + pdist - semi_hard
    mask_positives = adjacency - torch.eye(n, dtype=x.dtype)
    if soft:
        z = loss_mat[mask_positives > 0]
        return F.softplus(z).mean(), mask_positives.sum(), (z > 0).sum()
    terms = F.relu(loss_mat * mask_positives)
    return terms.sum() / mask_positives.sum(), mask_positives.sum(), (terms > 0).sum()


def contrastive(x, labels, margin, balanced):
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d = torch.sqrt(sq + SQRT_EPS)
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    same = labels[i] == labels[j]
    pair = torch.where(same, 0.5 * sq[i, j], 0.5 * F.relu(margin - d[i, j]) ** 2)
    if balanced:
        loss = 0.5 * (pair[same].mean() + pair[~same].mean())
    else:
        loss = pair.mean()
    return loss, torch.tensor(len(pair)), (pair > 0).sum()


MININGS = {"all": triplet_all, "batch_hard": triplet_batch_hard, "semi_hard": triplet_semi_hard}
MARGINS = {"euclidean": 1.0, "squared": 6.0}
CONTRASTIVE_MARGIN = 5.0
LABELS = [7, 2, 5, 7, 9, 2, 9, 5]  # P = 4 identities × K = 2, in mixed order


def away_from_kinks(x, labels):
    """Every margin comparison and every tie between distances from one anchor ≥ KINK_GAP."""
    pos, neg = masks(labels)
    for name, margin in MARGINS.items():
        d = pairwise(x, name == "squared")
        diff = d[:, :, None] - d[:, None, :]
        n = len(labels)
        off = ~torch.eye(n, dtype=torch.bool)
        distinct = off[:, :, None] & off[:, None, :] & ~torch.eye(n, dtype=torch.bool)[None]
        if diff[distinct].abs().min() < KINK_GAP:
            return False
        valid = pos[:, :, None] & neg[:, None, :]
        if (diff + margin)[valid].abs().min() < KINK_GAP:
            return False
    d = pairwise(x, False)
    return (d[neg] - CONTRASTIVE_MARGIN).abs().min() >= KINK_GAP


def uses_every_branch(x, labels):
    for name, margin in MARGINS.items():
        for mining in MININGS.values():
            _, terms, active = mining(x, labels, margin, name == "squared")
            if not 0 < active < terms:
                return False
        d = pairwise(x, name == "squared")
        pos, neg = masks(labels)
        farthest_negative = torch.where(neg, d, torch.zeros_like(d)).max(1).values
        fallback = (farthest_negative[:, None] < d)[pos]  # every negative nearer than p
        if not (fallback.any() and not fallback.all()):
            return False
    _, terms, active = contrastive(x, labels, CONTRASTIVE_MARGIN, False)
    return 0 < active < terms


def embedding_batch():
    labels = torch.tensor(LABELS)
    ids = sorted(set(LABELS))
    for seed in range(10_000):
        g = torch.Generator().manual_seed(seed)
        centres = torch.randn(len(ids), 16, generator=g)
        noise = 0.8 * torch.randn(len(LABELS), 16, generator=g)
        x = (centres[[ids.index(label) for label in LABELS]] + noise).float().double()
        if away_from_kinks(x, labels) and uses_every_branch(x, labels):
            print(f"embedding batch: seed {seed}")
            return x, labels
    raise SystemExit("no seed gives an embedding batch away from kinks")


def value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    out = fn(x)
    loss = out[0] if isinstance(out, tuple) else out
    loss.backward()
    return loss.detach(), x.grad, out[1:] if isinstance(out, tuple) else ()


def loss_fixtures():
    t = {}
    g = torch.Generator().manual_seed(1)

    def record(prefix, fn, x):
        loss, grad, counts = value_and_grad(fn, x)
        t[f"{prefix}.loss"] = loss.reshape(1).float()
        t[f"{prefix}.grad"] = grad.float()
        if counts:
            t[f"{prefix}.terms"] = counts[0].reshape(1).long()
            t[f"{prefix}.active"] = counts[1].reshape(1).long()

    # softmax cross-entropy, ordinary and ±1e4 logits
    logits = (3 * torch.randn(6, 5, generator=g)).float().double()
    targets = torch.tensor([0, 4, 2, 2, 1, 3])
    t["ce.logits"], t["ce.targets"] = logits.float(), targets
    record("ce", lambda z: F.cross_entropy(z, targets), logits)
    big = torch.tensor([[1e4, -1e4, 0.0, 3.0], [1e4, 1e4 - 1.5, -1e4, 2.0], [-1e4, -1e4, -1e4 + 0.25, -1e4]])
    big_targets = torch.tensor([1, 0, 2])
    t["ce_big.logits"], t["ce_big.targets"] = big.float(), big_targets
    record("ce_big", lambda z: F.cross_entropy(z, big_targets), big.double())

    # squared error ½‖d − y‖², mean over rows
    d = torch.randn(4, 3, generator=g).float().double()
    y = torch.randn(4, 3, generator=g).float().double()
    t["mse.output"], t["mse.target"] = d.float(), y.float()
    record("mse", lambda d: 0.5 * ((d - y) ** 2).sum(1).mean(), d)

    # embedding losses on one P×K batch
    x, labels = embedding_batch()
    t["emb.x"], t["emb.labels"] = x.float(), labels
    for distance, margin in MARGINS.items():
        t[f"triplet.{distance}.margin"] = torch.tensor([margin], dtype=torch.float32)
        for mining, fn in MININGS.items():
            record(
                f"triplet.{mining}.{distance}",
                lambda x, fn=fn, margin=margin, sq=(distance == "squared"): fn(x, labels, margin, sq),
                x,
            )
            record(
                f"triplet_soft.{mining}.{distance}",
                lambda x, fn=fn, margin=margin, sq=(distance == "squared"): fn(x, labels, margin, sq, True),
                x,
            )
    t["contrastive.margin"] = torch.tensor([CONTRASTIVE_MARGIN], dtype=torch.float32)
    for weighting in ["all_pairs", "balanced"]:
        record(
            f"contrastive.{weighting}",
            lambda x, b=(weighting == "balanced"): contrastive(x, labels, CONTRASTIVE_MARGIN, b),
            x,
        )
    return t

