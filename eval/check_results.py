#!/usr/bin/env python3
"""Re-score `ember eval --out` results independently of ember, with Python's own tools.

    python3 eval/check_results.py RESULTS.jsonl TASKS.jsonl

Requires the `jsonschema` package (`pip install jsonschema`) for `json_schema` items, and
`python3` (or `$EMBER_PYTHON`) for `test` items.

For every result line (`id`, `model`, `answer`, `score`, ...) the item's score is recomputed
from `answer` as docs/eval.md defines it: `re.search` for regex, normalised text for
exact/contains, the first number for number, `jsonschema` for json_schema, and a fresh Python
run (time limit `timeout_s`) for test. Multiple-choice items need the model's log-likelihoods
and are not re-scored: their score must be 0 or 1 (and, when `answer` is one of the choices,
1 exactly when it is the right one). Prints the agreements and lists every disagreement;
exits 1 if there is any.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def normalize(s, item):
    if item.get("normalize_whitespace", True):
        s = " ".join(s.split())
    return s if item.get("case_sensitive", False) else s.casefold()


def first_number(text):
    m = NUMBER.search(text)
    return float(m.group().replace(",", "")) if m else None


def fenced_block(text):
    """The body of the first ``` fence (after its info line), up to the closing fence or the end."""
    open_at = text.find("```")
    if open_at < 0:
        return None
    after = text[open_at + 3:]
    newline = after.find("\n")
    body = after[newline + 1:] if newline >= 0 else ""
    close = body.find("```")
    return body if close < 0 else body[:close]


def extract_json(answer):
    def parse(s):
        try:
            return True, json.loads(s.strip())
        except ValueError:
            return False, None

    ok, value = parse(answer)
    if not ok and fenced_block(answer) is not None:
        ok, value = parse(fenced_block(answer))
    if not ok:
        starts = [i for i in (answer.find("{"), answer.find("[")) if i >= 0]
        end = max(answer.rfind("}"), answer.rfind("]"))
        if starts and end > min(starts):
            ok, value = parse(answer[min(starts): end + 1])
    return ok, value


def same(a, b):
    """JSON equality: unlike Python's ==, true is not 1 (but 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return (type(a) is type(b) or {type(a), type(b)} <= {int, float}) and a == b


def score_json(answer, item):
    import jsonschema

    ok, value = extract_json(answer)
    if not ok:
        return False, "no JSON in the answer"
    schema = item["json_schema"]
    try:
        jsonschema.validators.validator_for(schema)(schema).validate(value)
    except jsonschema.ValidationError as e:
        return False, f"schema: {e.message}"
    for key, want in (item.get("expected") or {}).items():
        if not isinstance(value, dict) or key not in value:
            return False, f"`{key}` is missing"
        if not same(value[key], want):
            return False, f"`{key}` is {value[key]!r}, expected {want!r}"
    return True, ""


def limit_memory():
    """ember's limit for test programs: 1 GiB of address space."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def score_test(answer, item):
    code = fenced_block(answer)
    code = answer if code is None else code
    program = item.get("test_prefix", "") + "\n" + code + "\n\n" + item["test"] + "\n"
    python = os.environ.get("EMBER_PYTHON") or "python3"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        try:
            r = subprocess.run([python, "-I", path], cwd=tmp, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=item.get("timeout_s", 10),
                               preexec_fn=limit_memory)
        except subprocess.TimeoutExpired:
            return False, "timed out"
    lines = r.stderr.strip().splitlines()
    return r.returncode == 0, lines[-1] if lines else f"exit {r.returncode}"


def rescore(answer, item):
    """(pass, detail) for a generation item."""
    if "json_schema" in item:
        return score_json(answer, item)
    if "test" in item:
        return score_test(answer, item)
    expected, kind = item["expected"], item.get("match", "exact")
    if kind == "number":
        x = first_number(answer)
        want = float(str(expected).strip().replace(",", ""))
        if x is None:
            return False, "no number in the answer"
        return abs(x - want) <= item.get("tolerance", 1e-6), f"read {x}"
    expected = str(expected)
    if kind == "regex":
        flags = 0 if item.get("case_sensitive", False) else re.IGNORECASE
        return re.search(expected, answer, flags) is not None, ""
    if kind == "contains":
        return normalize(expected, item) in normalize(answer, item), ""
    return normalize(answer, item) == normalize(expected, item), ""


def load_tasks(path):
    tasks = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                item = json.loads(line)
                tasks[str(item.get("id", f"line {n}"))] = item
    return tasks


def check(result, tasks):
    """None when ember's score agrees, else why not."""
    rid, score = str(result.get("id")), result.get("score")
    item = tasks.get(rid)
    if item is None:
        return f"no item with id {rid!r} in the task file"
    if score not in (0, 1):
        return f"score {score!r} is not 0 or 1"
    answer = result.get("answer") or ""
    if "choices" in item:
        right = item["choices"][item["answer"]]
        if answer in item["choices"] and (answer == right) != (score == 1):
            return f"chose {answer!r}, right is {right!r}, but score is {score}"
        return None
    passed, detail = rescore(answer, item)
    if passed != (score == 1):
        return f"ember scored {score}, Python scores {int(passed)}" + (f" ({detail})" if detail else "")
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().split("\n\n")[1])
    tasks = load_tasks(sys.argv[2])
    if any("json_schema" in t for t in tasks.values()):
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            sys.exit("json_schema items need the jsonschema package: pip install jsonschema")
    agree, disagree = 0, []
    with open(sys.argv[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                result = json.loads(line)
                why = check(result, tasks)
            except Exception as e:  # a malformed line or item: report it, keep going
                result, why = {}, f"could not re-score: {e!r}"
            if why is None:
                agree += 1
            else:
                disagree.append(f"line {n}: {result.get('model', '?')} / {result.get('id')}: {why}")
    for d in disagree:
        print("DISAGREE", d)
    print(f"agree: {agree}, disagree: {len(disagree)}")
    sys.exit(1 if disagree else 0)


if __name__ == "__main__":
    main()
