#!/usr/bin/env python3
"""Reference values for runtime/src/eval/stats.rs's Wilson interval test.

Computes the 95% Wilson score interval with Python's floats (z from statistics.NormalDist), and,
where statsmodels is installed, checks it against statsmodels' proportion_confint(method="wilson").
    python3 tests/eval/wilson_reference.py
"""
from math import sqrt
from statistics import NormalDist

Z = NormalDist().inv_cdf(0.975)

def wilson(k, n):
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)

for k, n in [(0, 10), (10, 10), (7, 10), (81, 164)]:
    lo, hi = wilson(k, n)
    try:
        from statsmodels.stats.proportion import proportion_confint
        slo, shi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert abs(slo - lo) < 1e-9 and abs(shi - hi) < 1e-9, (k, n, lo, hi, slo, shi)
    except ImportError:
        pass
    print(f"({k}, {n}, {lo!r}, {hi!r}),")
print("z =", repr(Z))
