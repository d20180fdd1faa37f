#!/usr/bin/env bash
# Build the llama.cpp reference tools (CPU only) from the sources that scripts/fetch_models.sh
# extracted into .cache/llama.cpp (llama.cpp vendored in the llama-cpp-python 0.3.36 sdist).
#   .cache/llama.cpp-build/bin/{llama-quantize,llama-bench,llama-perplexity,llama-simple,llama-tokenize,llama-completion}
# Needs a C/C++ compiler plus cmake and ninja (`pip install cmake ninja`).
# Cached: does nothing when every binary already exists. EMBER_LLAMA_TARGETS overrides the target list.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/.cache/llama.cpp"
build="$root/.cache/llama.cpp-build"
targets=(${EMBER_LLAMA_TARGETS:-llama-quantize llama-bench llama-perplexity llama-simple llama-tokenize llama-completion})

if [ ! -f "$src/CMakeLists.txt" ]; then
  echo "llama.cpp sources missing: run scripts/fetch_models.sh first" >&2
  exit 1
fi

missing=0
for t in "${targets[@]}"; do
  [ -x "$build/bin/$t" ] || missing=1
done
if [ "$missing" = 0 ]; then
  echo "llama.cpp tools already built in $build/bin"
  exit 0
fi

command -v cmake >/dev/null && command -v ninja >/dev/null || pip install --quiet cmake ninja

# The sdist has no .git, so pin the build number/commit to the sdist version for the version string.
cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DGGML_OPENMP=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_EXAMPLES=ON \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_COMMIT="llama-cpp-python-0.3.36-sdist" \
  -DLLAMA_BUILD_NUMBER=0 >/dev/null

cmake --build "$build" --config Release -j "${EMBER_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}"
echo "llama.cpp tools built in $build/bin"
