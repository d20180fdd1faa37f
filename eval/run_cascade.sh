#!/usr/bin/env bash
# The cascade measurements behind EVAL.md (issue #13): Qwen2.5-Coder-0.5B-Instruct (Q4_0, the
# primary) with Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) as consultant, `ember eval --consultant`
# on HumanEval, arithmetic word problems (generated answer) and arithmetic multiple choice.
#   eval/run_cascade.sh [--humaneval N] [--arith N] [--mc N] [--threads T]
# Writes eval/results/cascade/<task>.{json,jsonl}; eval/check_results.py re-scores every
# answer of both models independently; eval/cascade_summary.py prints, per task, the cheapest
# threshold within 3 accuracy points of the consultant and its share of the consultant's latency.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
humaneval=40 arith=50 mc=50 threads=2
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
[ -s .cache/tasks/humaneval.jsonl ] || python3 eval/make_tasks.py
cargo build --release -p ember
ember=target/release/ember
primary=models/qwen2.5-coder-0.5b-instruct-q4_0.gguf
consultant=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
if [ ! -s "$primary" ]; then
  [ -x .cache/llama.cpp-build/bin/llama-quantize ] || EMBER_LLAMA_TARGETS=llama-quantize scripts/build_llama_cpp.sh
  .cache/llama.cpp-build/bin/llama-quantize --allow-requantize \
    models/qwen2.5-coder-0.5b-instruct.gguf "$primary.part" Q4_0 2 >/dev/null
  mv "$primary.part" "$primary"
fi

out=eval/results/cascade
mkdir -p "$out"
run() { # task limit require extra-args...
  local task="$1" limit="$2" require="$3"
  shift 3
  local cmd=("$ember" eval --task ".cache/tasks/$task.jsonl" --limit "$limit" -t "$threads"
    -m "$primary" --consultant "$consultant" --require "$require" "$@")
  echo "== $task: ${cmd[*]}"
  "${cmd[@]}" --json --out "$out/$task.jsonl" >"$out/$task.json" || [ $? -eq 3 ] # 3: none meets it
  python3 eval/check_results.py "$out/$task.jsonl" ".cache/tasks/$task.jsonl"
}
run arithmetic_mc "$mc" "accuracy>=0.69"
run arithmetic "$arith" "accuracy>=0.23" -n 48
run humaneval "$humaneval" "accuracy>=0.8" -n 384
python3 eval/cascade_summary.py "$out"/arithmetic_mc.json "$out"/arithmetic.json "$out"/humaneval.json | tee "$out/summary.md"
