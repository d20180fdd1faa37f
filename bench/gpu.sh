#!/usr/bin/env bash
# GPU benchmark of ember's burn/wgpu backend, for a machine with a real GPU, in one short run:
#   bench/gpu.sh [--no-7b] [--reps N] [-p PROMPT] [-n GEN] [--models "a.gguf b.gguf"]
# Builds ember, makes the random-weight 1B-shape (Q4_0, Q4_K_M, Q8_0) and 7B-shape (Q4_0) models
# if models/ lacks them (bench/make_models.sh: needs llama.cpp's llama-quantize; copy models/
# from another machine to skip that), measures the adapter's memory bandwidth (`ember gpu-info`,
# a CubeCL read probe), then `ember bench --device gpu` per model: prefill (pp) and decode (tg)
# tokens/s, cold and warm time to first token, and the fraction of the measured bandwidth decode
# reaches (weight bytes read per token × tokens/s ÷ bandwidth). Writes bench/gpu-results.json.
# With LLAMA_BENCH=/path/to/llama-bench (a Vulkan/CUDA/Metal build) llama.cpp runs the same
# models in the same run (-ngl 99) and the table gains the ratios.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
reps=3 prompt=512 gen=128 with7b=--with-7b models=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-7b) with7b="" ;;
    --reps) reps="$2"; shift ;;
    -p) prompt="$2"; shift ;;
    -n) gen="$2"; shift ;;
    --models) models="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cargo build --release -p ember
ember="$root/target/release/ember"
if [ -z "$models" ]; then
  have_all=1
  for m in llama1b-shape-Q4_0 llama1b-shape-Q4_K_M llama1b-shape-Q8_0; do
    [ -s "models/$m.gguf" ] || have_all=""
  done
  [ -n "$with7b" ] && { [ -s models/llama7b-shape-Q4_0.gguf ] || have_all=""; }
  if [ -z "$have_all" ]; then
    scripts/build_llama_cpp.sh
    bench/make_models.sh $with7b
  fi
  models="models/llama1b-shape-Q4_0.gguf models/llama1b-shape-Q4_K_M.gguf models/llama1b-shape-Q8_0.gguf"
  [ -n "$with7b" ] && models="$models models/llama7b-shape-Q4_0.gguf"
fi
# shellcheck disable=SC2086
python3 bench/gpu_report.py --ember "$ember" --reps "$reps" -p "$prompt" -n "$gen" \
  ${LLAMA_BENCH:+--llama-bench "$LLAMA_BENCH"} $models
