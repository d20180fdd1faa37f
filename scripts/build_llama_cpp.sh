#!/usr/bin/env bash
# Build the llama.cpp reference tools (CPU only) from the sources that scripts/fetch_models.sh
# extracted into .cache/llama.cpp (llama.cpp vendored in the llama-cpp-python 0.3.36 sdist).
#   .cache/llama.cpp-build/bin/{llama-quantize,llama-bench,llama-perplexity,llama-simple,llama-tokenize,llama-completion}
# Needs a C/C++ compiler plus cmake and ninja (`pip install cmake ninja`).
# Also links tests/golden/llama_golden.cpp into bin/llama-golden.
# Cached: does nothing when every binary already exists. EMBER_LLAMA_TARGETS overrides the target list
# (scripts/make_random_model.sh asks for llama-quantize only).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/.cache/llama.cpp"
build="$root/.cache/llama.cpp-build"
targets=(${EMBER_LLAMA_TARGETS:-llama-quantize llama-bench llama-perplexity llama-simple llama-tokenize llama-completion})

if [ ! -f "$src/CMakeLists.txt" ]; then
  echo "llama.cpp sources missing: run scripts/fetch_models.sh first" >&2
  exit 1
fi

# tests/golden/llama_golden.cpp: the small recorder behind tests/golden/make_golden.py, linked
# against the static libraries of this build.
build_golden() {
  local out="$build/bin/llama-golden" srcfile="$root/tests/golden/llama_golden.cpp"
  if [ ! -x "$out" ] || [ "$srcfile" -nt "$out" ]; then
    "${CXX:-c++}" -O2 -std=c++17 "$srcfile" -I"$src/include" -I"$src/ggml/include" \
      "$build/src/libllama.a" "$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" \
      "$build/ggml/src/libggml-base.a" -lpthread -ldl -lm -o "$out"
  fi
}

missing=0
for t in "${targets[@]}"; do
  [ -x "$build/bin/$t" ] || missing=1
done
if [ "$missing" = 0 ]; then
  build_golden
  echo "llama.cpp tools already built in $build/bin"
  exit 0
fi

command -v cmake >/dev/null && command -v ninja >/dev/null || pip install --quiet cmake ninja

# -march=native may switch on AMX, whose tiles fault under some hypervisors even though cpuid lists
# them ("Illegal instruction" in ggml_backend_amx_mul_mat), and AVX512-FP16, with which ggml's F16
# vector helpers (GGML_F16_VEC_FMA, simd-mappings.h) accumulate in half precision; the reference
# should not depend on that CPU feature. The AVX-512/AVX2 kernels are used instead.
# -ffp-contract=off keeps scalar float code (e.g. the reference quantizers behind llama-quantize)
# free of FMA contraction, so quantized files are bit-identical across CPUs.
flags="-ffp-contract=off"
if [ "$(uname -m)" = x86_64 ]; then
  flags="$flags -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16"
fi

# The sdist has no .git, so pin the build number/commit to the sdist version for the version string.
cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_CXX_FLAGS="$flags" \
  -DGGML_OPENMP=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_EXAMPLES=ON \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_COMMIT="llama-cpp-python-0.3.36-sdist" \
  -DLLAMA_BUILD_NUMBER=0 >/dev/null

cmake --build "$build" --config Release -j "${EMBER_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}" llama ggml
build_golden
echo "llama.cpp tools built in $build/bin"
