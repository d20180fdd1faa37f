#!/usr/bin/env bash
# ember vs llama.cpp, side by side, on this machine. One command from a fresh checkout:
#   bench/run.sh [--with-7b | --only-7b | --only-real | --only-shapes] [--reps N] [--threads T]
# (--only-real: the real models only, Gemma 3 270M and Qwen2.5-Coder 0.5B/1.5B, added to the last
# results; they are fetched by scripts/fetch_models.sh and scripts/fetch_eval_models.sh.
# --only-shapes: the random architecture shapes of scripts/make_random_shape.sh, Phi-3 and the two
# mixtures of experts, added to the last results.)
# Builds ember, llama.cpp's llama-bench and llama-quantize (scripts/build_llama_cpp.sh; cmake and
# ninja from PyPI; cached in .cache/), the bandwidth probe and load timer (bench/*.c*), makes the
# random-weight models (bench/make_models.sh; cached in models/), then runs bench/compare.py:
# alternating runs of the two engines, one table, bench/results.json, bench/tokens_per_s.png and
# BENCHMARKS.md. Needs: Rust, a C/C++ compiler, python3 with numpy + gguf (+ matplotlib, installed
# here if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
with7b="" reps=3 threads=2 only7b="" onlyreal="" onlyshapes="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --with-7b) with7b=--with-7b ;;
    --reps) reps="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --only-7b) with7b=--with-7b only7b=1; extra+=(--append) ;; # add the 7B row to the last results
    --only-real) onlyreal=1; extra+=(--append) ;;
    --only-shapes) onlyshapes=1; extra+=(--append) ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

python3 -c "import matplotlib" 2>/dev/null || pip install --quiet matplotlib
python3 -c "import gguf, numpy" 2>/dev/null || pip install --quiet gguf numpy
[ -f .cache/llama.cpp/CMakeLists.txt ] || scripts/fetch_models.sh
[ -s models/SmolLM2-135M-Instruct.Q4_1.gguf ] || scripts/fetch_models.sh
scripts/build_llama_cpp.sh
cargo build --release -p ember
bin="$root/.cache/bench/bin"
mkdir -p "$bin"
cc -O2 -mavx2 -pthread bench/membw.c -o "$bin/membw"
build=.cache/llama.cpp-build src=.cache/llama.cpp
if [ ! -x "$bin/llama-load" ] || [ bench/llama_load.cpp -nt "$bin/llama-load" ]; then
  "${CXX:-c++}" -O2 -std=c++17 bench/llama_load.cpp -I"$src/include" -I"$src/ggml/include" \
    "$build/src/libllama.a" "$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" \
    "$build/ggml/src/libggml-base.a" -lpthread -ldl -lm -o "$bin/llama-load"
fi
models=()
if [ -n "$onlyshapes" ]; then
  scripts/make_random_shape.sh phi3 qwen3moe mixtral
  models+=(--model "Phi-3-mini-width 4-layer Q4_K_M=models/phi3-shape-q4_k_m.gguf")
  models+=(--model "Qwen3-MoE shape 32x4 Q4_K_M=models/qwen3moe-shape-q4_k_m.gguf")
  models+=(--model "Mixtral shape 8x2 Q4_K_M=models/mixtral-shape-q4_k_m.gguf")
elif [ -z "$onlyreal" ]; then
  bench/make_models.sh $with7b
fi
if [ -z "$only7b" ] && [ -z "$onlyshapes" ]; then
  scripts/fetch_eval_models.sh
  models+=(--model "Gemma 3 270M Q4_K_M=models/gemma-3-270m-q4_k_m.gguf")
  models+=(--model "Qwen2.5-Coder-0.5B Q5_0/Q8_0=models/qwen2.5-coder-0.5b-instruct.gguf")
  models+=(--model "Qwen2.5-Coder-1.5B Q4_K_M=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
fi
if [ -z "$only7b" ] && [ -z "$onlyreal" ] && [ -z "$onlyshapes" ]; then
  models+=(--model "SmolLM2-135M Q4_1=models/SmolLM2-135M-Instruct.Q4_1.gguf")
  for t in Q4_0 Q4_K_M Q8_0; do models+=(--model "1B-shape $t=models/llama1b-shape-$t.gguf"); done
fi
[ -n "$with7b" ] && models+=(--model "7B-shape Q4_0=models/llama7b-shape-Q4_0.gguf")

cmd="bench/run.sh${with7b:+ $with7b}${onlyreal:+ --only-real}${onlyshapes:+ --only-shapes} --reps $reps --threads $threads"
python3 bench/compare.py --ember target/release/ember --llama-bench "$build/bin/llama-bench" \
  --llama-load "$bin/llama-load" --membw "$bin/membw" --threads "$threads" --reps "$reps" \
  --command "${cmd% }" "${extra[@]}" "${models[@]}"
