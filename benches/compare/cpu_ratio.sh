#!/usr/bin/env bash
# Training throughput on this machine's CPU adapter (lavapipe) against PyTorch as its users write
# the same model (benches/compare/torch_idiomatic.py: stock modules, every core), alternating runs
# (noise hits both alike); prints each round, both medians and the ratio. Needs a release wgsl-gan
# in $B (default target/release) and PyTorch. MODEL=dcgan for the DCGAN generator.
set -euo pipefail
B=${B:-target/release}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-mlp}
THREADS=${THREADS:-$(nproc)}
wgsl=() torch=()
for _ in $(seq "$ROUNDS"); do
    w=$("$B/wgsl-gan" bench --model "$MODEL" --steps "${WGSL_STEPS:-20}" --warmup 3 2>/dev/null |
        awk '/ms\/step/ {print $(NF-3)}')
    t=$(python3 benches/compare/torch_idiomatic.py --model "$MODEL" --device cpu --threads "$THREADS" \
            --steps "${TORCH_STEPS:-200}" --warmup 20 |
        awk '{for (i = 1; i <= NF; i++) if ($i == "ms/step,") print $(i-1)}')
    echo "wgsl-gan ${w} ms/step, PyTorch ${t} ms/step"
    wgsl+=("$w") torch+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
mw=$(median "${wgsl[@]}") mt=$(median "${torch[@]}")
echo "median ($MODEL): wgsl-gan $mw ms/step, PyTorch $mt ms/step ($THREADS threads), ratio $(awk -v w="$mw" -v t="$mt" 'BEGIN {printf "%.3f", t / w}')x"
