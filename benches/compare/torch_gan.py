#!/usr/bin/env python3
"""The same GAN and training step as wgsl-gan, in PyTorch, for a side-by-side speed comparison.

    python3 benches/compare/torch_gan.py --device cpu --threads 2    # this machine's reference
    python3 benches/compare/torch_gan.py --device cuda               # eager CUDA on a GPU
    python3 benches/compare/torch_gan.py --epochs 5 --idx torch.idx  # train, write 2000 samples
    wgsl-gan eval --idx torch.idx                                    # ... and score them

Model, step and hyper-parameters follow src/gan/model.rs and src/gan/step.rs: D on a real batch
(target 1) and a fake batch (target 0) in two forward passes, loss = their mean, Adam on D; then G
with fresh noise and target 1 through D, Adam on G. The training set is held on the device and
batches are gathered there, as wgsl-gan does. Prints steady-state ms/step and images/s.
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
from torch import nn


def load_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, 28, 28)


def generator():
    return nn.Sequential(
        nn.Linear(100, 128), nn.LeakyReLU(0.2), nn.BatchNorm1d(128, eps=1e-3, momentum=0.2),
        nn.Linear(128, 128), nn.LeakyReLU(0.2), nn.BatchNorm1d(128, eps=1e-3, momentum=0.2),
        nn.Linear(128, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
    )


def discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3, 2, 1), nn.BatchNorm2d(128, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2048, 1),
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--data", default=os.path.join(here, "..", "..", "assets", "mnist", "train-images-idx3-ubyte.gz"))
    p.add_argument("--epochs", type=int, default=0, help="train whole epochs instead of timing steps")
    p.add_argument("--idx", help="with --epochs: write 2000 samples (G in eval mode) as an IDX file")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    images = torch.from_numpy(load_images(a.data).copy()).to(dev)
    g, d = generator().to(dev), discriminator().to(dev)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    bce = nn.BCEWithLogitsLoss()
    b = a.batch_size
    ones = torch.ones(b, 1, device=dev)
    zeros = torch.zeros(b, 1, device=dev)
    steps_per_epoch = images.shape[0] // b
    order = torch.randperm(images.shape[0], device=dev)

    def step(i):
        nonlocal order
        k = i % steps_per_epoch
        if k == 0:
            order = torch.randperm(images.shape[0], device=dev)
        real = images[order[k * b:(k + 1) * b]].float() / 127.5 - 1.0
        opt_d.zero_grad(set_to_none=True)
        loss_real = bce(d(real), ones)
        with torch.no_grad():
            fake = g(torch.randn(b, 100, device=dev))
        loss_fake = bce(d(fake), zeros)
        d_loss = 0.5 * (loss_real + loss_fake)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g_loss = bce(d(g(torch.randn(b, 100, device=dev))), ones)
        g_loss.backward()
        opt_g.step()
        return d_loss, g_loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.epochs:
        for i in range(a.epochs * steps_per_epoch):
            d_loss, g_loss = step(i)
            if (i + 1) % steps_per_epoch == 0:
                print(f"epoch {(i + 1) // steps_per_epoch}: d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f}")
        if a.idx:
            g.eval()
            with torch.no_grad():
                x = g(torch.randn(2000, 100, device=dev))
            px = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy().reshape(2000, 784)
            with open(a.idx, "wb") as f:
                for v in (0x803, 2000, 28, 28):
                    f.write(v.to_bytes(4, "big"))
                f.write(px.tobytes())
        return

    for i in range(a.warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.steps):
        d_loss, g_loss = step(i)
    sync()
    secs = time.perf_counter() - start
    ms = secs / a.steps * 1e3
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {a.threads} threads"
    print(f"torch {torch.__version__} ({name}), batch {b}: {ms:.2f} ms/step, {b * a.steps / secs:.0f} images/s "
          f"(d_loss {d_loss.item():.3f}, g_loss {g_loss.item():.3f})")


if __name__ == "__main__":
    main()
