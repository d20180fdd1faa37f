#!/usr/bin/env python3
"""Side-by-side speed of ember and llama.cpp on the same GGUF files (driven by bench/run.sh).

For every model, the two engines run in alternation (ember, llama.cpp, ember, ...), one process
per run, so both see the same machine load and each run's peak RSS is that of one model. Prints
one table (pp512 and tg128 tokens/s with the ember/llama.cpp ratio, TTFT, load time, peak RSS)
and writes bench/results.json, bench/tokens_per_s.png and BENCHMARKS.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def weight_bytes_per_token(path):
    """Bytes of weights one decode step streams: every tensor except the token-embedding table
    (one row is read) unless it doubles as the output head; of a mixture of experts' stacked
    `*_exps` tensors, the token's `expert_used_count` experts only."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    experts = r.fields.get(f"{arch}.expert_count")
    share = int(r.fields[f"{arch}.expert_used_count"].contents()) / int(experts.contents()) if experts else 1.0
    names = {t.name: int(t.n_bytes) * (share if t.name.endswith("_exps.weight") else 1.0) for t in r.tensors}
    total = sum(names.values())
    if "output.weight" in names:
        total -= names.get("token_embd.weight", 0)
    get = lambda k: int(r.fields[f"{arch}.{k}"].contents())
    n_head = get("attention.head_count")
    kv_heads = get("attention.head_count_kv") if f"{arch}.attention.head_count_kv" in r.fields else n_head
    head_dim = get("attention.key_length") if f"{arch}.attention.key_length" in r.fields else get("embedding_length") // n_head
    kv_dim = kv_heads * head_dim
    kv_bytes_per_token = 2 * get("block_count") * kv_dim * 2  # f16 K and V, every layer
    return total, kv_bytes_per_token


def run_ember(args, path):
    out = sh([args.ember, "bench", "-m", path, "-p", str(args.n_prompt), "-n", str(args.n_gen),
              "-t", str(args.threads), "-r", "1", "--ttft-prompt", str(args.ttft), "--json"]).stdout
    j = json.loads(out)
    res = {r["test"]: r["mean"] for r in j["results"]}
    m = j["models"][0]
    return {
        "pp": res[f"pp{args.n_prompt}"],
        "tg": res[f"tg{args.n_gen}"],
        "ttft_ms": res[f"ttft{args.ttft}"],
        "load_ms": m["load_ms"],
        "rss": m["peak_rss_bytes"],
    }


def run_llama(args, path):
    p = sh(["/usr/bin/time", "-f", "MAXRSS %M", args.llama_bench, "-m", path,
            "-p", f"{args.n_prompt},{args.ttft}", "-n", str(args.n_gen), "-t", str(args.threads),
            "-r", "1", "-o", "json"])
    rss = int(re.search(r"MAXRSS (\d+)", p.stderr).group(1)) * 1024
    res = {}
    for r in json.loads(p.stdout):
        key = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
        res[key] = r["avg_ts"]
    return {
        "pp": res[f"pp{args.n_prompt}"],
        "tg": res[f"tg{args.n_gen}"],
        # llama-bench has no first-token test: prompt time of a ttft-token prompt.
        "ttft_ms": 1e3 * args.ttft / res[f"pp{args.ttft}"],
        "rss": rss,
    }


