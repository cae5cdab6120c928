#!/usr/bin/env python3
"""The article's GAN as a PyTorch user writes it: the speed yardstick for `wgsl-gan bench`.

    python3 benches/compare/torch_idiomatic.py --threads 2               # CPU, this machine's cores
    python3 benches/compare/torch_idiomatic.py --model dcgan
    python3 benches/compare/torch_idiomatic.py --device cuda [--cuda-graphs]

Stock modules with their defaults (nn.Conv2d, nn.Linear, nn.BatchNorm1d/2d with Keras'
momentum 0.8 as PyTorch's 0.2 and eps 1e-3, nn.BCEWithLogitsLoss, torch.optim.Adam(2e-4, beta1
0.5)), default initialisation, every thread given. The step is wgsl-gan's: D on a real batch and
on G(z) (G without gradients) as two forward passes, Adam on D; then G(z') through D, Adam on G.
The training set lives on the device and batches are gathered there, as wgsl-gan does.

benches/compare/torch_gan.py is the numerical twin (Keras' batch norm written out in tensor ops,
for golden values and quality parity); it is not what a user runs, so it is not the speed anchor.
Prints steady-state ms/step and images/s.
"""
import argparse
import os
import time

import torch
from torch import nn

from torch_gan import load_images

LATENT = 100


def generator(model):
    if model == "mlp":
        return nn.Sequential(
            nn.Linear(LATENT, 128), nn.LeakyReLU(0.2), nn.BatchNorm1d(128, eps=1e-3, momentum=0.2),
            nn.Linear(128, 128), nn.LeakyReLU(0.2), nn.BatchNorm1d(128, eps=1e-3, momentum=0.2),
            nn.Linear(128, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
        )
    return nn.Sequential(
        nn.Linear(LATENT, 7 * 7 * 128), nn.Unflatten(1, (128, 7, 7)),
        nn.BatchNorm2d(128, eps=1e-3, momentum=0.2), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64, eps=1e-3, momentum=0.2), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
    )


def discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 3, 2), nn.BatchNorm2d(64, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3, 2), nn.BatchNorm2d(128, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(512, 1),
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: every core)")
    p.add_argument("--model", choices=["mlp", "dcgan"], default="mlp")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--cuda-graphs", action="store_true", help="capture the whole step in a CUDA graph")
    p.add_argument("--data", default=os.path.join(here, "..", "..", "assets", "mnist", "train-images-idx3-ubyte.gz"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    images = torch.from_numpy(load_images(a.data).copy()).to(dev)
    g, d = generator(a.model).to(dev), discriminator().to(dev)
    # capturable: Adam's step counter stays on the device, which a CUDA graph needs.
    adam = dict(lr=2e-4, betas=(0.5, 0.999), capturable=a.cuda_graphs)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
    bce = nn.BCEWithLogitsLoss()
    b = a.batch_size
    ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)
    real = torch.empty(b, 1, 28, 28, device=dev)

    def step():
        opt_d.zero_grad(set_to_none=False)
        loss_real = bce(d(real), ones)
        with torch.no_grad():
            fake = g(torch.randn(b, LATENT, device=dev))
        loss_fake = bce(d(fake), zeros)
        ((loss_real + loss_fake) / 2).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=False)
        g_loss = bce(d(g(torch.randn(b, LATENT, device=dev))), ones)
        g_loss.backward()
        opt_g.step()
        return g_loss

    steps_per_epoch = images.shape[0] // b
    order = torch.randperm(images.shape[0], device=dev)

    def load_batch(i):
        nonlocal order
        k = i % steps_per_epoch
        if k == 0:
            order = torch.randperm(images.shape[0], device=dev)
        real.copy_(images[order[k * b:(k + 1) * b]].float() / 127.5 - 1.0)

    run = step
    if a.cuda_graphs:
        # PyTorch's recipe: warm up on a side stream, then capture one step and replay it.
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for i in range(3):
                load_batch(i)
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step()

        def run():
            graph.replay()
            return out

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(a.warmup):
        load_batch(i)
        run()
    sync()
    start = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.steps):
        load_batch(i)
        loss = run()
    sync()
    secs = time.perf_counter() - start
    ms = secs / a.steps * 1e3
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {a.threads} threads"
    mode = ", CUDA graph" if a.cuda_graphs else ""
    print(f"torch {torch.__version__} idiomatic ({name}{mode}), {a.model}, batch {b}: {ms:.2f} ms/step, "
          f"{b * a.steps / secs:.0f} images/s (g_loss {loss.item():.3f})")


if __name__ == "__main__":
    main()
