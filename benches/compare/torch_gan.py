#!/usr/bin/env python3
"""The same GAN and training step as wgsl-gan, in PyTorch (article_gan.py), for speed and quality.

    python3 benches/compare/torch_gan.py --device cpu --threads 2    # this machine's reference
    python3 benches/compare/torch_gan.py --device cuda               # eager CUDA on a GPU
    python3 benches/compare/torch_gan.py --epochs 5 --idx torch.idx  # train, write samples
    wgsl-gan eval --idx torch.idx                                    # ... and score them

Model, initialisation, step and hyper-parameters are wgsl-gan's (tests/golden.rs checks that the
two compute the same step). The training set is held on the device and batches are gathered there,
as wgsl-gan does. Prints steady-state ms/step and images/s, or with --epochs the losses per epoch.
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch

import article_gan as A


def load_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, 28, 28)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--model", choices=sorted(A.GENERATORS), default="mlp")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--data", default=os.path.join(here, "..", "..", "assets", "mnist", "train-images-idx3-ubyte.gz"))
    p.add_argument("--epochs", type=int, default=0, help="train whole epochs instead of timing steps")
    p.add_argument("--idx", help="with --epochs: write --samples images (G in inference mode) as an IDX file")
    p.add_argument("--samples", type=int, default=10000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    images = torch.from_numpy(load_images(a.data).copy()).to(dev)
    g, d = A.GENERATORS[a.model](), A.discriminator()
    A.glorot_(g)
    A.glorot_(d)
    g, d = g.to(dev), d.to(dev)
    opt_g, opt_d = A.adam(g.parameters()), A.adam(d.parameters())
    b = a.batch_size
    steps_per_epoch = images.shape[0] // b
    order = torch.randperm(images.shape[0], device=dev)

    def step(i):
        nonlocal order
        k = i % steps_per_epoch
        if k == 0:
            order = torch.randperm(images.shape[0], device=dev)
        real = images[order[k * b:(k + 1) * b]].float() / 127.5 - 1.0
        z = torch.randn(2, b, A.LATENT, device=dev)
        return A.train_step(g, d, opt_g, opt_d, real, z[0], z[1])

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.epochs:
        for i in range(a.epochs * steps_per_epoch):
            s = step(i)
            if (i + 1) % steps_per_epoch == 0:
                s = s.tolist()
                print(f"epoch {(i + 1) // steps_per_epoch}: d_loss {0.5 * (s[0] + s[2]):.4f} g_loss {s[4]:.4f} "
                      f"D(x) {s[1]:.3f} D(G(z)) {s[3]:.3f}", flush=True)
        if a.idx:
            g.eval()
            with torch.no_grad():
                x = torch.cat([g(torch.randn(500, A.LATENT, device=dev)) for _ in range(-(-a.samples // 500))])[:a.samples]
            px = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy().reshape(a.samples, 784)
            with open(a.idx, "wb") as f:
                for v in (0x803, a.samples, 28, 28):
                    f.write(v.to_bytes(4, "big"))
                f.write(px.tobytes())
        return

    for i in range(a.warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.steps):
        s = step(i)
    sync()
    secs = time.perf_counter() - start
    ms = secs / a.steps * 1e3
    s = s.tolist()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {a.threads} threads"
    print(f"torch {torch.__version__} ({name}), {a.model}, batch {b}: {ms:.2f} ms/step, {b * a.steps / secs:.0f} images/s "
          f"(d_loss {0.5 * (s[0] + s[2]):.3f}, g_loss {s[4]:.3f})")


if __name__ == "__main__":
    main()