def ms(v):
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def machine():
    lscpu = sh(["lscpu"]).stdout
    field = lambda k: next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith(k + ":")), "?")
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    rustc = sh(["rustc", "--version"]).stdout.strip()
    return {
        "cpu": field("Model name"),
        "cpus": field("CPU(s)"),
        "flags_simd": " ".join(f for f in field("Flags").split() if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")),
        "l3": field("L3 cache"),
        "mem_gib": round(int(mem) / 1048576, 1),
        "hypervisor": field("Hypervisor vendor"),
        "kernel": platform.release(),
        "rustc": rustc,
        "load_avg_at_start": open("/proc/loadavg").read().split()[:3],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ember")
    ap.add_argument("--llama-bench")
    ap.add_argument("--llama-load")
    ap.add_argument("--membw")
    ap.add_argument("--model", action="append", default=[], help="NAME=PATH")
    ap.add_argument("--render", action="store_true",
                    help="only re-render the table, plot and BENCHMARKS.md from bench/results.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--ttft", type=int, default=128)
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--out", default=ROOT)
    ap.add_argument("--append", action="store_true",
                    help="merge into an existing bench/results.json (rows of the same model are replaced)")
    args = ap.parse_args()
    if args.render:
        result = json.load(open(os.path.join(args.out, "bench", "results.json")))
        render(result, args)
        return
    if not (args.ember and args.llama_bench and args.llama_load and args.membw and args.model):
        ap.error("--ember, --llama-bench, --llama-load, --membw and --model are required")

    info = machine()
    bw = {t: float(sh([args.membw, str(t)]).stdout) for t in (1, args.threads)}
    info["read_bw_gbs"] = bw
    print(f"machine: {info['cpu']}, {info['cpus']} CPUs, {info['mem_gib']} GiB; read bandwidth "
          + ", ".join(f"{v:.1f} GB/s ({t} thr)" for t, v in bw.items()), flush=True)

    rows = []
    for spec in args.model:
        name, path = spec.split("=", 1)
        e_runs, l_runs = [], []
        for rep in range(args.reps):
            e_runs.append(run_ember(args, path))
            l_runs.append(run_llama(args, path))
            print(f"  {name} rep {rep + 1}/{args.reps}: ember pp {e_runs[-1]['pp']:.1f} tg {e_runs[-1]['tg']:.1f} | "
                  f"llama.cpp pp {l_runs[-1]['pp']:.1f} tg {l_runs[-1]['tg']:.1f}", flush=True)
        l_load = float(sh([args.llama_load, path, "3"]).stdout)
        wbytes, kv_per_tok = weight_bytes_per_token(path)
        row = {"model": name, "path": os.path.relpath(path, ROOT), "file_bytes": os.path.getsize(path),
               "weight_bytes_per_token": wbytes,
               # ember bench's context: max(pp, tg, ttft + 1) positions.
               "kv_bytes": kv_per_tok * max(args.n_prompt, args.n_gen, args.ttft + 1),
               "ember": {}, "llama": {}}
        for key in ("pp", "tg", "ttft_ms"):
            row["ember"][key] = ms([r[key] for r in e_runs])
            row["llama"][key] = ms([r[key] for r in l_runs])
            row["ember"][key + "_samples"] = [r[key] for r in e_runs]
            row["llama"][key + "_samples"] = [r[key] for r in l_runs]
        # Per-rep ratios of neighbouring runs: robust to load drifting over the session.
        row["pp_ratio"] = statistics.median(e["pp"] / l["pp"] for e, l in zip(e_runs, l_runs))
        row["tg_ratio"] = statistics.median(e["tg"] / l["tg"] for e, l in zip(e_runs, l_runs))
        row["ember"]["load_ms"] = min(r["load_ms"] for r in e_runs)
        row["llama"]["load_ms"] = l_load
        row["ember"]["rss"] = max(r["rss"] for r in e_runs)
        row["llama"]["rss"] = max(r["rss"] for r in l_runs)
        row["tg_bound"] = bw[args.threads] * 1e9 / wbytes
        rows.append(row)

    if args.append and os.path.exists(os.path.join(args.out, "bench", "results.json")):
        old = json.load(open(os.path.join(args.out, "bench", "results.json")))
        mine = {r["model"] for r in rows}
        rows = [r for r in old["rows"] if r["model"] not in mine] + rows
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": info, "threads": args.threads, "reps": args.reps, "rows": rows}
    os.makedirs(os.path.join(args.out, "bench"), exist_ok=True)
    with open(os.path.join(args.out, "bench", "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    render(result, args)


def render(result, args):
    for r in result["rows"]:
        if "kv_bytes" not in r:
            r["kv_bytes"] = weight_bytes_per_token(os.path.join(ROOT, r["path"]))[1] * max(args.n_prompt, args.n_gen, args.ttft + 1)
    order = ["SmolLM2", "Gemma", "Qwen2.5-Coder-0.5B", "Qwen2.5-Coder-1.5B", "1B-shape Q4_0", "1B-shape Q4_K_M", "1B-shape Q8_0", "7B"]
    result["rows"].sort(key=lambda r: next((i for i, o in enumerate(order) if r["model"].startswith(o)), 99))
    table = markdown_table(result, args) + "\n\n" + targets_table(result, args)
    print(table)
    plot(result, os.path.join(args.out, "bench", "tokens_per_s.png"), args)
    write_benchmarks_md(result, table, args)


def markdown_table(res, args):
    t = res["threads"]
    p, n = args.n_prompt, args.n_gen
    lines = [
        f"| model | size | pp{p} ember | pp{p} llama.cpp | ratio | tg{n} ember | tg{n} llama.cpp | ratio | tg{n} bound | TTFT{args.ttft} ember / llama.cpp | load ember / llama.cpp | peak RSS ember / llama.cpp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        e, l = r["ember"], r["llama"]
        lines.append(
            f"| {r['model']} | {r['file_bytes'] / 2**20:.0f} MiB "
            f"| {e['pp'][0]:.1f} ± {e['pp'][1]:.1f} | {l['pp'][0]:.1f} ± {l['pp'][1]:.1f} | **{r['pp_ratio']:.2f}×** "
            f"| {e['tg'][0]:.1f} ± {e['tg'][1]:.1f} | {l['tg'][0]:.1f} ± {l['tg'][1]:.1f} | **{r['tg_ratio']:.2f}×** "
            f"| {r['tg_bound']:.1f} ({e['tg'][0] / r['tg_bound']:.0%}) "
            f"| {e['ttft_ms'][0]:.0f} / {l['ttft_ms'][0]:.0f} ms "
            f"| {e['load_ms']:.0f} / {l['load_ms']:.0f} ms "
            f"| {e['rss'] / 2**20:.0f} / {l['rss'] / 2**20:.0f} MiB |"
        )
    return "\n".join(lines)


def targets_table(res, args):
    """The issue's targets, each marked met or not with the measured figure."""
    yes = lambda ok: "met" if ok else "**not met**"
    lines = ["| target | model | measured | status |", "|---|---|---|---|"]
    for r in res["rows"]:
        e, l = r["ember"], r["llama"]
        small = r["model"].startswith("SmolLM2")
        want = 1.5 if small else 1.0
        lines.append(f"| tg{args.n_gen} ≥ {want}× llama.cpp | {r['model']} | {r['tg_ratio']:.2f}× | {yes(r['tg_ratio'] >= want)} |")
        if r["model"].startswith("1B"):
            frac = e["tg"][0] / r["tg_bound"]
            lines.append(f"| tg{args.n_gen} ≥ 90% of bandwidth bound | {r['model']} | {frac:.0%} of {r['tg_bound']:.1f} t/s | {yes(frac >= 0.9)} |")
        lines.append(f"| pp{args.n_prompt} ≥ 1.0× llama.cpp | {r['model']} | {r['pp_ratio']:.2f}× | {yes(r['pp_ratio'] >= 1.0)} |")
        limit = r["file_bytes"] + r["kv_bytes"] + 100 * 2**20
        lines.append(f"| peak RSS ≤ file + KV + 100 MB | {r['model']} | {e['rss'] / 2**20:.0f} MiB (limit {limit / 2**20:.0f}) | {yes(e['rss'] <= limit)} |")
        lines.append(f"| load ≤ llama.cpp | {r['model']} | {e['load_ms']:.0f} vs {l['load_ms']:.0f} ms | {yes(e['load_ms'] <= l['load_ms'])} |")
    return "\n".join(lines)


def plot(res, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in ((axes[0], "pp", f"prompt processing pp{args.n_prompt}"), (axes[1], "tg", f"generation tg{args.n_gen}")):
        xs = list(range(len(rows)))
        # Markers on a log axis (bars would start at an arbitrary floor): models differ by 100×.
        for eng, label, marker, dx in (("ember", "ember", "o", -0.08), ("llama", "llama.cpp", "s", 0.08)):
            v = [r[eng][key][0] for r in rows]
            ax.errorbar([x + dx for x in xs], v, yerr=[r[eng][key][1] for r in rows], fmt=marker,
                        markersize=8, capsize=3, label=label)
            for x, y in zip(xs, v):
                ax.annotate(f"{y:.1f}", (x + dx, y), textcoords="offset points", xytext=(10 if dx > 0 else -10, 0),
                            ha="left" if dx > 0 else "right", va="center", fontsize=7)
        for x, r in zip(xs, rows):
            top = max(r["ember"][key][0], r["llama"][key][0])
            ax.annotate(f"{r[key + '_ratio']:.2f}×", (x, top), textcoords="offset points", xytext=(0, 12),
                        ha="center", fontsize=8, weight="bold")
        ax.set_xlim(-0.6, len(rows) - 0.4)
        lo = min(min(r["ember"][key][0], r["llama"][key][0]) for r in rows)
        hi = max(max(r["ember"][key][0], r["llama"][key][0]) for r in rows)
        ax.set_ylim(lo / 1.6, hi * 1.8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["model"] for r in rows], rotation=15, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("tokens/s (log)")
        ax.set_title(f"{title}, {res['threads']} threads")
        ax.legend()
    fig.suptitle(f"ember vs llama.cpp — {res['machine']['cpu']} ({res['date'][:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_benchmarks_md(res, table, args):
    m = res["machine"]
    bw = ", ".join(f"{v:.1f} GB/s with {t} thread{'s' if int(t) > 1 else ''}" for t, v in m["read_bw_gbs"].items())
    md = f"""# Benchmarks: ember vs llama.cpp (CPU)

Generated by `{args.command}` on {res['date']} (bench/compare.py writes this file, bench/results.json
and bench/tokens_per_s.png).

## Machine

- CPU: {m['cpu']}, {m['cpus']} vCPUs ({m['hypervisor']} guest), SIMD: {m['flags_simd']}, L3 {m['l3']}
- Memory: {m['mem_gib']} GiB; measured read bandwidth (bench/membw.c): {bw}
- Linux {m['kernel']}, {m['rustc']}; llama.cpp from the llama-cpp-python 0.3.36 sdist (scripts/build_llama_cpp.sh:
  GGML_NATIVE, no OpenMP, AMX off, default CPU repacking on)
- Load average when the run started: {' '.join(m['load_avg_at_start'])} (the machine is shared; the engines
  alternate run by run, and ratios are medians of neighbouring-run ratios)

## Results ({res['threads']} threads, {res['reps']} alternating runs per engine)

{table}

- pp/tg: tokens/s, mean ± sd over runs (llama-bench `-r 1` and `ember bench -r 1`, each after one warm-up).
- tg bound: measured read bandwidth ÷ weight bytes streamed per generated token (all tensors but the
  embedding table, which only contributes one row unless it is also the output head; of a mixture of
  experts, the token's experts only); the percentage
  is ember's tg as a fraction of it.
- TTFT: ember measures a {args.ttft}-token prompt plus choosing the first token; llama-bench has no
  such test, so its figure is {args.ttft} ÷ its pp{args.ttft} rate.
- Load: ember `Model::load` (map + parse); llama.cpp `llama_model_load_from_file` (bench/llama_load.cpp),
  best of several runs, page cache warm.
- Peak RSS: VmHWM of one process that loads one model and runs pp{args.n_prompt} + tg{args.n_gen}
  (llama.cpp: `/usr/bin/time` max RSS of llama-bench).

![tokens/s](bench/tokens_per_s.png)
"""
    # Tables other harnesses write (bench/constraint.py: constrained generation).
    for extra in ("notes.md", "constraint.md"):
        extra = os.path.join(ROOT, "bench", extra)
        if os.path.exists(extra):
            text = open(extra).read()
            # A harness's own page starts with a title: it becomes a section here.
            md += "\n" + ("#" + text if text.startswith("# ") else text)
    # Keep the perplexity table that tests/hf/perplexity_table.py writes into the same file.
    out = os.path.join(args.out, "BENCHMARKS.md")
    begin, end = "<!-- perplexity-table:begin -->", "<!-- perplexity-table:end -->"
    old = open(out).read() if os.path.exists(out) else ""
    if begin in old and end in old:
        md = md.rstrip("\n") + "\n\n" + old[old.index(begin):old.index(end) + len(end)] + "\n"
    with open(out, "w") as f:
        f.write(md)


if __name__ == "__main__":
    main()
