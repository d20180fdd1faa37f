#!/usr/bin/env python3
"""Independent check of ember's constrained outputs: every JSON Schema output must parse and validate
under Python's `jsonschema` (Draft 2020-12, with its format checker), every regex output must
`re.fullmatch` its pattern, every choice output must be one of the choices.

    validate.py OUTPUTS.jsonl   # one {"kind", "text", "schema" | "regex" | "choices", "case"} per line

Prints each failure and exits 1 if there is any (tests/constraints.rs runs it)."""

import json
import re
import sys

import jsonschema


def check(rec):
    text, kind = rec["text"], rec["kind"]
    if kind == "json_schema":
        value = json.loads(text)
        jsonschema.Draft202012Validator(rec["schema"], format_checker=jsonschema.FormatChecker()).validate(value)
    elif kind == "regex":
        if re.fullmatch(rec["regex"], text) is None:
            raise ValueError(f"does not match {rec['regex']!r}")
    elif kind == "choices":
        if text not in rec["choices"]:
            raise ValueError(f"not one of {rec['choices']}")
    else:
        raise ValueError(f"unknown kind {kind}")


def main():
    bad = n = 0
    with open(sys.argv[1]) as f:
        for line in f:
            rec = json.loads(line)
            n += 1
            try:
                check(rec)
            except Exception as e:  # noqa: BLE001 - report every kind of failure
                bad += 1
                print(f"FAIL {rec['case']}: {e.__class__.__name__}: {str(e)[:200]} -- output {rec['text']!r}")
    print(f"{n - bad}/{n} outputs valid")
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
