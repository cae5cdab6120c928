#!/usr/bin/env bash
# Sample quality of both generators after 1, 5 and 20 epochs (FID and coverage under the shipped
# classifier, logged by `train` at each epoch's end), on whatever adapter this machine has.
# Needs a release wgsl-gan in $B (default target/release). Writes $OUT/{mlp,dcgan}/ and prints a
# markdown table for docs/QUALITY.md.
set -uo pipefail
B=${B:-target/release}
OUT=${OUT:-/tmp/wgsl-gan-quality}
EPOCHS=${EPOCHS:-20}
mkdir -p "$OUT"
for model in mlp dcgan; do
    "$B/wgsl-gan" train --model "$model" --epochs "$EPOCHS" --out "$OUT/$model" --overwrite --log-every 500 2>&1 | grep -v XDG_RUNTIME_DIR | grep -E "^epoch|adapter|trained"
done
echo
echo "| model | epoch | FID | coverage (digits with >= 5%) |"
echo "|---|---:|---:|---:|"
for model in mlp dcgan; do
    for e in 1 5 "$EPOCHS"; do
        row=$(awk -F, -v e="$e" 'NR > 1 && $2 == e && $7 != "" {print $7 " | " $8}' "$OUT/$model/metrics.csv" | tail -1)
        echo "| $model | $e | $row |"
    done
done
