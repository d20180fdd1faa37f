#!/usr/bin/env python3
"""GPU benchmark report (bench/gpu.sh): ember's GPU backend per model, the fraction of the
adapter's memory bandwidth its decode reaches, and llama.cpp side by side when given a GPU build
of llama-bench. Prints a table and writes bench/gpu-results.json."""

import argparse
import json
import os
import subprocess
import sys

import gguf


def decode_bytes(path):
    """Bytes of weights one decode step reads: every matrix once, plus one embedding row
    (the whole table when the output head is tied to it)."""
    r = gguf.GGUFReader(path)
    tensors = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(tensors.values())
    embd = tensors.get("token_embd.weight", 0)
    if "output.weight" in tensors:
        rows = int(next(t for t in r.tensors if t.name == "token_embd.weight").shape[1])
        total -= embd - embd // max(rows, 1)
    return total


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--llama-bench")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--device", default="gpu")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()

    info = run_json([a.ember, "gpu-info", "--bandwidth", "--json"])
    bw = info.get("read_bytes_per_s")
    print(f"adapter: {info['adapter']}")
    print(
        "measured read bandwidth: "
        + (f"{bw / 1e9:.1f} GB/s" if bw else f"n/a ({info.get('bandwidth_error')})")
    )
    rows = []
    for m in a.models:
        res = run_json(
            [a.ember, "bench", "--device", a.device, "-m", m, "-p", str(a.p), "-n", str(a.n),
             "-r", str(a.reps), "--ttft-prompt", str(min(a.p, 128)), "--json"]
        )
        by_test = {r["test"]: r for r in res["results"]}
        tg = by_test.get(f"tg{a.n}", {}).get("mean")
        pp = by_test.get(f"pp{a.p}", {}).get("mean")
        nbytes = decode_bytes(m)
        row = {
            "model": os.path.basename(m),
            "device": res["results"][0]["device"] if res["results"] else a.device,
            "pp_tps": pp,
            "tg_tps": tg,
            "ttft_cold_ms": by_test.get(f"ttft{min(a.p, 128)}-cold", {}).get("mean"),
            "ttft_warm_ms": by_test.get(f"ttft{min(a.p, 128)}", {}).get("mean"),
            "decode_bytes": nbytes,
            "bandwidth_fraction": (tg * nbytes / bw) if (tg and bw) else None,
        }
        if a.llama_bench:
            lb = run_json(
                [a.llama_bench, "-m", m, "-p", str(a.p), "-n", str(a.n), "-r", str(a.reps),
                 "-ngl", "99", "-o", "json"]
            )
            for r in lb:
                key = "llama_pp_tps" if r.get("n_prompt", 0) > 0 else "llama_tg_tps"
                row[key] = r["avg_ts"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    fmt = lambda v, f="{:.1f}": "n/a" if v is None else f.format(v)
    head = "| model | pp t/s | tg t/s | TTFT cold / warm ms | decode GB/token | % of bandwidth |"
    if a.llama_bench:
        head += " llama.cpp pp / tg t/s | pp ratio | tg ratio |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        line = (
            f"| {r['model']} | {fmt(r['pp_tps'])} | {fmt(r['tg_tps'])} | "
            f"{fmt(r['ttft_cold_ms'], '{:.0f}')} / {fmt(r['ttft_warm_ms'], '{:.0f}')} | "
            f"{r['decode_bytes'] / 1e9:.2f} | "
            f"{fmt(None if r['bandwidth_fraction'] is None else 100 * r['bandwidth_fraction'])} |"
        )
        if a.llama_bench:
            lp, lt = r.get("llama_pp_tps"), r.get("llama_tg_tps")
            ratio = lambda x, y: None if not (x and y) else x / y
            line += (
                f" {fmt(lp)} / {fmt(lt)} | {fmt(ratio(r['pp_tps'], lp), '{:.2f}x')} | "
                f"{fmt(ratio(r['tg_tps'], lt), '{:.2f}x')} |"
            )
        print(line)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu-results.json")
    with open(out, "w") as f:
        json.dump({"adapter": info, "results": rows}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
