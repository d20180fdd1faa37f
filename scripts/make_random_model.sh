#!/usr/bin/env bash
# Build models/llama1b-shape-mixed.gguf: random weights at the Llama-3.2-1B shape with the real Llama 3
# tokenizer, quantized by llama.cpp's llama-quantize to a mix of Q4_0, Q8_0, Q4_K and Q6_K (+ F32 norms).
# Deterministic: the same inputs give the same bytes (sha256 printed; tests/golden/llama1b-shape-mixed.json
# stores the one the goldens were recorded with). Needs: numpy, gguf (pip), the llama.cpp sources
# (scripts/fetch_models.sh) and llama-quantize (built here by scripts/build_llama_cpp.sh when missing).
# Skips everything when the model already exists, unless EMBER_FORCE=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/models/llama1b-shape-mixed.gguf"
tmp="$root/.cache/random"
quantize="$root/.cache/llama.cpp-build/bin/llama-quantize"

if [ -s "$out" ] && [ "${EMBER_FORCE:-0}" != 1 ]; then
  echo "random model already present: $out"
else
  if [ ! -x "$quantize" ]; then
    EMBER_LLAMA_TARGETS=llama-quantize "$root/scripts/build_llama_cpp.sh"
  fi
  mkdir -p "$tmp" "$root/models"
  f16="$tmp/llama1b-shape-f16.gguf"
  python3 "$root/scripts/make_random_model.py" "$f16"
  # Q4_K_M base (Q4_K, with Q6_K for output.weight and half of attn_v/ffn_down), then overrides:
  # attention Q/K in Q4_0 and the token embeddings in Q8_0.
  "$quantize" --tensor-type attn_q=q4_0 --tensor-type attn_k=q4_0 --token-embedding-type q8_0 \
    "$f16" "$out.part" Q4_K_M "$(nproc)" > "$tmp/quantize.log" 2>&1 \
    || { tail -20 "$tmp/quantize.log" >&2; exit 1; }
  rm -f "$f16"
  mv "$out.part" "$out"
fi

sha256sum "$out"
python3 - "$out" <<'PY'
import collections, sys
from gguf import GGUFReader
hist = collections.Counter(t.tensor_type.name for t in GGUFReader(sys.argv[1]).tensors)
print("tensor types:", ", ".join(f"{k} x{v}" for k, v in sorted(hist.items())))
PY
