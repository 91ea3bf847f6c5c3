"""What any detector could find: the detectable bound printed beside the spike benchmark's recall.

Intuition: an incident of size k over a window where the baseline expects `e` signals adds
(k - 1) * e of them, and normal traffic alone varies by Poisson noise. A detector allowed at
most one false spike a week cannot flag a normal window more often than the number of windows
a week allows, so there is a count `c` (the critical count) it must see before it may say
"spike"; the incident is found only if its signals reach `c`. The bound is the recall of an
*oracle* that knows the incident's length and where windows of that length start (it checks
each non-overlapping window of that length on every series watched, at a false-alarm level
alpha = 1 / windows a week): no detector that also keeps to one false spike a week, and does
not know when incidents happen, can expect to find more (Neyman-Pearson: for one window and a
Poisson count, "at least c signals" is the most powerful test at level alpha). When the bound
itself is far below 95 %, the target cannot be met at that volume by any test.
"""

from __future__ import annotations

import math


def poisson_sf(c: int, mean: float) -> float:
    """P(X >= c) for X ~ Poisson(mean), summed in log space (exact at the counts used here)."""
    if c <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_p = -mean  # log P(X = 0)
    below = 0.0
    for i in range(c):
        below += math.exp(log_p)
        log_p += math.log(mean) - math.log(i + 1)
    return max(0.0, 1.0 - below)


def critical_count(mean: float, alpha: float) -> int:
    """The least count c with P(Poisson(mean) >= c) <= alpha."""
    c = max(1, int(mean))
    while poisson_sf(c, mean) > alpha:
        c += 1
    return c


def oracle_power(expected: float, factor: float, windows_a_week: float) -> float:
    """P(an oracle finds an incident of `factor` times a baseline expecting `expected` signals
    over its window), at the level that allows one false alarm in `windows_a_week` windows."""
    if expected <= 0:
        return 0.0
    c = critical_count(expected, 1.0 / windows_a_week)
    return poisson_sf(c, factor * expected)


def found_by_any(powers: list[float]) -> float:
    """P(at least one of independent series finds it)."""
    miss = 1.0
    for p in powers:
        miss *= 1.0 - p
    return 1.0 - miss
