"""The article's generator in plain NumPy, from a wgsl-gan checkpoint: the interop check that
tests/interop.rs runs. Needs only numpy (the safetensors file is read by hand: an 8-byte
header length, a JSON header, then the raw tensors).

    python3 tests/numpy_forward.py CHECKPOINT Z.npy IMAGES.npy [DIGIT]

Z.npy: float32 [N, 100] (from `wgsl-gan sample --noise-out`); IMAGES.npy: what
`wgsl-gan sample --noise Z.npy --npy IMAGES.npy` made. A class-conditional checkpoint's generator
takes [z | one_hot(y)], y = DIGIT (`sample --digit`) or 0, 1, ..., 9, 0, ... without it. Prints
the largest difference and exits non-zero above 1e-5.
"""
import json
import struct
import sys

import numpy as np

LEAKY, BN_EPS = 0.2, 1e-3


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(t["shape"])
    return tensors, metadata


def generator(w, z):
    """z [N, 100] -> images [N, 28, 28]: Linear, LeakyReLU, BN (running statistics), twice, then
    Linear and tanh. Weights are PyTorch's: Linear [out, in]."""
    def linear(x, i):
        return x @ w[f"generator.{i}.weight"].T + w[f"generator.{i}.bias"]

    def leaky(x):
        return np.where(x > 0, x, LEAKY * x)

    def bn(x, i):
        p = f"generator.{i}."
        x = (x - w[p + "running_mean"]) / np.sqrt(w[p + "running_var"] + BN_EPS)
        return x * w[p + "weight"] + w[p + "bias"]

    x = z.astype(np.float64)
    x = bn(leaky(linear(x, 0)), 2)
    x = bn(leaky(linear(x, 3)), 5)
    return np.tanh(linear(x, 6)).reshape(-1, 28, 28)


def main():
    checkpoint, z_path, images_path = sys.argv[1:4]
    tensors, metadata = load_safetensors(checkpoint)
    w = {k: v.astype(np.float64) for k, v in tensors.items()}
    z = np.load(z_path)
    ours = np.load(images_path)
    assert z.dtype == np.float32 and z.shape[1] == 100, (z.dtype, z.shape)
    if metadata.get("conditional") == "true":
        n = z.shape[0]
        y = np.full(n, int(sys.argv[4])) if len(sys.argv) > 4 else np.arange(n) % 10
        z = np.concatenate([z, np.eye(10, dtype=np.float32)[y]], axis=1)
    assert ours.shape == (z.shape[0], 28, 28), ours.shape
    diff = float(np.abs(generator(w, z) - ours).max())
    print(f"{z.shape[0]} images, largest difference from NumPy's forward: {diff:.3g}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    main()
