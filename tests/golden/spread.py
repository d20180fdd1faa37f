#!/usr/bin/env python3
"""Compare log-probability dumps of tests/golden.rs (EMBER_GOLDEN_DUMP=DIR) with each other and with
the llama.cpp golden, to calibrate the tolerances stated in tests/golden.rs.

    EMBER_GOLDEN_DUMP=/tmp/simd   cargo test --release -p ember --test golden smollm2_greedy
    EMBER_ISA=scalar EMBER_GOLDEN_DUMP=/tmp/scalar cargo test --release -p ember --test golden smollm2_greedy
    python3 tests/golden/spread.py tests/golden/smollm2-135m-q4_1.json /tmp/simd /tmp/scalar
"""
import json
import math
import os
import statistics
import sys

golden_path, dir_a, dir_b = sys.argv[1:4]
golden = json.load(open(golden_path))
name = os.path.basename(golden_path)
rows = {"A vs B (ember vs ember)": ([], []), "A vs llama.cpp": ([], []), "B vs llama.cpp": ([], [])}
for case in golden["cases"]:
    f = f"{name}.{case['name']}.json"
    a = json.load(open(os.path.join(dir_a, f)))
    b = json.load(open(os.path.join(dir_b, f)))
    ref = [lp for step in case["top_logprobs"] for _, lp in step]
    for pair, (x, y) in zip(rows.values(), [(a, b), (a, ref), (b, ref)]):
        for u, v in zip(x, y):
            pair[0].append(abs(u - v))
            pair[1].append(abs(math.exp(u) - math.exp(v)))
for label, (lp, p) in rows.items():
    lp.sort()
    print(f"{label:26} |Δlogprob| mean {statistics.mean(lp):.4f} p90 {lp[len(lp) * 9 // 10]:.4f} "
          f"max {lp[-1]:.4f} | |Δp| max {max(p):.4f}")
