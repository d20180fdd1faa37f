#!/usr/bin/env bash
# Build models/<name>-shape-q4_k_m.gguf for each <name> given (default: every one): random weights at a
# real architecture's shape, written by scripts/make_random_<name>.py (its docstring gives the shape and
# why the scales are what they are), quantized by llama.cpp's llama-quantize as plain Q4_K_M (Q4_K, Q6_K
# for token_embd/output and half of attn_v/ffn_down, F32 norms).
#   qwen3: hidden 1024, 8 layers, 16/8 heads of 128, FFN 3072, tied embeddings, per-head q/k norms
#   phi3:  Phi-3-mini-128k's width (3072, 32 heads of 96, FFN 8192), 4 layers, fused attn_qkv and
#          gate/up, LongRoPE factors and attention factor
#   qwen3moe, mixtral: small mixture-of-experts shapes (scripts/make_random_moe.py): 32 experts of 512,
#          4 used (q/k norms, Qwen BPE); `llama` with 8 experts of 1024, 2 used (Llama SPM)
# Deterministic: the same inputs give the same bytes (sha256 printed; tests/golden/<name>-shape-q4_k_m.json
# stores the one the goldens were recorded with). Needs numpy, gguf (pip), the llama.cpp sources
# (scripts/fetch_models.sh) and llama-quantize (built by scripts/build_llama_cpp.sh when missing). Skips
# a model that already exists, unless EMBER_FORCE=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$root/.cache/random"
quantize="$root/.cache/llama.cpp-build/bin/llama-quantize"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(qwen3 phi3 qwen3moe mixtral)

for name in "${names[@]}"; do
  script="$root/scripts/make_random_$name.py"
  out="$root/models/$name-shape-q4_k_m.gguf"
  [ -f "$script" ] || { echo "no $script" >&2; exit 1; }
  if [ -s "$out" ] && [ "${EMBER_FORCE:-0}" != 1 ]; then
    echo "random model already present: $out"
  else
    if [ ! -x "$quantize" ]; then
      EMBER_LLAMA_TARGETS=llama-quantize "$root/scripts/build_llama_cpp.sh"
    fi
    mkdir -p "$tmp" "$root/models"
    f16="$tmp/$name-shape-f16.gguf"
    python3 "$script" "$f16"
    "$quantize" "$f16" "$out.part" Q4_K_M "$(nproc)" > "$tmp/quantize-$name.log" 2>&1 \
      || { tail -20 "$tmp/quantize-$name.log" >&2; exit 1; }
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
done
