"""Load a wgsl-gan checkpoint into PyTorch and generate from the same latent vectors.

    wgsl-gan sample --checkpoint runs/gan/checkpoint.safetensors --count 16 \
        --noise-out z.npy --npy wgsl.npy
    python3 examples/load_in_pytorch.py runs/gan/checkpoint.safetensors z.npy wgsl.npy

Needs torch, numpy and safetensors (`pip install torch numpy safetensors`). The checkpoint's
tensor names are nn.Sequential's, in PyTorch's layouts (Linear [out, in], Conv [out, in, kh, kw]),
so `load_state_dict(strict=True)` takes them as they are. Batch norm follows Keras, as wgsl-gan
does: eps 1e-3, and in inference mode the running statistics. A class-conditional checkpoint
(`train --conditional`) takes [z | one_hot(y)]: here y = 0, 1, ..., 9, 0, ... as `sample` draws
them without --digit.
"""
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

LATENT, LEAKY = 100, 0.2


class KerasBatchNorm(nn.Module):
    """Inference-mode batch norm with Keras' eps (training needs Keras' momentum too; see
    benches/compare/article_gan.py)."""

    def __init__(self, channels, eps=1e-3):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.eps = eps

    def forward(self, x):
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - self.running_mean.view(shape)) * torch.rsqrt(self.running_var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def generator(model, inputs):
    if model == "mlp-gan":  # the article's generator
        return nn.Sequential(
            nn.Linear(inputs, 128), nn.LeakyReLU(LEAKY), KerasBatchNorm(128),
            nn.Linear(128, 128), nn.LeakyReLU(LEAKY), KerasBatchNorm(128),
            nn.Linear(128, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
        )
    if model == "dcgan":
        return nn.Sequential(
            nn.Linear(inputs, 7 * 7 * 128), nn.Unflatten(1, (128, 7, 7)), KerasBatchNorm(128), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), KerasBatchNorm(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
        )
    raise SystemExit(f"unknown model {model!r}")


def main():
    checkpoint, z_path = sys.argv[1:3]
    from safetensors import safe_open
    with safe_open(checkpoint, "pt") as f:
        model = f.metadata()["model"]
        conditional = f.metadata().get("conditional") == "true"
    tensors = load_file(checkpoint)
    g = generator(model, LATENT + (10 if conditional else 0))
    state = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
    g.load_state_dict(state, strict=True)
    g.eval()
    z = torch.from_numpy(np.load(z_path))
    if conditional:
        y = torch.arange(len(z)) % 10
        z = torch.cat([z, nn.functional.one_hot(y, 10).float()], 1)
    with torch.no_grad():
        images = g(z).reshape(-1, 28, 28).numpy()
    print(f"{model}: {len(images)} images from {z_path}")
    if len(sys.argv) > 3:
        theirs = np.load(sys.argv[3])
        print(f"largest difference from wgsl-gan's: {np.abs(images - theirs).max():.3g}")


if __name__ == "__main__":
    main()
