#!/usr/bin/env bash
# Validate `ember plan`'s cost model on this machine: for each model of BENCHMARKS.md present
# under models/ (and the other test models present), predict with `ember plan --device this`
# and measure with `ember bench` (same context, batch and threads), then write a markdown table
# predicted vs measured, with ratios, to bench/plan_validation.md. Target: within 15%.
#   bench/plan_validate.sh [--reps N] [--calibrate] [--with-7b]
# --calibrate also measures prefill at each kernel level (EMBER_ISA=scalar|avx2, on the
# smallest model) and prints the efficiencies the measurements imply, for
# runtime/src/plan/calibration.rs (how: docs/plan.md, "Calibration").
# About five minutes with --reps 2 (the default) on 2 cores. Needs: Rust, python3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
reps=2 calibrate="" with7b=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift ;;
    --calibrate) calibrate=1 ;;
    --with-7b) with7b=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cmd="bench/plan_validate.sh --reps $reps${calibrate:+ --calibrate}${with7b:+ --with-7b}"

cargo build --release -p ember
ember="$root/target/release/ember"
threads="$(nproc)"
work="$root/target/plan-validate"
mkdir -p "$work"
rm -f "$work"/*.json

# BENCHMARKS.md's models first, then the other models the tests use.
candidates=(
  "SmolLM2-135M Q4_1=models/SmolLM2-135M-Instruct.Q4_1.gguf"
  "1B-shape Q4_0=models/llama1b-shape-Q4_0.gguf"
  "1B-shape Q4_K_M=models/llama1b-shape-Q4_K_M.gguf"
  "1B-shape Q8_0=models/llama1b-shape-Q8_0.gguf"
  "1B-shape mixed=models/llama1b-shape-mixed.gguf"
  "Qwen2.5-Coder-0.5B Q4_K_M=models/qwen2.5-coder-0.5b-instruct.gguf"
  "Qwen2.5-Coder-1.5B Q4_K_M=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
)
[ -n "$with7b" ] && candidates+=("7B-shape Q4_0=models/llama7b-shape-Q4_0.gguf")

# One session shape for both tools: bench sizes its context max(pp, tg, ttft + 1) = 512.
ctx=512 batch=256 pp=512 tg=128 ttft=128
n=0 first_path=""
for entry in "${candidates[@]}"; do
  label="${entry%%=*}" path="${entry#*=}"
  [ -s "$path" ] || { echo "skip $label: $path missing"; continue; }
  n=$((n + 1))
  first_path="${first_path:-$path}"
  echo "== $label"
  plan() { "$ember" plan -m "$path" --device this --calibration-rates --json -c $ctx -b $batch -t "$threads" "$@"; }
  # decode: tg from an empty cache; prefill: pp512; TTFT: a 128-token prompt.
  plan --prompt 0 --gen $tg > "$work/$n.decode.json"
  plan --prompt $pp --gen 0 > "$work/$n.prefill.json"
  plan --prompt $ttft --gen 0 > "$work/$n.ttft.json"
  "$ember" bench -m "$path" -p $pp -n $tg --ttft-prompt $ttft -t "$threads" -b $batch \
    -r "$reps" --json > "$work/$n.bench.json"
  printf '%s\n' "$label" > "$work/$n.label"
done
[ "$n" -gt 0 ] || { echo "no models under models/: run scripts/fetch_models.sh" >&2; exit 1; }

if [ -n "$calibrate" ]; then
  # Prefill at the lower kernel levels, on the first (smallest) model present.
  path="$first_path" first="$(basename "$first_path")"
  for isa in scalar avx2; do
    echo "== prefill at EMBER_ISA=$isa ($first)"
    EMBER_ISA=$isa "$ember" plan -m "$path" --device this --calibration-rates --json -c $ctx -b $batch -t "$threads" \
      --prompt $ttft --gen 0 > "$work/isa-$isa.plan.json"
    EMBER_ISA=$isa "$ember" bench -m "$path" -p $ttft -n 0 --ttft-prompt 0 -t "$threads" -b $batch \
      -r "$reps" --json > "$work/isa-$isa.bench.json"
  done
fi

python3 - "$work" "$n" "$cmd" "$threads" "${calibrate:-0}" "$reps" <<'PY'
import json, os, platform, statistics, subprocess, sys, datetime
work, n, cmd, threads, calibrate, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", sys.argv[6]

def load(p):
    with open(p) as f:
        return json.loads(f.readline())

def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()

rows, implied_dec, implied_pp, residual = [], [], {}, []
for i in range(1, n + 1):
    label = open(f"{work}/{i}.label").read().strip()
    dec, pre, tt = (load(f"{work}/{i}.{k}.json") for k in ("decode", "prefill", "ttft"))
    bench = json.load(open(f"{work}/{i}.bench.json"))
    # The best run of each test: the machine is shared, and interference only slows a run.
    m = {r["test"]: (min if r["test"].startswith("ttft") else max)(r["samples"]) for r in bench["results"]}
    rss = bench["models"][0]["peak_rss_bytes"]
    got = {
        "decode": (dec["decode_tokens_per_s"], m["tg128"]),
        "prefill": (pre["prefill_tokens_per_s"], m["pp512"]),
        "ttft": (tt["ttft_ms"], m["ttft128"]),
        "rss": (dec["resident_bytes"] / 2**20, rss / 2**20),
    }
    rows.append((label, got, dec))
    # RSS not explained by the file and the session's state: ember itself and the tokenizer.
    residual.append((dec["metadata_bytes"], rss - dec["weights_bytes"] - dec["kv_bytes"] - dec["scratch_bytes"]))
    # The efficiency divides the memory and compute terms (not the small hand-off term), so
    # this is approximately the value that would make the prediction match.
    implied_dec.append(dec["decode_efficiency"] * m["tg128"] / dec["decode_tokens_per_s"])
    implied_pp.setdefault(pre["kernel"], []).append(
        pre["prefill_efficiency"] * m["pp512"] / pre["prefill_tokens_per_s"])

if calibrate:
    for isa in ("scalar", "avx2"):
        p = f"{work}/isa-{isa}.plan.json"
        if os.path.exists(p):
            plan = load(p)
            b = json.load(open(f"{work}/isa-{isa}.bench.json"))
            pp = next(max(r["samples"]) for r in b["results"] if r["test"].startswith("pp"))
            implied_pp.setdefault(plan["kernel"], []).append(
                plan["prefill_efficiency"] * pp / plan["prefill_tokens_per_s"])

def cell(pred, meas, fmt):
    return f"{fmt.format(pred)} | {fmt.format(meas)} | {pred / meas:.2f}"

bw = rows[0][2]["read_gb_per_s"]
out = [
    "# `ember plan` validation: predicted vs measured on this machine",
    "",
    f"Generated by `{cmd}` on {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    "",
    f"- Machine: {cpu()}, {os.cpu_count()} CPUs, {threads} threads; read bandwidth measured by "
    f"`ember plan --device this`: {bw:.1f} GB/s; kernels: {rows[0][2]['kernel']}.",
    f"- Predicted: `ember plan --device this --json -c 512 -b 256 -t {threads}` with `--prompt 0 --gen 128` "
    "(decode), `--prompt 512` (prefill), `--prompt 128` (TTFT); resident memory at that context.",
    f"- Measured: `ember bench -p 512 -n 128 --ttft-prompt 128 -b 256 -t {threads} -r {reps}` (tg128, pp512, "
    "ttft128: the best of the runs, as the machine is shared; peak RSS of the bench process, whose "
    "session has the same 512-token context).",
    "- Ratio: predicted ÷ measured (target 0.85–1.15). Efficiency constants in use: "
    f"decode {rows[0][2]['decode_efficiency']:.2f}, prefill {rows[0][2]['prefill_efficiency']:.2f} "
    "(runtime/src/plan/calibration.rs).",
    "",
    "| model | decode t/s pred | meas | ratio | prefill t/s pred | meas | ratio | TTFT128 ms pred | meas | ratio | resident MiB pred | peak RSS MiB | ratio |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
worst = 0.0
for label, g, _ in rows:
    out.append(f"| {label} | {cell(*g['decode'], '{:.1f}')} | {cell(*g['prefill'], '{:.1f}')} | "
               f"{cell(*g['ttft'], '{:.0f}')} | {cell(*g['rss'], '{:.0f}')} |")
    worst = max([worst] + [abs(p / m - 1) for p, m in g.values()])
out += ["", f"Largest deviation: {worst:.0%} ({'within' if worst <= 0.15 else 'outside'} the 15% target)."]
if calibrate:
    out += ["", "Efficiencies these measurements imply (median over the models; put them in calibration.rs):", ""]
    if implied_dec:
        out.append(f"- decode (approximate: the hand-off cost is fitted with it, see calibration.rs): {statistics.median(implied_dec):.3f} (from {len(implied_dec)} models: "
                   + ", ".join(f"{e:.3f}" for e in implied_dec) + ")")
    all_pp = [e for k, v in implied_pp.items() if k == rows[0][2]["kernel"] for e in v]
    out.append(f"- prefill: {statistics.median(all_pp):.3f} (" + ", ".join(f"{e:.3f}" for e in all_pp) + ")")
    for k, v in sorted(implied_pp.items()):
        out.append(f"  - at the {k} kernel level alone: " + ", ".join(f"{e:.3f}" for e in v))
    # runtime = base + factor × metadata bytes, least squares over the models.
    if len({v for v, _ in residual}) > 1:
        xs, ys = [v for v, _ in residual], [r for _, r in residual]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        out.append(f"- runtime bytes: base {(my - slope * mx) / 2**20:.1f} MiB + {slope:.1f} × the metadata bytes "
                   "(residuals: " + ", ".join(f"{v / 2**20:.1f} MiB metadata → {r / 2**20:.1f} MiB" for v, r in residual) + ")")
text = "\n".join(out) + "\n"
open("bench/plan_validation.md", "w").write(text)
print(text)
PY
