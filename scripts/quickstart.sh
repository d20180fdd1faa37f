#!/usr/bin/env bash
# The main job on a fresh machine: build ember's CPU engine, fetch the default model
# (SmolLM2-135M-Instruct, by name from the registry: `ember pull`), and generate text with it.
# Extra arguments go to `ember run`.
#
# The CPU build leaves out the GPU engine (burn, wgpu, CubeCL: most of a full build's
# compile time), so the first text comes in minutes. For the GPU engine build the default
# features afterwards: `cargo build --release --bin ember` (then `ember run --device gpu`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --bin ember --no-default-features --features eval,net
ember=target/release/ember
model="$("$ember" pull smollm2)"
prompt="${EMBER_PROMPT:-The capital of France is}"
exec "$ember" run -m "$model" -p "$prompt" -n 48 --temp 0 "$@"
