#!/usr/bin/env bash
# The measurements behind EVAL.md: `ember eval` on three task sets built from PyPI data
# (eval/make_tasks.py) across the real small models (scripts/fetch_eval_models.sh) and one other
# quantization (Qwen2.5-Coder-0.5B requantized to Q4_0 by llama.cpp's llama-quantize).
#   eval/run_eval.sh [--humaneval N] [--arith N] [--mc N] [--threads T]
# Writes eval/results/<task>.{json,jsonl,svg,png} and prints each table; EVAL.md quotes them.
# Sizes default to slices that run in about half an hour on a 2-core x86 VM; the full sets are
# --humaneval 164 --arith 100 --mc 100.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
humaneval=20 arith=50 mc=50 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --humaneval) humaneval="$2"; shift ;;
    --arith) arith="$2"; shift ;;
    --mc) mc="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

scripts/fetch_eval_models.sh
python3 -c "import jsonschema" 2>/dev/null || pip install --quiet jsonschema
[ -s .cache/tasks/humaneval.jsonl ] || python3 eval/make_tasks.py
cargo build --release -p ember
ember=target/release/ember

# The other quantization: llama-quantize may requantize an already-quantized file only when told
# to; the result is what a user gets from `llama-quantize --allow-requantize ... Q4_0`.
q4=models/qwen2.5-coder-0.5b-instruct-q4_0.gguf
if [ ! -s "$q4" ]; then
  [ -x .cache/llama.cpp-build/bin/llama-quantize ] || EMBER_LLAMA_TARGETS=llama-quantize scripts/build_llama_cpp.sh
  .cache/llama.cpp-build/bin/llama-quantize --allow-requantize \
    models/qwen2.5-coder-0.5b-instruct.gguf "$q4.part" Q4_0 2 >/dev/null
  mv "$q4.part" "$q4"
fi
models=(-m models/SmolLM2-135M-Instruct.Q4_1.gguf -m "$q4" -m models/qwen2.5-coder-0.5b-instruct.gguf
  -m models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf)

out=eval/results
mkdir -p "$out"
run() { # task limit require extra-args...
  local task="$1" limit="$2" require="$3"
  shift 3
  echo "== $task (first $limit items): $ember eval --task .cache/tasks/$task.jsonl --limit $limit -t $threads --require \"$require\" $*"
  "$ember" eval --task ".cache/tasks/$task.jsonl" --limit "$limit" -t "$threads" "${models[@]}" \
    --require "$require" --out "$out/$task.jsonl" --plot "$out/$task.svg" "$@" \
    | tee "$out/$task.txt" || [ "${PIPESTATUS[0]}" -eq 3 ] # 3: no model meets --require
  python3 eval/check_results.py "$out/$task.jsonl" ".cache/tasks/$task.jsonl"
}
run arithmetic "$arith" "accuracy>=0.5,p95_ms<=2000,rss_mb<=1500" -n 48
run arithmetic_mc "$mc" "accuracy>=0.5,p95_ms<=1000"
run humaneval "$humaneval" "accuracy>=0.3,p95_ms<=60000" -n 384
# Gemma 3 270M is a base model whose file has no chat template: the generation tasks (chat
# prompts) refuse it with a typed error, so it runs the likelihood task only.
mkdir -p "$out/gemma3"
"$ember" eval --task .cache/tasks/arithmetic_mc.jsonl --limit "$mc" -t "$threads" \
  -m models/gemma-3-270m-q4_k_m.gguf --require "accuracy>=0.5,p95_ms<=1000" \
  --out "$out/gemma3/arithmetic_mc.jsonl" | tee "$out/gemma3/arithmetic_mc.txt" || [ "${PIPESTATUS[0]}" -eq 3 ]
python3 eval/check_results.py "$out/gemma3/arithmetic_mc.jsonl" .cache/tasks/arithmetic_mc.jsonl
