#!/usr/bin/env bash
# Random-weight benchmark models (cached in models/): Llama-3.2-1B shape in Q4_0, Q4_K_M and Q8_0,
# and with --with-7b the Llama-2-7B shape in Q4_0. F16 sources come from bench/make_bench_models.py
# (deterministic), quantized by llama.cpp's llama-quantize with its default per-type mixes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
quantize="$root/.cache/llama.cpp-build/bin/llama-quantize"
tmp="$root/.cache/bench"
mkdir -p "$tmp" "$root/models"

make() { # shape type
  local out="$root/models/$1-shape-$2.gguf" f16="$tmp/$1-f16.gguf"
  [ -s "$out" ] && return 0
  if [ ! -s "$f16" ]; then
    echo "generating $f16"
    python3 "$root/bench/make_bench_models.py" --shape "$1" "$f16.part"
    mv "$f16.part" "$f16"
  fi
  echo "quantizing $out"
  "$quantize" "$f16" "$out.part" "$2" "$(nproc)" > "$tmp/quantize-$1-$2.log" 2>&1 \
    || { tail -20 "$tmp/quantize-$1-$2.log" >&2; exit 1; }
  mv "$out.part" "$out"
}

for t in Q4_0 Q4_K_M Q8_0; do make llama1b "$t"; done
if [ "${1:-}" = --with-7b ]; then
  make llama7b Q4_0
  rm -f "$tmp/llama7b-f16.gguf" # 13 GB; the Q4_0 file is what is kept
fi
