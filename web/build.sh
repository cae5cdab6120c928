#!/usr/bin/env bash
# Builds the browser module into web/pkg/ and puts the MNIST training files beside the page in
# web/mnist/, and the built-in generator and the evaluation classifier beside it (all ignored by
# git). Needs the wasm32 target (rustup) and wasm-bindgen-cli at the
# version Cargo.lock pins, which it installs with `cargo install` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
version=$(awk '$0 == "name = \"wasm-bindgen\"" {getline; gsub(/[^0-9.]/, "", $3); print $3}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
    cargo install wasm-bindgen-cli --version "$version"
fi
cargo build --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
    target/wasm32-unknown-unknown/release/wgsl_gan.wasm
mkdir -p web/mnist
cp assets/mnist/train-images-idx3-ubyte.gz assets/mnist/train-labels-idx1-ubyte.gz web/mnist/
cp assets/generator.safetensors assets/mnist-classifier.safetensors web/
echo "built web/pkg; serve with: web/serve.sh"
