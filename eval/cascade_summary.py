#!/usr/bin/env python3
"""Markdown tables of `ember eval --consultant --json` results (EVAL.md's cascade section).

    cascade_summary.py RESULT.json...

Per task: both models alone, the cascade at about every tenth of escalation, the threshold
`--require` chose, and the cheapest threshold whose accuracy is within 3 points of the
consultant's (the issue's target), with its mean latency as a share of the consultant's.
"""
import json, sys

def row(r, c):
    t = "always" if r["threshold"] is None else f'{r["threshold"]:.3f}'
    return (f'| {t} | {100 * r["escalation_rate"]:.0f}% | {r["accuracy"]:.3f} [{r["ci_low"]:.3f}, {r["ci_high"]:.3f}] '
            f'| {r["latency_mean_ms"]:.0f} | {r["latency_p95_ms"]:.0f} | {r["accuracy"] - c["accuracy"]:+.3f} '
            f'| {100 * r["latency_mean_ms"] / c["latency_mean_ms"]:.0f}% |')

for path in sys.argv[1:]:
    d = json.load(open(path))
    p, c = d["models"][0], d["models"][1]
    sweep = d["cascades"][0]
    rows = sweep["rows"]
    print(f'### {d["task"]} ({d["items"]} items)\n')
    print("| model | accuracy [95% CI] | mean ms | p95 ms | RSS MiB |")
    print("|---|---|---:|---:|---:|")
    for m in (p, c):
        rss = m["peak_rss_bytes"] / 2**20 if m.get("peak_rss_bytes") else float("nan")
        print(f'| {m["model"]} | {m["accuracy"]:.3f} [{m["ci_low"]:.3f}, {m["ci_high"]:.3f}] '
              f'| {m["latency_mean_ms"]:.0f} | {m["latency_p95_ms"]:.0f} | {rss:.0f} |')
    print(f'\nCascade (confidence: {sweep["confidence_score"]} token probability'
          f'{"; multiple choice: the chosen choice’s probability" if "mc" in d["task"] else ""}):\n')
    print("| escalate below | escalated | accuracy [95% CI] | mean ms | p95 ms | vs consultant | of its mean ms |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    shown = []
    for step in range(11):
        r = next((r for r in rows if r["escalation_rate"] >= step / 10 - 1e-9), None)
        if r is not None and r not in shown:
            shown.append(r)
    near = [r for r in rows if r["accuracy"] >= c["accuracy"] - 0.03]
    best = min(near, key=lambda r: r["latency_mean_ms"]) if near else None
    chosen = next((r for r in rows if "chosen" in sweep and sweep["chosen"] is not None
                   and r["threshold"] == sweep["chosen"]), None)
    for extra in (best, chosen):
        if extra is not None and extra not in shown:
            shown.append(extra)
    shown.sort(key=lambda r: r["escalated"])
    for r in shown:
        mark = (" ← within 3 points, cheapest" if r is best else "") + (" ← `--require` chose" if r is chosen else "")
        print(row(r, c) + mark)
    if best is not None:
        print(f'\nWithin 3 points of the consultant ({c["accuracy"]:.3f}): escalate below '
              f'{"always" if best["threshold"] is None else format(best["threshold"], ".3f")} '
              f'({100 * best["escalation_rate"]:.0f}% escalated): accuracy {best["accuracy"]:.3f} at '
              f'{100 * best["latency_mean_ms"] / c["latency_mean_ms"]:.0f}% of the consultant\'s mean latency.\n')
