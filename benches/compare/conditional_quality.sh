#!/usr/bin/env bash
# Class-conditional against unconditional: trains each of $MODELS (mlp dcgan), unconditional and
# with --conditional, for $EPOCHS epochs (5) at seeds $SEEDS (0), scores every checkpoint with
# `wgsl-gan eval` over 10,000 images (a conditional one asks for the digits 0..9 in turn), and
# prints a table: FID, inception score, coverage and class accuracy. ADAPTER picks wgsl-gan's
# adapter. Needs a release wgsl-gan in $B (default target/release). Outputs in $OUT.
set -euo pipefail
B=${B:-target/release}
OUT=${OUT:-/tmp/wgsl-gan-conditional}
EPOCHS=${EPOCHS:-5}
SEEDS=${SEEDS:-0}
MODELS=${MODELS:-mlp dcgan}
COUNT=10000
mkdir -p "$OUT"
adapter=()
[ -n "${ADAPTER:-}" ] && adapter=(--adapter "$ADAPTER")

for model in $MODELS; do
    for kind in unconditional conditional; do
        flag=()
        [ "$kind" = conditional ] && flag=(--conditional)
        for seed in $SEEDS; do
            run="$OUT/$model-$kind-seed$seed"
            rm -rf "$run"
            "$B/wgsl-gan" train --model "$model" "${flag[@]}" --epochs "$EPOCHS" --seed "$seed" \
                --out "$run" "${adapter[@]}" 2>&1 | grep -E "^epoch" || true
            "$B/wgsl-gan" eval --checkpoint "$run/checkpoint.safetensors" --count "$COUNT" --json \
                "${adapter[@]}" 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
a = r["class_accuracy"]
print(sys.argv[1], r["fid"], r["inception_score"], r["coverage"], "-" if a is None else 100 * a)
' "$model $kind $seed" | tee -a "$OUT/scores.txt"
        done
    done
done

echo
echo "| model | kind | seed | FID | inception score | coverage | class accuracy |"
echo "|---|---|---:|---:|---:|---:|---:|"
for model in $MODELS; do
    for kind in unconditional conditional; do
        for seed in $SEEDS; do
            grep "^$model $kind $seed " "$OUT/scores.txt" | tail -n 1 | awk '{
                acc = $7 == "-" ? "-" : sprintf("%.1f%%", $7)
                printf "| %s | %s | %s | %.1f | %.2f | %s/10 | %s |\n", $1, $2, $3, $4, $5, $6, acc
            }'
        done
    done
done
