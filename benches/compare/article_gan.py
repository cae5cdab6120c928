"""The article's GAN in PyTorch, exactly as wgsl-gan defines it (src/gan/model.rs, src/gan/dcgan.rs,
src/gan/step.rs), shared by torch_gan.py (speed, quality) and golden.py (golden values).

Module numbering follows nn.Sequential, so state_dict names are wgsl-gan's checkpoint names.
Conventions that differ from PyTorch's defaults, each deliberate (Keras' behaviour):
- batch norm: eps 1e-3, running = 0.8 * running + 0.2 * batch (Keras' momentum 0.8), and the
  running variance takes the biased batch variance (PyTorch's BatchNorm takes the unbiased one);
- Adam: eps 1e-7 (Keras' default), PyTorch's placement of eps;
- initialisation: Keras' Glorot uniform for weights, zeros for biases.
"""
import torch
import torch.nn.functional as F
from torch import nn

LATENT = 100
LEAKY = 0.2


class KerasBatchNorm(nn.Module):
    """Batch norm over dim 1 of [N, C] or [N, C, H, W] with Keras' running statistics.

    `update_running` = False normalises with batch statistics but leaves the running ones alone:
    the discriminator in the generator's step.
    """

    def __init__(self, channels, momentum=0.8, eps=1e-3):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum, self.eps, self.update_running = momentum, eps, True

    def forward(self, x):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            if self.update_running:
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean.mul_(m).add_((1 - m) * mean)
                    self.running_var.mul_(m).add_((1 - m) * var)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def mlp_generator():
    return nn.Sequential(
        nn.Linear(LATENT, 128), nn.LeakyReLU(LEAKY), KerasBatchNorm(128),
        nn.Linear(128, 128), nn.LeakyReLU(LEAKY), KerasBatchNorm(128),
        nn.Linear(128, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
    )


def dcgan_generator():
    return nn.Sequential(
        nn.Linear(LATENT, 7 * 7 * 128), nn.Unflatten(1, (128, 7, 7)), KerasBatchNorm(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), KerasBatchNorm(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
    )


def discriminator():
    """Keras' default padding ('valid'): 28 -> 13 -> 6 -> 2, 512 features."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 2), nn.LeakyReLU(LEAKY),
        nn.Conv2d(32, 64, 3, 2), KerasBatchNorm(64), nn.LeakyReLU(LEAKY),
        nn.Conv2d(64, 128, 3, 2), KerasBatchNorm(128), nn.LeakyReLU(LEAKY),
        nn.Flatten(), nn.Linear(512, 1),
    )


GENERATORS = {"mlp": mlp_generator, "dcgan": dcgan_generator}
MODEL_NAMES = {"mlp": "mlp-gan", "dcgan": "dcgan"}


def glorot_(module, generator=None):
    """Keras' initialisation: Glorot uniform weights, zero biases (batch norm keeps 1 and 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight
            area = w[0, 0].numel() if w.dim() == 4 else 1
            fan_sum = (w.shape[0] + w.shape[1]) * area
            limit = (6.0 / fan_sum) ** 0.5
            with torch.no_grad():
                w.copy_((torch.rand(w.shape, generator=generator) * 2 - 1) * limit)
                m.bias.zero_()


def set_update_running(module, flag):
    for m in module.modules():
        if isinstance(m, KerasBatchNorm):
            m.update_running = flag


def adam(params, lr=2e-4, beta1=0.5):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), eps=1e-7)


def train_step(g, d, opt_g, opt_d, real, z_d, z_g, real_label=1.0):
    """wgsl-gan's step: D on the real batch (target real_label: 1, or 1 - p with one-sided label
    smoothing p) and on G(z_d) (target 0) in two forward
    passes, loss = their mean, Adam on D; then G on z_g with target 1 through D (batch statistics,
    running statistics untouched), Adam on G. Both networks are in training mode throughout.
    Returns (d_loss_real, mean D(x), d_loss_fake, mean D(G(z)), g_loss, mean D(G(z')))."""
    b = real.shape[0]
    ones = torch.ones(b, 1, device=real.device)
    zeros = torch.zeros(b, 1, device=real.device)
    set_update_running(d, True)
    opt_d.zero_grad(set_to_none=True)
    logits_real = d(real)
    loss_real = F.binary_cross_entropy_with_logits(logits_real, torch.full_like(ones, real_label))
    (0.5 * loss_real).backward()
    with torch.no_grad():
        fake = g(z_d)
    logits_fake = d(fake)
    loss_fake = F.binary_cross_entropy_with_logits(logits_fake, zeros)
    (0.5 * loss_fake).backward()
    opt_d.step()

    set_update_running(d, False)
    opt_g.zero_grad(set_to_none=True)
    logits_g = d(g(z_g))
    g_loss = F.binary_cross_entropy_with_logits(logits_g, ones)
    g_loss.backward()
    opt_g.step()
    set_update_running(d, True)
    return torch.stack([
        loss_real.detach(), torch.sigmoid(logits_real).mean().detach(),
        loss_fake.detach(), torch.sigmoid(logits_fake).mean().detach(),
        g_loss.detach(), torch.sigmoid(logits_g).mean().detach(),
    ])
