"""The multi-scale scan: a second way for a spike to open, for short strong rises at low counts.

Intuition: the CUSUM (`streams.core.spikes`) is tuned to one rise, `target_ratio` (2.5x), and
weighs every signal by ln(2.5) = 0.92 nats, whatever the rise really is. At a few signals an
hour that is too little: a 5x payment outage of 30 minutes on a quiet web shop holds about 7
failures where 1.5 were expected, and the CUSUM needs 12 to cross 8 nats (each signal worth
0.92 nats, minus 1.5 nats for each expected one). The likelihood that knows the rise it sees,
x ln(x / e) - (x - e) (the Poisson generalised likelihood ratio, GLR: the rate is x / e times
the baseline against "it is the baseline"), gives those 7 signals 6.6 nats and 9 signals
8.9 nats: the same threshold is reached with the counts the incident really adds.

So after each step the scan looks back over every window that ends at this step and lasts from
`scan_min_steps` (15 min) to `scan_max_steps` (2 h), and takes the window with the highest
GLR: the temporal scan statistic (Kulldorff 2001, "Prospective time periodic geographical
disease surveillance using a scan statistic", JRSS A 164(1); the Poisson GLR of Kulldorff 1997,
"A spatial scan statistic"), computed over several window lengths at once so that a 15-minute
burst and a two-hour drift are each judged on the window that fits them. The GLR is also an
honest tail bound at any count: P(Poisson(e) >= x) <= exp(-GLR) (Chernoff), so a threshold of
`scan_threshold` nats caps each window's false alarm at exp(-scan_threshold). It is the
CUSUM's 8 nats: the CUSUM is itself a scan over every start at one rise, the scan looks at
the rises it sees over starts up to 2 h back, and the windows of one step overlap so much that
they are far fewer than 22 independent tests (tests/perf/spike_detection.py measures the false
spikes a week: well under one at the simulator's volume and at 30 times it). Like the CUSUM, a
window must also hold `min_count` signals, and at least `target_ratio` times what was
expected: smaller rises are the CUSUM's to find, over the hours they need (at high volume the
GLR is sure of a 1.6x evening within minutes, a shift the baseline's own error can make).

The scan only opens spikes (with the window's start as the spike's start); closing stays the
CUSUM's "is the rate back" (`streams.core.spikes`), and the window never reaches back into a
spike already closed, so one incident is one spike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streams.core.spike_baseline import rate_at

if TYPE_CHECKING:
    from streams.core.spikes import SeriesState, SpikeSettings


def glr(x: int, e: float) -> float:
    """Poisson log-likelihood ratio (nats) of "the rate is x / e times the baseline" against
    "the baseline", for x signals where e were expected; 0 unless x exceeds e."""
    if x <= e or e <= 0:
        return 0.0
    return x * math.log(x / e) - (x - e)


def strongest_window(
    recent: Sequence[tuple[int, float, int]],
    *,
    min_steps: int,
    threshold: float,
    min_count: int,
    min_ratio: float,
) -> tuple[int, float] | None:
    """The window ending at the last of `recent` ((x, e, n) per step, oldest first, as far back
    as the scan may look) with the highest evidence, as (steps, GLR), if it reaches `threshold`
    with at least `min_count` signals and `min_ratio` times what was expected; else None."""
    best: tuple[int, float] | None = None
    x = 0
    e = 0.0
    for length, (sx, se, _) in enumerate(reversed(recent), start=1):
        x += sx
        e += se
        if length < min_steps or x < min_count or x < min_ratio * e:
            continue
        score = glr(x, e)
        if score >= threshold and (best is None or score > best[1]):
            best = (length, score)
    return best


def scan(state: SeriesState, step: int, settings: SpikeSettings) -> None:
    """Open a spike on the strongest window ending at `step` if it is strong enough
    (`streams.core.spike_scan`); it never reaches back into a spike already closed nor into
    hours without a baseline."""
    sph = settings.steps_per_hour
    floor = step - settings.scan_max_steps + 1
    if state.closed:
        floor = max(floor, state.closed[-1].end_step + 1)
    recent: list[tuple[int, float, int]] = []
    for s in range(floor, step + 1):
        rate = rate_at(state, s // sph, settings)
        if rate is None:
            recent = []
            continue
        x, n = state.counts.get(s, (0, 0))
        recent.append((x, rate * n, n))
    found = strongest_window(
        recent,
        min_steps=settings.scan_min_steps,
        threshold=settings.scan_threshold,
        min_count=settings.min_count,
        min_ratio=max(settings.min_ratio, settings.target_ratio),
    )
    if found is None:
        return
    length, score = found
    window = recent[-length:]
    while window[0][0] == 0:  # the window's quiet first steps (kept for its least length)
        window = window[1:]
    d = state.decision
    x, e, n = sum(t[0] for t in window), sum(t[1] for t in window), sum(t[2] for t in window)
    d.spike = (step - len(window) + 1, x, e, n, score)
    d.rise = []
    d.up = max(d.up, score)
    d.down, d.down_from, d.tail, d.opened, d.peak = 0.0, step + 1, [], step, d.up
