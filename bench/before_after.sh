#!/usr/bin/env bash
# CPU speed of two ember builds, side by side: a refactor must not slow the CPU path.
#   bench/before_after.sh REV [--reps N] MODEL...
# Builds `ember` at git revision REV (CPU only, in a worktree under .cache/, its own target dir)
# and the working tree's `ember`, then alternates `ember bench -p 512 -n 128` of the two, REPS
# rounds per model, and prints pp512 and tg128 (median of the rounds) and their after/before ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rev="$1"; shift
reps=3
if [ "${1:-}" = --reps ]; then reps="$2"; shift 2; fi
tree="$root/.cache/before-tree"
rm -rf "$tree"; git worktree prune
git worktree add -q --detach "$tree" "$rev"
(cd "$tree" && CARGO_TARGET_DIR="$root/.cache/before-target" \
  cargo build --release -q -p ember --no-default-features --bin ember)
git worktree remove --force "$tree"
cargo build --release -q -p ember --bin ember
before="$root/.cache/before-target/release/ember" after="$root/target/release/ember"
python3 - "$before" "$after" "$reps" "$rev" "$@" <<'PY'
import json, statistics, subprocess, sys
before, after, reps, rev, models = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def bench(binary, model):
    out = subprocess.run([binary, "bench", "-m", model, "-p", "512", "-n", "128", "-r", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return {r["test"]: r["mean"] for r in json.loads(out)["results"]}
print(f"| model | pp512 {rev} | pp512 now | ratio | tg128 {rev} | tg128 now | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for m in models:
    runs = {"before": [], "after": []}
    for i in range(reps):  # alternate, so machine noise hits both builds alike
        for name, binary in (("before", before), ("after", after)) if i % 2 == 0 else (("after", after), ("before", before)):
            runs[name].append(bench(binary, m))
    med = {k: {t: statistics.median(r[t] for r in v) for t in v[0]} for k, v in runs.items()}
    pp = [t for t in med["after"] if t.startswith("pp")][0]
    tg = [t for t in med["after"] if t.startswith("tg")][0]
    b, a = med["before"], med["after"]
    print(f"| {m.split('/')[-1]} | {b[pp]:.1f} | {a[pp]:.1f} | {a[pp] / b[pp]:.3f} | {b[tg]:.1f} | {a[tg]:.1f} | {a[tg] / b[tg]:.3f} |")
PY
