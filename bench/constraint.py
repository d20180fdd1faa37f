#!/usr/bin/env python3
"""Constrained generation speed, ember vs llama.cpp, in one run: tokens/s with and without a JSON
Schema, and ember's per-step mask cost (p50/p99 microseconds), on SmolLM2-135M (49k vocabulary)
and Qwen2.5-Coder-0.5B (152k). Greedy, 2 threads, the same raw prompt for both engines; llama.cpp
is llama-completion with --json-schema (its GBNF grammar path), timings from its perf print.

    python3 bench/constraint.py [--reps 3]   # writes bench/constraint.md
"""

import argparse
import json
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "target/release/ember")
LLAMA = os.path.join(ROOT, ".cache/llama.cpp-build/bin/llama-completion")
MODELS = [("SmolLM2-135M Q4_1", "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
          ("Qwen2.5-Coder-0.5B Q5_0/Q8_0", "models/qwen2.5-coder-0.5b-instruct.gguf")]
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 30}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "city": {"type": "string", "maxLength": 30},
    "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 3, "maxItems": 5}},
    "required": ["name", "age", "city", "hobbies"], "additionalProperties": False}
PROMPT = "Here is a detailed profile of a person, as JSON:\n"


def ember(path, constrained, n):
    args = [EMBER, "run", "-m", path, "-p", PROMPT, "-n", str(n), "--temp", "0", "-t", "2", "--json"]
    args += ["--json-schema", json.dumps(SCHEMA)] if constrained else ["--ignore-eos"]
    d = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    return d["generate_tokens_per_s"], d["generated_tokens"], d.get("constraint_mask_us")


def llama(path, constrained, n):
    args = [LLAMA, "-m", path, "-no-cnv", "-p", PROMPT, "-n", str(n), "--temp", "0", "-t", "2"]
    args += ["-j", json.dumps(SCHEMA)] if constrained else ["--ignore-eos"]
    err = subprocess.run(args, check=True, capture_output=True, text=True).stderr
    m = re.search(r"\s eval time =\s+([\d.]+) ms /\s+(\d+) runs", err)
    ms, runs = float(m.group(1)), int(m.group(2))
    s = re.search(r"sampling time =\s+([\d.]+) ms", err)
    return runs / ((ms + float(s.group(1))) / 1e3), runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rows = []
    for name, rel in MODELS:
        path = os.path.join(ROOT, rel)
        e_c, e_f, l_c, l_f, masks, n_tok = [], [], [], [], [], []
        for _ in range(a.reps):
            tps, n, mask = ember(path, True, 256)
            e_c.append(tps)
            n_tok.append(n)
            masks.append(mask)
            e_f.append(ember(path, False, n)[0])
            tps, n_l = llama(path, True, 256)
            l_c.append(tps)
            l_f.append(llama(path, False, n_l)[0])
        med = statistics.median
        rows.append((name, med(n_tok), med(e_f), med(e_c), med(l_f), med(l_c),
                     med(m["p50"] for m in masks), med(m["p99"] for m in masks)))
        print(rows[-1], flush=True)
    lines = [
        "# Constrained generation: ember vs llama.cpp",
        "",
        f"`python3 bench/constraint.py --reps {a.reps}` (this machine, 2 threads, greedy; medians). "
        "Schema: a 4-field person with a 3-5 item array; the same raw prompt for both engines. llama.cpp: "
        "`llama-completion --json-schema` (GBNF), tokens/s from its eval + sampling time (grammar work is "
        "in sampling). ember: `ember run --json-schema`, generation tokens/s; mask = per-step time to "
        "compute the llguidance mask and apply it to the logits.",
        "",
        "| model | tokens | ember free | ember constrained | overhead | llama.cpp free | llama.cpp constrained | overhead | constrained ember / llama.cpp | ember mask p50 / p99 µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, ef, ec, lf, lc, p50, p99 in rows:
        lines.append(f"| {name} | {n} | {ef:.1f} | {ec:.1f} | {1 - ec / ef:+.1%} | {lf:.1f} | {lc:.1f} | "
                     f"{1 - lc / lf:+.1%} | **{ec / lc:.2f}×** | {p50:.0f} / {p99:.0f} |")
    lines.append("")
    with open(os.path.join(ROOT, "bench/constraint.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
