#!/usr/bin/env bash
# Build models/qwen3-shape-q4_k_m.gguf: random weights at a small Qwen3 shape (scripts/make_random_qwen3.py:
# hidden 1024, 8 layers, 16/8 heads of 128, FFN 3072, tied embeddings) with the real Qwen2/Qwen3
# tokenizer, quantized by llama.cpp's llama-quantize as plain Q4_K_M (Q4_K, Q6_K for the tied token_embd
# and half of attn_v/ffn_down, F32 norms). Deterministic: the same inputs give the same bytes (sha256
# printed; tests/golden/qwen3-shape-q4_k_m.json stores the one the goldens were recorded with). Needs:
# numpy, gguf (pip), the llama.cpp sources (scripts/fetch_models.sh) and llama-quantize (built here by
# scripts/build_llama_cpp.sh when missing). Skips everything when the model already exists, unless EMBER_FORCE=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/models/qwen3-shape-q4_k_m.gguf"
tmp="$root/.cache/random"
quantize="$root/.cache/llama.cpp-build/bin/llama-quantize"

if [ -s "$out" ] && [ "${EMBER_FORCE:-0}" != 1 ]; then
  echo "random model already present: $out"
else
  if [ ! -x "$quantize" ]; then
    EMBER_LLAMA_TARGETS=llama-quantize "$root/scripts/build_llama_cpp.sh"
  fi
  mkdir -p "$tmp" "$root/models"
  f16="$tmp/qwen3-shape-f16.gguf"
  python3 "$root/scripts/make_random_qwen3.py" "$f16"
  "$quantize" "$f16" "$out.part" Q4_K_M "$(nproc)" > "$tmp/quantize-qwen3.log" 2>&1 \
    || { tail -20 "$tmp/quantize-qwen3.log" >&2; exit 1; }
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
