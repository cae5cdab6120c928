#!/usr/bin/env bash
# One run on a GPU machine: the GPU tests, `cargo bench`, training throughput against PyTorch as
# its users write the model (benches/compare/torch_idiomatic.py), eager and with CUDA graphs
# (alternating runs), fp32 matmul against cuBLAS, and a 5-epoch training run; prints a table last. Needs release binaries in target/gpu (built elsewhere, see docs/PERFORMANCE.md):
# wgsl-gan, kernels-test, gan_step-test, kernels-bench.
set -uo pipefail
B=${B:-target/gpu}
OUT=${OUT:-/tmp/wgsl-gan-gpu}
STEPS=${STEPS:-500}
mkdir -p "$OUT"
"$B/wgsl-gan" info 2>&1 | grep -v XDG_RUNTIME_DIR
echo "== tests"
timeout 120 "$B/kernels-test" 2>&1 | grep -E "^test |test result" | tee "$OUT/tests.txt"
timeout 60 "$B/gan_step-test" 2>&1 | grep -E "^test |test result" | tee -a "$OUT/tests.txt"
echo "== cargo bench"
timeout 150 "$B/kernels-bench" --bench 2>&1 | grep -v XDG_RUNTIME_DIR | tee "$OUT/bench.txt"
echo "== training throughput, alternating"
for i in 1 2 3; do
    "$B/wgsl-gan" bench --steps "$STEPS" --warmup 50 2>&1 | grep -v XDG_RUNTIME_DIR | tee -a "$OUT/wgsl.txt"
    python3 benches/compare/torch_idiomatic.py --device cuda --steps "$STEPS" --warmup 50 2>&1 | tee -a "$OUT/torch.txt"
    python3 benches/compare/torch_idiomatic.py --device cuda --cuda-graphs --steps "$STEPS" --warmup 50 2>&1 |
        tee -a "$OUT/graphs.txt"
    "$B/wgsl-gan" bench --model dcgan --steps "$STEPS" --warmup 50 2>&1 | grep -v XDG_RUNTIME_DIR | tee -a "$OUT/wgsl-dcgan.txt"
    python3 benches/compare/torch_idiomatic.py --device cuda --model dcgan --steps "$STEPS" --warmup 50 2>&1 |
        tee -a "$OUT/torch-dcgan.txt"
done
python3 benches/compare/torch_matmul.py --device cuda --size 4096 2>&1 | tee "$OUT/cublas.txt"
echo "== five epochs"
/usr/bin/time -f "%e s wall" timeout 150 "$B/wgsl-gan" train --epochs 5 --out "$OUT/train" --overwrite --log-every 200 2>&1 | grep -v XDG_RUNTIME_DIR | tail -8

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
w=$(grep -o '[0-9.]* ms/step' "$OUT/wgsl.txt" | awk '{print $1}' | median)
t=$(grep -o '[0-9.]* ms/step' "$OUT/torch.txt" | awk '{print $1}' | median)
g=$(grep -o '[0-9.]* ms/step' "$OUT/graphs.txt" | awk '{print $1}' | median)
wd=$(grep -o '[0-9.]* ms/step' "$OUT/wgsl-dcgan.txt" | awk '{print $1}' | median)
td=$(grep -o '[0-9.]* ms/step' "$OUT/torch-dcgan.txt" | awk '{print $1}' | median)
mm=$(grep 'matmul square 4096 ' "$OUT/bench.txt" | awk -F'|' '{print $5}')
cb=$(grep -o '[0-9]* GFLOP/s' "$OUT/cublas.txt")
echo
echo "| measure | wgsl-gan | PyTorch | ratio |"
echo "|---|---:|---:|---:|"
echo "| train step, batch 64, eager (ms, median of 3) | $w | $t | $(awk -v a="$w" -v b="$t" 'BEGIN {printf "%.2fx", b / a}') |"
echo "| train step, batch 64, CUDA graph (ms, median of 3) | $w | $g | $(awk -v a="$w" -v b="$g" 'BEGIN {printf "%.2fx", b / a}') |"
echo "| DCGAN train step, batch 64, eager (ms, median of 3) | $wd | $td | $(awk -v a="$wd" -v b="$td" 'BEGIN {printf "%.2fx", b / a}') |"
echo "| fp32 matmul 4096^3 | $mm | $cb (cuBLAS) | |"
