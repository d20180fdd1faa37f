#!/usr/bin/env bash
# The test suite, as run by CI: fetch/build the test assets (idempotent, cached under .cache/ and
# models/), then one release build serves the Rust tests, the C/JVM binding tests and examples;
# last, the ARM64 tests: cross-built for aarch64 and run under qemu (scripts/test_arm.sh; it
# installs Debian's cross toolchain and qemu first if they are missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup_test_assets.sh
cargo test --release --workspace --no-fail-fast
scripts/test_bindings.sh
scripts/test_arm.sh
