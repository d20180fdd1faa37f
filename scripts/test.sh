#!/usr/bin/env bash
# The test suite, as run by CI: fetch/build the test assets (idempotent, cached under .cache/ and
# models/), then one release build serves the Rust tests, the C/JVM binding tests and examples.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup_test_assets.sh
cargo test --release --workspace --no-fail-fast
scripts/test_bindings.sh
