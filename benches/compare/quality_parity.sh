#!/usr/bin/env bash
# The same quality from the same model: trains the article's GAN for $EPOCHS epochs (5) at seeds
# $SEEDS (0 1 2) in wgsl-gan and in the PyTorch twin (benches/compare/torch_gan.py), samples
# 10,000 images from each generator in inference mode, scores them all with `wgsl-gan eval --idx`,
# and prints a table: FID, inception score and coverage per seed, then mean and spread (min..max).
# SIDES="wgsl torch" picks the sides, ADAPTER wgsl-gan's adapter, THREADS PyTorch's CPU threads
# (2). Needs a release wgsl-gan in $B (default target/release) and PyTorch. Outputs in $OUT.
set -euo pipefail
B=${B:-target/release}
OUT=${OUT:-/tmp/wgsl-gan-parity}
EPOCHS=${EPOCHS:-5}
SEEDS=${SEEDS:-0 1 2}
SIDES=${SIDES:-wgsl torch}
COUNT=10000
THREADS=${THREADS:-2}
mkdir -p "$OUT"
adapter=()
[ -n "${ADAPTER:-}" ] && adapter=(--adapter "$ADAPTER")

score() { # IDX file -> "FID IS coverage"
    "$B/wgsl-gan" eval --idx "$1" --count "$COUNT" --json "${adapter[@]}" 2>/dev/null |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["fid"], r["inception_score"], r["coverage"])'
}

for side in $SIDES; do
    for seed in $SEEDS; do
        idx="$OUT/$side-seed$seed.idx"
        if [ "$side" = wgsl ]; then
            run="$OUT/wgsl-seed$seed"
            rm -rf "$run"
            "$B/wgsl-gan" train --epochs "$EPOCHS" --seed "$seed" --out "$run" \
                --fid-samples 0 "${adapter[@]}" 2>&1 | grep -E "^epoch" || true
            "$B/wgsl-gan" sample --checkpoint "$run/checkpoint.safetensors" --count "$COUNT" \
                --seed "$seed" --idx "$idx" "${adapter[@]}" 2>/dev/null
        else
            python3 benches/compare/torch_gan.py --epochs "$EPOCHS" --seed "$seed" --idx "$idx" --threads "$THREADS" \
                --samples "$COUNT" | tail -n 1
        fi
        echo "$side $seed $(score "$idx")" | tee -a "$OUT/scores.txt"
    done
done

echo
echo "| side | seed | FID | inception score | coverage |"
echo "|---|---:|---:|---:|---:|"
for side in $SIDES; do
    for seed in $SEEDS; do
        grep "^$side $seed " "$OUT/scores.txt" | tail -n 1 | awk '{printf "| %s | %s | %.1f | %.2f | %s/10 |\n", $1, $2, $3, $4, $5}'
    done
    grep "^$side " "$OUT/scores.txt" | awk -v seeds="$(echo $SEEDS | wc -w)" '
        {fid[NR] = $3; is[NR] = $4; cov[NR] = $5}
        END {
            n = NR < seeds ? NR : seeds; s = NR - n
            lo = hi = fid[s + 1]; m = mi = mc = 0
            for (i = s + 1; i <= NR; i++) { m += fid[i]; mi += is[i]; mc += cov[i]; if (fid[i] < lo) lo = fid[i]; if (fid[i] > hi) hi = fid[i] }
            printf "| %s | mean | %.1f (%.1f..%.1f) | %.2f | %.1f/10 |\n", $1, m / n, lo, hi, mi / n, mc / n
        }'
done
