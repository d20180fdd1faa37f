#!/usr/bin/env bash
# ember vs llama.cpp on a real ARM64 board (Raspberry Pi 4/5, Jetson, RK3588, Graviton, an
# Apple-silicon Linux VM), side by side in one run; prints each test's tokens/s and the ratio.
#   bench/arm.sh [--threads T] [--reps N] [MODEL.gguf ...]
# Default models: SmolLM2-135M Q4_1 and the random-weight 1B-shape Q4_0 (bench/make_models.sh
# writes it; copy models/ over from an x86 machine if the board has no Python gguf).
# Builds ember natively (cargo build --release -p ember --no-default-features: the CPU engine)
# and llama.cpp's llama-bench from the same llama-cpp-python sdist as on x86, with
# GGML_NATIVE=ON (the board's own best level, as ember detects its own). EMBER_ISA forces ember
# to a lower level (neon, dotprod, i8mm) to compare levels.
# No ARM hardware was available where this script was written: BENCHMARKS.md says what was
# measured instead (under qemu) and why wall time there means nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
threads=4 reps=3 models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    *) models+=("$1") ;;
  esac
  shift
done
[ "$(uname -m)" = aarch64 ] || { echo "bench/arm.sh runs on an aarch64 machine (this is $(uname -m))" >&2; exit 2; }
[ ${#models[@]} -gt 0 ] || models=(models/SmolLM2-135M-Instruct.Q4_1.gguf models/llama1b-shape-q4_0.gguf)

cargo build --release -p ember --no-default-features
[ -f .cache/llama.cpp/CMakeLists.txt ] || EMBER_SKIP_LLAMA_CPP=0 scripts/fetch_models.sh
build=.cache/llama.cpp-arm-build
if [ ! -x "$build/bin/llama-bench" ]; then
  cmake -S .cache/llama.cpp -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build "$build" --target llama-bench -j "$(nproc)"
fi

python3 - "$threads" "$reps" "$build/bin/llama-bench" target/release/ember "${models[@]}" <<'PY'
import json, subprocess, sys
threads, reps, llama, ember, *models = sys.argv[1:]
def llama_run(m):
    out = subprocess.run([llama, "-m", m, "-t", threads, "-r", reps, "-p", "512", "-n", "128", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return {("pp512" if r["n_prompt"] else "tg128"): r["avg_ts"] for r in json.loads(out)}
def ember_run(m):
    out = subprocess.run([ember, "bench", "-m", m, "-t", threads, "-r", reps, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return {r["test"]: r["mean"] for r in json.loads(out)["results"] if r["test"] in ("pp512", "tg128")}
print(f"| model | test | ember t/s | llama.cpp t/s | ratio |\n|---|---|---:|---:|---:|")
for m in models:
    e, l = ember_run(m), llama_run(m)
    for t in ("pp512", "tg128"):
        print(f"| {m.split('/')[-1]} | {t} | {e[t]:.1f} | {l[t]:.1f} | {e[t] / l[t]:.2f} |")
PY
