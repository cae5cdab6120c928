#!/usr/bin/env bash
# Training throughput of the article's GAN in headless Chromium (WebGPU on SwiftShader; the page's
# own timing of BENCH steps) against the native wgsl-gan on this machine's lavapipe, alternating
# rounds; prints both medians. Needs what web/test.sh needs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCH=${BATCH:-64} BENCH=${BENCH:-20} ROUNDS=${ROUNDS:-3}
cargo build --release --quiet
web=() native=()
for _ in $(seq "$ROUNDS"); do
    w=$(STEPS=2 BATCH=$BATCH BENCH=$BENCH bash web/test.sh | awk '/steps\/s$/ {print $(NF-1)}')
    n=$(target/release/wgsl-gan bench --batch-size "$BATCH" --steps "$BENCH" --warmup 3 2>/dev/null |
        awk '/ms\/step/ {print 1000 / $(NF-3)}')
    echo "browser ${w} steps/s, native ${n} steps/s"
    web+=("$w") native+=("$n")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "median (batch $BATCH): browser on SwiftShader $(median "${web[@]}") steps/s, native on lavapipe $(median "${native[@]}") steps/s"
