#!/usr/bin/env python3
"""Validate tests/golden/*.json: schema, internal consistency and, when the model file is present,
that its sha256 is the one the goldens were recorded with (CI runs this after
scripts/make_random_model.sh). Exit status 1 on any problem.

    python3 tests/golden/check_golden.py [--require-models] [FILE.json ...]
"""
import argparse
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(path, require_model):
    errors = []
    g = json.load(open(path, encoding="utf-8"))
    if g.get("schema_version") != 1:
        return [f"schema_version {g.get('schema_version')!r} != 1"]
    n_predict, n_probs = g["settings"]["n_predict"], g["settings"]["n_probs"]
    n_vocab = g["model"]["n_vocab"]
    eog = set(g["model"]["eog_token_ids"])
    for case in g["cases"]:
        name = case["name"]
        toks, gen, top = case["prompt_tokens"], case["generated_tokens"], case["top_logprobs"]
        if not toks or any(not 0 <= t < n_vocab for t in toks + gen):
            errors.append(f"{name}: token id out of range")
        if len(gen) != n_predict or len(top) != n_predict:
            errors.append(f"{name}: {len(gen)} generated / {len(top)} steps, expected {n_predict}")
            continue
        if case["add_bos"] and toks[0] != g["model"]["bos_token_id"]:
            errors.append(f"{name}: add_bos but prompt does not start with BOS")
        for i, (t, cands) in enumerate(zip(gen, top)):
            lps = [lp for _, lp in cands]
            if len(cands) != n_probs or lps != sorted(lps, reverse=True) or lps[0] > 0:
                errors.append(f"{name} step {i}: malformed top-{n_probs}")
                break
            allowed = [tid for tid, _ in cands if tid not in eog]
            if not allowed or allowed[0] != t:
                errors.append(f"{name} step {i}: generated {t} is not the best non-EOG token")
                break
    model = os.path.join(ROOT, g["model"]["path"])
    if os.path.exists(model):
        digest = sha256_of(model)
        if digest != g["model"]["sha256"]:
            errors.append(f"{g['model']['path']}: sha256 {digest} != recorded {g['model']['sha256']}")
    elif require_model:
        errors.append(f"{g['model']['path']} missing")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--require-models", action="store_true", help="fail when a model file is missing")
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*.json")))
    bad = False
    for f in files:
        errors = check(f, args.require_models)
        print(f"{os.path.relpath(f, ROOT)}: {'ok' if not errors else 'FAILED'}")
        for e in errors:
            print("  " + e)
        bad |= bool(errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
