#!/usr/bin/env python3
"""fp32 matmul throughput of the reference libraries, for the `cargo bench` matmul rows.

    python3 benches/compare/torch_matmul.py --device cuda --size 4096   # cuBLAS, TF32 off
    python3 benches/compare/torch_matmul.py --device numpy --size 1024  # numpy/OpenBLAS

(For numpy on this project's CI machine, unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in that
command, or OpenBLAS runs an older kernel; OPENBLAS_NUM_THREADS sets its threads.)
"""
import argparse
import time


def median_time(f, runs):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cpu (torch) or numpy")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    n = a.size
    if a.device == "numpy":
        import numpy as np
        x, y = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
        t = median_time(lambda: x @ y, a.runs)
        name = f"numpy {np.__version__}"
    else:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        dev = torch.device(a.device)
        x, y = torch.rand(n, n, device=dev), torch.rand(n, n, device=dev)

        def run():
            x @ y
            if dev.type == "cuda":
                torch.cuda.synchronize()

        t = median_time(run, a.runs)
        name = f"torch {torch.__version__} " + (torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU")
    print(f"{name}: fp32 matmul {n}^3: {t * 1e3:.3f} ms, {2 * n ** 3 / t / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
