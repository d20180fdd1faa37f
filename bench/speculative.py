#!/usr/bin/env python3
"""Speculative decoding speed, ember vs llama.cpp, in one run: Qwen2.5-Coder-1.5B-Instruct Q4_K_M
alone and with Qwen2.5-Coder-0.5B-Instruct drafting, on code prompts; greedy, 2 threads, 128
tokens (or to end-of-generation), generation tokens/s and draft acceptance. llama.cpp is
llama-completion (target alone) and llama-speculative (same sdist) with --poll 0 (with its
default polling, two spinning thread pools on 2 cores ran it at 9-12 tok/s), at its default
draft length (3) and at 8 with --spec-draft-p-min 0.75; ember uses its defaults (--draft-max 8,
adaptive length, --draft-p-min 0.5).

    EMBER_LLAMA_TARGETS="llama-speculative llama-completion" scripts/build_llama_cpp.sh
    python3 bench/speculative.py [--reps 1]   # writes bench/speculative.md
"""

import argparse
import json
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "target/release/ember")
BIN = os.path.join(ROOT, ".cache/llama.cpp-build/bin")
TARGET = os.path.join(ROOT, "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
DRAFT = os.path.join(ROOT, "models/qwen2.5-coder-0.5b-instruct.gguf")
N = 128
PROMPTS = [
    "def fibonacci(n):",
    "def is_palindrome(s: str) -> bool:\n    \"\"\"Return True if s reads the same backwards, ignoring case and spaces.\"\"\"\n",
    "import json\n\ndef load_config(path):\n    \"\"\"Read a JSON config file and fill in defaults.\"\"\"\n",
    "class Stack:\n    \"\"\"A LIFO stack backed by a list.\"\"\"\n\n    def __init__(self):\n",
    "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n",
]


def ember(prompt, draft):
    args = [EMBER, "run", "-m", TARGET, "-p", prompt, "-n", str(N), "--temp", "0", "-t", "2",
            "-c", "1024", "--json"]
    if draft:
        args += ["--draft", DRAFT]
    d = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    acc = d["draft_accepted"] / d["drafted_tokens"] if d["drafted_tokens"] else None
    return d["generate_tokens_per_s"], d["generated_tokens"], acc


def llama_alone(prompt):
    args = [os.path.join(BIN, "llama-completion"), "-m", TARGET, "-no-cnv", "-p", prompt,
            "-n", str(N), "--temp", "0", "-t", "2", "-c", "1024"]
    err = subprocess.run(args, check=True, capture_output=True, text=True).stderr
    m = re.search(r"\s eval time =\s+([\d.]+) ms /\s+(\d+) runs", err)
    return int(m.group(2)) / (float(m.group(1)) / 1e3), int(m.group(2)), None


def llama_spec(prompt, n_max, p_min):
    args = [os.path.join(BIN, "llama-speculative"), "-m", TARGET, "-md", DRAFT, "-p", prompt,
            "-n", str(N), "--temp", "0", "-t", "2", "-td", "2", "-c", "1024",
            "--spec-draft-n-max", str(n_max), "--spec-draft-p-min", str(p_min),
            "--poll", "0", "--poll-draft", "0"]
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    log = out.stdout + out.stderr
    m = re.search(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds", log)
    acc = re.search(r"accept\s+=\s+([\d.]+)%", log)
    return int(m.group(1)) / float(m.group(2)), int(m.group(1)), float(acc.group(1)) / 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    runs = {
        "ember, 1.5B alone": lambda p: ember(p, False),
        "ember, 1.5B + 0.5B draft": lambda p: ember(p, True),
        "llama.cpp, 1.5B alone": llama_alone,
        "llama-speculative, draft 3": lambda p: llama_spec(p, 3, 0.0),
        "llama-speculative, draft 8, p-min 0.75": lambda p: llama_spec(p, 8, 0.75),
    }
    results = {k: [] for k in runs}
    for prompt in PROMPTS:
        for name, run in runs.items():
            for _ in range(a.reps):
                results[name].append(run(prompt))
            print(f"{name:40s} {results[name][-1]}", flush=True)
    base = statistics.mean(r[0] for r in results["ember, 1.5B alone"])
    llama_base = statistics.mean(r[0] for r in results["llama.cpp, 1.5B alone"])
    lines = ["| engine | generation tok/s (mean of prompts) | vs ember alone | vs llama.cpp alone | acceptance |",
             "|---|---:|---:|---:|---:|"]
    for name, rs in results.items():
        tps = statistics.mean(r[0] for r in rs)
        accs = [r[2] for r in rs if r[2] is not None]
        acc = f"{100 * statistics.mean(accs):.0f}%" if accs else "-"
        lines.append(f"| {name} | {tps:.1f} | {tps / base:.2f}× | {tps / llama_base:.2f}× | {acc} |")
    per = ["", "Per prompt (tok/s; tokens generated):", "",
           "| prompt | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for i, prompt in enumerate(PROMPTS):
        cells = []
        for name in runs:
            rs = results[name][i * a.reps:(i + 1) * a.reps]
            cells.append(f"{statistics.mean(r[0] for r in rs):.1f} ({rs[0][1]})")
        per.append(f"| `{prompt.splitlines()[0][:40]}` | " + " | ".join(cells) + " |")
    text = "\n".join(lines + per) + "\n"
    with open(os.path.join(ROOT, "bench/speculative.md"), "w") as f:
        f.write(f"<!-- python3 bench/speculative.py --reps {a.reps} -->\n" + text)
    print(text)


if __name__ == "__main__":
    main()
