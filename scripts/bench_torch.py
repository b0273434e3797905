#!/usr/bin/env python3
"""PyTorch's speed on the engine benchmark's networks, for comparison with
`cargo bench --bench engine` (`scripts/bench_engine_vs_torch.sh` alternates the two).

cnn: the reference CNN (input 1x56x48; conv 1-32-64-128 3x3 pad 1, each + BN + ReLU +
maxpool 2; flatten; linear 256 + BN + ReLU + dropout 0.5; linear 128; L2 normalisation),
batch 64.
resnet: the engine's ResNet-14 at 1x112x96 (stem conv 3x3 32 + BN + ReLU; stages 32, 64,
128 of two BasicBlocks, stride 2 at the first block of stages 2 and 3; global average
pool; dropout 0; linear 128 + BN; L2 normalisation), batch 16. Its blocks are
scripts/torch_resblock.py's (torchvision's layout: convolutions without bias, where the
engine's have a zero bias: 1/288 of the work or less).

Same loss E = sum(R * y) for a fixed random R, Adam (lr 1e-3), 2 threads. The load
average is printed before and after each network: figures from a busy machine are not
comparable with idle ones.

Run: /work/torchenv/bin/python scripts/bench_torch.py [--seconds 5] [--net cnn|resnet|both]
Prints `cnn train_step_b64: <n> images/s`, `cnn infer_b64: …`, `cnn infer_b1: …`.
"""

import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_resblock import BasicBlock


class L2Norm(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=1, eps=1e-12)


def reference_cnn():
    layers = []
    channels = 1
    for width in (32, 64, 128):
        layers += [
            nn.Conv2d(channels, width, 3, stride=1, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels = width
    layers += [
        nn.Flatten(),
        nn.Linear(128 * 7 * 6, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, 128),
        L2Norm(),
    ]
    return nn.Sequential(*layers)


def resnet14():
    layers = [nn.Conv2d(1, 32, 3, stride=1, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
    channels = 32
    for stage, width in enumerate((32, 64, 128)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(channels, width, stride))
            channels = width
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.0),
        nn.Linear(channels, 128),
        nn.BatchNorm1d(128),
        L2Norm(),
    ]
    return nn.Sequential(*layers)


def rate(images, seconds, step):
    """Images per second of `step` over at least `seconds`, after two warm-up calls."""
    step()
    step()
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < seconds or steps < 3:
        step()
        steps += 1
    return steps * images / (time.perf_counter() - start)


def load_average():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_times():
    """(steal, total) CPU jiffies since boot from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        return fields[7], sum(fields)
    except (OSError, ValueError, IndexError):
        return None


def steal_since(start):
    """Share of CPU time the hypervisor gave to other guests since `start`."""
    end = cpu_times()
    if start is None or end is None or end[1] <= start[1]:
        return "unknown"
    return f"{100 * (end[0] - start[0]) / (end[1] - start[1]):.0f}%"


def bench(name, net, batch, size, seconds):
    torch.manual_seed(0)
    h, w = size
    xb = torch.rand(batch, 1, h, w) * 2 - 1
    x1 = torch.rand(1, 1, h, w) * 2 - 1
    r = torch.rand(batch, 128) * 2 - 1
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)

    def train_step():
        adam.zero_grad()
        y = net(xb)
        (y * r).sum().backward()
        adam.step()

    print(f"{name}: load average {load_average()}", flush=True)
    cpu_start = cpu_times()
    net.train()
    train = rate(batch, seconds, train_step)
    print(f"{name} train_step_b{batch}: {train:.1f} images/s", flush=True)

    net.eval()
    with torch.inference_mode():
        infer_b = rate(batch, seconds, lambda: net(xb))
        print(f"{name} infer_b{batch}: {infer_b:.1f} images/s", flush=True)
        infer1 = rate(1, seconds, lambda: net(x1))
        print(f"{name} infer_b1: {infer1:.1f} images/s", flush=True)
    print(
        f"{name}: load average {load_average()}, CPU time stolen by the hypervisor "
        f"during the figures {steal_since(cpu_start)}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--net", choices=["cnn", "resnet", "both"], default="cnn")
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    if args.net in ("cnn", "both"):
        bench("cnn", reference_cnn(), 64, (56, 48), args.seconds)
    if args.net in ("resnet", "both"):
        torch.manual_seed(0)
        bench("resnet", resnet14(), 16, (112, 96), args.seconds)


if __name__ == "__main__":
    main()
