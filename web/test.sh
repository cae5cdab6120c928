#!/usr/bin/env bash
# The browser test. Builds the page (web/build.sh), serves it on 127.0.0.1 and opens its test mode
# in headless Chromium, whose WebGPU adapter is SwiftShader here; then checks that
#   - a WebGPU adapter appeared, the page reported its results and logged no JavaScript error;
#   - the grid of 7s the page draws on load with the built-in generator equals the native
#     `wgsl-gan sample --digit 7` (the same seed): sums of |x| and x^2 within 1e-4;
#   - the statistics of each of STEPS training steps and the generator's checksum equal the native
#     CPU reference's (examples/web_reference.rs: the same seed, batch and MNIST files): step s
#     within (s + 1) x 1e-4 relative, the checksum within 1e-4. The GPU-vs-CPU step test's 1e-4
#     holds for the first step; after it, Adam turns rounding differences in near-zero gradients
#     into updates of +-lr (tests/gan_step.rs bounds those), and the runs drift apart by about
#     1e-4 more per step on MNIST (measured: 2.6e-4 at step 2, 7e-4 at step 15);
#   - the checkpoint the page made loads in the native `wgsl-gan sample`;
#   - the page's scores of SCORE generated images (as `train` scores an epoch) equal the native
#     `wgsl-gan eval` of its checkpoint on the same images: FID within 1e-3 relative (two
#     adapters' sums), and the same coverage.
# Prints `N passed, N failed` last and exits non-zero on any failure.
#   web/test.sh [--screenshot FILE]   (FILE: the page after 60 steps of normal training)
# Environment: STEPS (20), BATCH (16), SEED (0), BENCH (10: steps timed after them for the rate
# it prints), SCORE (500), PORT (8765), TIMEOUT (seconds, 900).
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-20} BATCH=${BATCH:-16} SEED=${SEED:-0} BENCH=${BENCH:-10} SCORE=${SCORE:-500}
PORT=${PORT:-8765} TIMEOUT=${TIMEOUT:-900}
shot=
if [ "${1:-}" = --screenshot ]; then shot=$(realpath -m "${2:?--screenshot FILE}"); fi
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) ||
    { echo "no chromium: apt-get install chromium"; echo "0 passed, 1 failed"; exit 1; }
bash web/build.sh >/dev/null || { echo "web/build.sh failed"; echo "0 passed, 1 failed"; exit 1; }
cargo build --release --quiet --bin wgsl-gan --example web_reference ||
    { echo "0 passed, 1 failed"; exit 1; }

work=$(mktemp -d)
python3 web/serve.py --port "$PORT" --results "$work" >"$work/server.log" 2>&1 &
server=$!
pids=("$server")
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
flags=(--headless=new --no-sandbox --enable-unsafe-webgpu --enable-logging=stderr --no-first-run
    --disable-gpu-sandbox --user-data-dir="$work/profile")
"$browser" "${flags[@]}" "http://127.0.0.1:$PORT/?test&steps=$STEPS&batch=$BATCH&seed=$SEED&bench=$BENCH&score=$SCORE" \
    2>"$work/chromium.log" &
pids+=($!)
passed=0 failed=0
check() { # NAME, then the command that must succeed
    local name=$1; shift
    if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
for _ in $(seq "$TIMEOUT"); do
    grep -qE 'WGSL_GAN_TEST|WGSL_GAN_ERROR|Uncaught' "$work/chromium.log" && break
    sleep 1
done
kill "${pids[1]}" 2>/dev/null
result=$(grep -o 'WGSL_GAN_TEST {.*}' "$work/chromium.log" | head -1 | sed 's/^WGSL_GAN_TEST //')
errors=$(grep -E 'WGSL_GAN_ERROR|Uncaught|CONSOLE.*[Ee]rror' "$work/chromium.log" | grep -v WGSL_GAN_TEST | head -5)
check "the page ran on a WebGPU adapter and reported" test -n "$result"
check "no JavaScript or WebGPU error" test -z "$errors"
[ -n "$errors" ] && echo "$errors" | cut -c1-400
if [ -n "$result" ]; then
    echo "page: $(echo "$result" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["adapter"], "-", round(r["steps_per_second"], 3), "steps/s")')"
    reference=$(target/release/examples/web_reference "$STEPS" "$BATCH" "$SEED")
    compare() {
        python3 - "$result" "$reference" <<'PY'
import json, sys
page, ref = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ok = len(page["losses"]) == len(ref["losses"])
for step, (a, b) in enumerate(zip(page["losses"], ref["losses"])):
    for name, x, y in zip(["d_loss", "g_loss", "d_real", "d_fake"], a, b):
        if abs(x - y) > (step + 1) * 1e-4 * max(abs(y), 1.0):
            print(f"step {step} {name}: browser {x}, CPU reference {y}")
            ok = False
(n1, abs1, sq1), (n2, abs2, sq2) = page["checksum"], ref["checksum"]
for name, x, y in [("sum |w|", abs1, abs2), ("sum w^2", sq1, sq2)]:
    if n1 != n2 or abs(x - y) > 1e-4 * abs(y):
        print(f"generator {name}: browser {x} ({n1} values), CPU reference {y} ({n2} values)")
        ok = False
sys.exit(0 if ok else 1)
PY
    }
    check "$STEPS steps' statistics and the generator match the native CPU reference" compare
    sevens() {
        target/release/wgsl-gan sample --digit 7 --seed 0 --count 64 --npy "$work/sevens.npy" \
            >/dev/null 2>&1 || return 1
        python3 - "$result" "$work/sevens.npy" <<'PY'
import json, struct, sys
page = json.loads(sys.argv[1])["sevens"]
raw = open(sys.argv[2], "rb").read()
header = 10 + struct.unpack("<H", raw[8:10])[0]
values = struct.unpack(f"<{(len(raw) - header) // 4}f", raw[header:])
native = [len(values), sum(abs(v) for v in values), sum(v * v for v in values)]
ok = page[0] == native[0] and all(abs(a - b) <= 1e-4 * b for a, b in zip(page[1:], native[1:]))
if not ok:
    print(f"7s drawn on load: browser {page}, native sample {native}")
sys.exit(0 if ok else 1)
PY
    }
    check "the 7s the page draws on load equal the native sample --digit 7" sevens
    scores() {
        local seed
        seed=$(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["score"]["seed"])')
        target/release/wgsl-gan eval --checkpoint "$work/checkpoint.safetensors" --count "$SCORE" \
            --seed "$seed" --json >"$work/eval.json" 2>/dev/null || return 1
        python3 - "$result" "$work/eval.json" <<'PY'
import json, sys
page, native = json.loads(sys.argv[1])["score"], json.load(open(sys.argv[2]))
ok = (page["count"] == native["images"] and page["coverage"] == native["coverage"]
      and abs(page["fid"] - native["fid"]) <= 1e-3 * native["fid"])
if not ok:
    print(f"scores: browser {page}, native eval {native}")
sys.exit(0 if ok else 1)
PY
    }
    check "the page's scores equal the native eval of its checkpoint" scores
    check "the page's checkpoint loads in the native sample" \
        target/release/wgsl-gan sample --checkpoint "$work/checkpoint.safetensors" --count 16 \
        --png "$work/sample.png" >/dev/null
fi
if [ -n "$shot" ]; then
    check "screenshot after 60 steps saved to $shot" \
        python3 web/screenshot.py "$browser" "http://127.0.0.1:$PORT/?autostart=60" "$shot" "$TIMEOUT"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
