#!/usr/bin/env bash
# The ARM64 tests (issue #10), as CI runs them on x86-64: cross-built for aarch64-unknown-linux-gnu
# with Debian's Rust 1.96 (scripts/setup_arm.sh installs it) and run under qemu-user.
#   1. the kernel twin tests at every aarch64 level: NEON, dotprod, i8mm
#      (scripts/test_arm_kernels.sh: -cpu cortex-a72, neoverse-n1, max);
#   2. the CPU-only `ember` CLI and libember.so for aarch64 (`--no-default-features`: no burn,
#      so CI compiles the GPU stack once, for the host);
#   3. the SmolLM2 golden test (greedy ids and log-probabilities against the llama.cpp goldens,
#      the same rules as on x86) on -cpu max, and the CLI's greedy ids against the x86 CLI's;
#   4. the C binding tests linked against the aarch64 libember.so, run under qemu.
# Needs the test assets (scripts/setup_test_assets.sh) and, for step 4's reference, nothing else.
# Target dir: $EMBER_ARM_TARGET_DIR, else target/arm (another compiler than the host build's).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)
export CARGO_TARGET_DIR="${EMBER_ARM_TARGET_DIR:-$root/target/arm}"
target=aarch64-unknown-linux-gnu
rel="$CARGO_TARGET_DIR/$target/release"
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
qemu=(qemu-aarch64-static -cpu max)

scripts/test_arm_kernels.sh

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
echo
echo "== building the ember CLI, libember.so and the golden test for $target (CPU only)"
nice -n 10 cargo build --release --target "$target" -p ember-c -p ember --no-default-features
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
nice -n 10 cargo test --release --target "$target" -p ember --no-default-features --test golden \
  --no-run --message-format=json >"$json"
golden="$(grep '"reason":"compiler-artifact"' "$json" | grep -o '"executable":"[^"]*golden[^"]*"' \
  | sed 's/^"executable":"//; s/"$//' | tail -n 1)"
[ -x "$golden" ] || { echo "no golden test binary was built" >&2; exit 1; }
for f in "$rel/ember" "$rel/libember.so"; do
  echo "   $f: $(aarch64-linux-gnu-readelf -h "$f" | grep -o "Machine:.*" | tr -s " ")"
done

echo
echo "== SmolLM2 golden test under ${qemu[*]} (first 3 of its 9 prompts, 64 steps each)"
# The other goldens (random 1B, Gemma 3, Qwen3 shapes) and the other prompts are x86's: the
# emulation costs ~10x, and one prompt's 64 greedy steps already run every kernel of the model.
# The GPU-engine goldens need the `gpu` feature, which this CPU-only build leaves out.
EMBER_GOLDEN_MAX_CASES=3 "${qemu[@]}" "$golden" smollm2_ --skip _gpu_ --skip _burn_ --test-threads=1

echo
echo "== the aarch64 CLI, greedy"
prompt="The capital of France is"
"${qemu[@]}" "$rel/ember" run -m "$model" -p "$prompt" -n 8 --temp 0 --ignore-eos -c 64 -t 2 \
  --json >"$CARGO_TARGET_DIR/arm-run.json"
work="$CARGO_TARGET_DIR/bindings-test"
mkdir -p "$work"
python3 - "$CARGO_TARGET_DIR/arm-run.json" "$work/reference.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write(" ".join(map(str, d["prompt_ids"])) + "\n")
    f.write(" ".join(map(str, d["generated_ids"])) + "\n")
print("   aarch64:", d["generated_ids"], repr(d["text"]))
PY
if [ -s target/bindings-test/reference.txt ]; then
  if cmp -s target/bindings-test/reference.txt "$work/reference.txt"; then
    echo "   same ids as the x86 CLI (target/bindings-test/reference.txt)"
  else
    echo "   the aarch64 CLI's greedy ids differ from the x86 CLI's:" >&2
    cat target/bindings-test/reference.txt "$work/reference.txt" >&2
    exit 1
  fi
fi

echo
echo "== C tests against the aarch64 libember.so, under ${qemu[*]}"
aarch64-linux-gnu-gcc -Wall -Wextra -Werror -std=c11 -Iinclude bindings/c/tests/test_ember.c \
  -o "$work/test_shared" -L"$rel" -lember -lpthread -Wl,-rpath,"$rel"
"${qemu[@]}" "$work/test_shared" "$model" "$work/reference.txt" | tee "$work/test_shared.log"
grep -qE '^[0-9]+ passed, 0 failed$' "$work/test_shared.log"

echo
echo "== ARM tests passed in $(($(date +%s) - start)) s"
