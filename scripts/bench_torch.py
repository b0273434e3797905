#!/usr/bin/env python3
"""PyTorch's speed on the reference CNN, for comparison with `cargo bench --bench engine`.

Same model (input 1x56x48; conv 1-32-64-128 3x3 pad 1, each + BN + ReLU + maxpool 2;
flatten; linear 256 + BN + ReLU + dropout 0.5; linear 128; L2 normalisation), same batch,
same loss E = sum(R * y) for a fixed random R, Adam (lr 1e-3), 2 threads.

Run: /work/pyenv/bin/python scripts/bench_torch.py [--seconds 5]
Prints `train_step_b64: <n> images/s`, `infer_b64: …`, `infer_b1: …`.
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = reference_cnn()
    x64 = torch.rand(64, 1, 56, 48) * 2 - 1
    x1 = torch.rand(1, 1, 56, 48) * 2 - 1
    r = torch.rand(64, 128) * 2 - 1
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)

    def train_step():
        adam.zero_grad()
        y = net(x64)
        (y * r).sum().backward()
        adam.step()

    net.train()
    train = rate(64, args.seconds, train_step)
    print(f"train_step_b64: {train:.1f} images/s", flush=True)

    net.eval()
    with torch.inference_mode():
        infer64 = rate(64, args.seconds, lambda: net(x64))
        print(f"infer_b64: {infer64:.1f} images/s", flush=True)
        infer1 = rate(1, args.seconds, lambda: net(x1))
        print(f"infer_b1: {infer1:.1f} images/s", flush=True)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
