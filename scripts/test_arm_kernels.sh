#!/usr/bin/env bash
# Cross-builds the ember-kernels tests for aarch64 (release) once and runs them under qemu at
# each aarch64 ISA level the kernels have:
#   -cpu cortex-a72   Armv8.0 NEON only        -> Isa::Neon
#   -cpu neoverse-n1  NEON + dotprod (no i8mm) -> Isa::Dotprod
#   -cpu max          dotprod + i8mm           -> Isa::I8mm
# qemu enforces the CPU model, so each run really executes (and only may execute) that level's
# instructions. EMBER_EXPECT_ISA makes `current_never_exceeds_detected` assert the level that
# was detected, and that test is run again with --nocapture so the log shows it.
#
# Installs the toolchain first if needed (scripts/setup_arm.sh, idempotent). Honours
# CARGO_TARGET_DIR (CI sets one); fails if any test fails at any level.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$(date +%s)

if [[ ! -x /usr/bin/rustc ]] || ! command -v aarch64-linux-gnu-gcc >/dev/null \
  || ! command -v qemu-aarch64-static >/dev/null \
  || [[ ! -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ]]; then
  scripts/setup_arm.sh
fi

# Debian's Rust 1.96 has the arm64 std; a rustup toolchain on PATH has none.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
CARGO=cargo
command -v cargo >/dev/null || CARGO=/usr/bin/cargo
TARGET=aarch64-unknown-linux-gnu

echo "== building ember-kernels tests for $TARGET (release)"
json="$(mktemp)"
trap 'rm -f "$json"' EXIT
nice -n 10 "$CARGO" test --release --target "$TARGET" -p ember-kernels --no-run \
  --message-format=json >"$json"
mapfile -t bins < <(grep '"reason":"compiler-artifact"' "$json" \
  | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | sort -u)
if [[ ${#bins[@]} -eq 0 ]]; then
  echo "no test executables were built" >&2
  exit 1
fi
printf '   test binary: %s\n' "${bins[@]}"

fail=0
summary=()
for level in cortex-a72:neon neoverse-n1:dotprod max:i8mm; do
  cpu="${level%%:*}"
  isa="${level#*:}"
  echo
  echo "== qemu-aarch64-static -cpu $cpu (expect EMBER ISA $isa)"
  for bin in "${bins[@]}"; do
    # The level is printed by the ISA test itself.
    EMBER_EXPECT_ISA="$isa" qemu-aarch64-static -cpu "$cpu" "$bin" \
      cpu::isa::tests::current_never_exceeds_detected --exact --nocapture --test-threads=1 2>&1 \
      | grep -E 'ISA|^test result' || true
    log="$(mktemp)"
    if EMBER_EXPECT_ISA="$isa" qemu-aarch64-static -cpu "$cpu" "$bin" >"$log" 2>&1; then
      result="$(grep '^test result' "$log" | tail -1)"
      echo "   $result"
      summary+=("$cpu ($isa): $result")
    else
      cat "$log"
      echo "FAILED at -cpu $cpu" >&2
      summary+=("$cpu ($isa): FAILED")
      fail=1
    fi
    rm -f "$log"
  done
done

echo
echo "== summary"
printf '   %s\n' "${summary[@]}"
echo "   wall time: $(($(date +%s) - start)) s"
exit "$fail"
