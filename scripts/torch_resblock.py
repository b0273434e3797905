"""Two ResNet BasicBlocks in PyTorch (torchvision's layout) and their fixture file.

Imported by scripts/torch_reference.py, which documents the fixtures and how to rerun.
Tensors are stored under the engine's names (`0.residual.body.0.conv2d.weight`, …) so the
test maps them without a table; PyTorch's convolutions have no bias (the engine's are
zero and their gradients must come out zero).
"""

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.downsample = None
        if stride != 1 or i != o:
            self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + skip)


def engine_names(index, block):
    """(engine name, PyTorch tensor) for every parameter and running statistic."""
    parts = [("body.0", block.conv1), ("body.1", block.bn1), ("body.3", block.conv2), ("body.4", block.bn2)]
    if block.downsample is not None:
        parts += [("shortcut.0", block.downsample[0]), ("shortcut.1", block.downsample[1])]
    for prefix, m in parts:
        base = f"{index}.residual.{prefix}"
        if isinstance(m, nn.Conv2d):
            yield f"{base}.conv2d.weight", m.weight
        else:
            yield f"{base}.batch_norm.gamma", m.weight
            yield f"{base}.batch_norm.beta", m.bias
            yield f"{base}.batch_norm.running_mean", m.running_mean
            yield f"{base}.batch_norm.running_var", m.running_var


def make_blocks():
    """A projection block (3 → 4 channels, stride 2) then an identity block (4 → 4)."""
    torch.manual_seed(3)
    blocks = nn.Sequential(BasicBlock(3, 4, 2), BasicBlock(4, 4, 1))
    with torch.no_grad():
        for m in blocks.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
    return blocks


def resblock_fixtures():
    blocks = make_blocks()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 9, 8, generator=g)
    r = torch.randn(4, 4, 5, 4, generator=g)  # E = Σ r ⊙ y
    t = {"input": x, "projection": r}
    for i, block in enumerate(blocks):
        for name, p in engine_names(i, block):
            if not name.endswith(("running_mean", "running_var")):
                t[f"param.{name}"] = p.detach().clone()
    model = blocks.double()
    model.train()
    xd = x.double().requires_grad_(True)
    y = model(xd)
    (y * r.double()).sum().backward()
    t["train.output"] = y.detach().float()
    t["grad.input"] = xd.grad.float()
    for i, block in enumerate(model):
        for name, p in engine_names(i, block):
            if name.endswith(("running_mean", "running_var")):
                t[f"train.{name}"] = p.detach().float().clone()
            else:
                t[f"grad.{name}"] = p.grad.float()
    model.eval()
    with torch.no_grad():
        t["eval.output"] = model(x.double()).float()
    return {k: v.contiguous() for k, v in t.items()}
