#!/usr/bin/env python3
"""Golden values for tests/golden.rs: three training steps of wgsl-gan's GAN in PyTorch.

    python3 benches/compare/golden.py --model mlp   # writes tests/golden/mlp-gan.safetensors
    python3 benches/compare/golden.py --model dcgan # writes tests/golden/dcgan.safetensors
    python3 benches/compare/golden.py --model mlp --ema 0.9 --label-smoothing 0.1 --lr-d 1e-4 --lr-g 3e-4
                                                    # writes tests/golden/mlp-gan-remedies.safetensors

The model and the step are article_gan.py's (wgsl-gan's definitions, Keras' conventions). The file
holds the inputs: the initial weights (Glorot uniform from torch's generator at --seed), three real
batches (the first 3 * --batch MNIST training images, as bytes) and the noise of each step
([3, 2, B, 100]: the D step's and the G step's); and the outputs: after each step t (1..3)
`step{t}.stats` (D loss on real, mean D(x), D loss on fake, mean D(G(z)), G loss, mean D(G(z'))
in the G step) and every parameter and running statistic (`step{t}.NAME`), and after the last step
Adam's moments (`step3.adam_m.NAME`, `step3.adam_v.NAME`). Names and layouts are PyTorch's.

The remedies, as a PyTorch user writes them: --label-smoothing p gives D's real batch the target
1 - p; --lr-d/--lr-g give each network's Adam its own rate; --ema DECAY keeps `g_ema`, a deep copy
of G made before the first step, and after each step lerps every float tensor of its state_dict
(parameters and running statistics) towards G's by 1 - DECAY (`step{t}.generator_ema.NAME`).
"""
import copy
import argparse
import gzip
import os

import numpy as np
import torch
from safetensors.torch import save_file

import article_gan as A

STEPS = 3


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(A.GENERATORS), default="mlp")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--ema", type=float, help="decay of G's moving average (default: none)")
    p.add_argument("--out", help="default: tests/golden/<model name>[-remedies].safetensors")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(a.seed)

    g, d = A.GENERATORS[a.model](), A.discriminator()
    A.glorot_(g, gen)
    A.glorot_(d, gen)
    b = a.batch
    with gzip.open(os.path.join(root, "assets", "mnist", "train-images-idx3-ubyte.gz"), "rb") as f:
        f.read(16)
        real_bytes = np.frombuffer(f.read(STEPS * b * 784), dtype=np.uint8).reshape(STEPS * b, 784)
    noise = torch.randn(STEPS, 2, b, A.LATENT, generator=gen)

    out = {"real": torch.from_numpy(real_bytes.copy()), "noise": noise.clone()}
    for name, t in {**g.state_dict(prefix="generator."), **d.state_dict(prefix="discriminator.")}.items():
        out[f"init.{name}"] = t.clone()

    opt_g, opt_d = A.adam(g.parameters(), lr=a.lr_g), A.adam(d.parameters(), lr=a.lr_d)
    g_ema = copy.deepcopy(g) if a.ema is not None else None
    g.train()
    d.train()
    real = torch.from_numpy(real_bytes.astype(np.float32)).view(STEPS, b, 1, 28, 28) / 127.5 - 1.0
    for t in range(STEPS):
        stats = A.train_step(g, d, opt_g, opt_d, real[t], noise[t, 0], noise[t, 1],
                             real_label=1.0 - a.label_smoothing)
        out[f"step{t + 1}.stats"] = stats.clone()
        if g_ema is not None:
            with torch.no_grad():
                for avg, v in zip(g_ema.state_dict().values(), g.state_dict().values()):
                    if avg.dtype.is_floating_point:
                        avg.lerp_(v, 1.0 - a.ema)
            for name, v in g_ema.state_dict(prefix="generator_ema.").items():
                out[f"step{t + 1}.{name}"] = v.clone()
        for name, v in {**g.state_dict(prefix="generator."), **d.state_dict(prefix="discriminator.")}.items():
            out[f"step{t + 1}.{name}"] = v.clone()
        print(f"step {t + 1}: " + " ".join(f"{v:.6f}" for v in stats.tolist()))
    for prefix, net, opt in (("generator.", g, opt_g), ("discriminator.", d, opt_d)):
        for name, param in net.named_parameters(prefix=prefix.rstrip(".")):
            state = opt.state[param]
            out[f"step{STEPS}.adam_m.{name}"] = state["exp_avg"].clone()
            out[f"step{STEPS}.adam_v.{name}"] = state["exp_avg_sq"].clone()

    remedies = a.ema is not None or a.label_smoothing or a.lr_d != 2e-4 or a.lr_g != 2e-4
    stem = A.MODEL_NAMES[a.model] + ("-remedies" if remedies else "")
    path = a.out or os.path.join(root, "tests", "golden", f"{stem}.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    meta = {
        "model": A.MODEL_NAMES[a.model], "batch_size": str(b), "steps": str(STEPS), "seed": str(a.seed),
        "lr_d": str(a.lr_d), "lr_g": str(a.lr_g), "beta1": "0.5", "torch": torch.__version__,
        "label_smoothing": str(a.label_smoothing), "ema": "off" if a.ema is None else str(a.ema),
        "command": f"python3 benches/compare/golden.py --model {a.model} --batch {b} --seed {a.seed}"
        + (f" --ema {a.ema} --label-smoothing {a.label_smoothing} --lr-d {a.lr_d} --lr-g {a.lr_g}"
           if remedies else ""),
    }
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, torch {torch.__version__})")


if __name__ == "__main__":
    main()
