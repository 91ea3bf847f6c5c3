"""Friction spikes of one series (one friction type on one channel), decided in event time.

Intuition: a friction count means nothing alone (twice the payment failures on a day with twice
the checkouts is a normal day), so each friction type is read as a *rate* of what it can happen
to (`RATES`: payment failures per checkout attempt, bounces per session, ...). Time is cut into
steps of 5 minutes of event time. For each step the detector knows how many things could have
gone wrong (`n`, the denominator) and how many did (`x`); the baseline says which rate is
normal for this hour of the week, so the step's expected count is `e = rate * n`.

The decision is a Poisson CUSUM (Page 1954, "Continuous inspection schemes"; for counts, Lucas
1985, "Counted data CUSUM's", Technometrics 27(2)). Each step adds its log-likelihood ratio of
"the rate is `k` times the baseline" against "the rate is the baseline":

    llr = x * ln(k) - (k - 1) * e

and the evidence is `S = max(0, S + llr)`. A step that looks normal lowers S, one with too
many signals raises it, and S only reaches the threshold `h` when the excess is both large and
sustained; at low counts each step moves S a little, at high counts a lot, so a shop with 50
checkouts an hour and one with 50,000 are judged by the same likelihood, each with the evidence
its counts carry. A spike opens when S crosses `h` *and* the excursion holds at least
`min_count` signals and `min_ratio` times what was expected (statistically sure but
irrelevant shifts at huge volume do not page). Its start is where the excursion began (the
step at which S last left 0: the CUSUM's own change-point estimate), not where it was decided.
While open, the mirror CUSUM `D = max(0, D - llr)` asks "is the rate back?"; when D crosses `h`
the spike closes, and its end is the last step before D's excursion began.

A spike also opens when a window of 15 minutes to 2 hours ending at the step holds a rise the
CUSUM's fixed weight undervalues (a few signals, many times the expected): the multi-scale
scan, `streams.core.spike_scan`.

The baseline (`streams.core.spike_baseline`) is the rate of the same hour of the week in the
last weeks, blended with a robust rolling rate, only from hours outside any spike.

Late data: a step's counts may change after it was judged (a revision of the minute
aggregates). The series keeps a checkpoint of its decision state at each hour for
`rewind_ms`, goes back to the hour before the change and judges again from there: the spikes
are a function of the counts, whatever order and speed they arrived in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from streams.core.config import HOUR_MS, MINUTE_MS
from streams.core.spike_baseline import baseline_rate, fold
from streams.core.spike_scan import scan

#: What each friction type is a rate of: the per-minute aggregate (metric, key) that counts
#: the things it can happen to. Documented in the README ("Friction spikes").
RATES: dict[str, tuple[str, str]] = {
    "payment_failure": ("events", "begin_checkout"),  # per checkout attempt
    "checkout_abandoned": ("events", "begin_checkout"),
    "checkout_loop": ("events", "begin_checkout"),
    "channel_switch": ("events", "begin_checkout"),
    "bounce": ("sessions_started", ""),  # per session
    "quick_back": ("sessions_started", ""),
    "rage_click": ("sessions_started", ""),
    "error_hit": ("sessions_started", ""),
    "cart_abandoned": ("events", "add_to_cart"),  # per item put in a cart
    "search_frustration": ("events", "search"),  # per search
    "repeat_contact": ("events", "support_contact"),  # per support contact
}
#: How much less likely (nats) than the likeliest end a spike's end may be, to be the earliest.
END_TOLERANCE = 2.0
#: Signal types decided when a checkout attempt times out: their counts settle later.
CHECKOUT_TIMED = frozenset({"checkout_abandoned", "channel_switch"})


@dataclass(frozen=True, slots=True)
class SpikeSettings:
    """How spikes are decided. The README ("Friction spikes: tuning") says what each changes.

    - `step_ms`: the resolution of event time (5 min): starts and ends are on step bounds.
    - `target_ratio` (k): the rise the CUSUM is tuned to find fastest (2.5x the baseline).
    - `threshold` (h): evidence, in nats of log-likelihood ratio, to open and to close (11:
      an alarm on normal traffic about once every e^11 steps per series, before estimation
      error).
    - `min_count`, `min_ratio`: a spike needs at least this many signals and this ratio of
      observed to expected over its steps.
    - `scan_threshold`, `scan_min_steps`, `scan_max_steps`: the multi-scale scan
      (`streams.core.spike_scan`): a window of 15 min to 2 h whose likelihood ratio at the rise
      it shows reaches this many nats, with at least `target_ratio` times what was expected,
      opens a spike too (0: the CUSUM alone).
    - `weeks`, `rolling_days`, `prior_hours`, `fold_lag_hours`: the baseline (module docstring).
    - `min_baseline_count`: signals the baseline must rest on before anything is decided.
    - `rewind_ms`: how far back late data may still change a decision (26 h: as long as the
      per-minute aggregates accept late input).
    """

    step_ms: int = 5 * MINUTE_MS
    target_ratio: float = 2.5
    threshold: float = 8.0
    min_count: int = 5
    min_ratio: float = 1.5
    scan_threshold: float = 8.0
    scan_min_steps: int = 3
    scan_max_steps: int = 24
    weeks: int = 4
    rolling_days: int = 7
    prior_hours: float = 6.0
    fold_lag_hours: int = 2
    min_baseline_count: int = 50
    rewind_ms: int = 26 * HOUR_MS

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or HOUR_MS % self.step_ms:
            raise ValueError("step_ms must divide an hour")
        if self.target_ratio <= 1 or self.threshold <= 0 or self.min_ratio < 1:
            raise ValueError("target_ratio must be > 1, threshold > 0, min_ratio >= 1")
        if self.scan_threshold < 0 or not 1 <= self.scan_min_steps <= self.scan_max_steps:
            raise ValueError("scan_threshold >= 0, 1 <= scan_min_steps <= scan_max_steps")
        if self.weeks < 0 or self.rolling_days < 1 or self.fold_lag_hours < 1:
            raise ValueError("weeks >= 0, rolling_days >= 1, fold_lag_hours >= 1")

    @property
    def steps_per_hour(self) -> int:
        return HOUR_MS // self.step_ms


@dataclass(frozen=True, slots=True)
class Spike:
    """One spike of one series: steps [start_step, end_step] (inclusive), `x` signals observed
    against `e` expected over `n` things they could happen to; `score` is the highest evidence
    (nats). `open`: the rate had not come back by the last step judged."""

    start_step: int
    end_step: int
    x: int
    e: float
    n: int
    score: float
    open: bool

    @property
    def observed(self) -> float:
        return self.x / self.n if self.n else 0.0

    @property
    def expected(self) -> float:
        return self.e / self.n if self.n else 0.0

    @property
    def ratio(self) -> float:
        return self.x / self.e if self.e > 0 else math.inf


@dataclass(slots=True)
class Decision:
    """The CUSUM's scalars: what an hourly checkpoint copies."""

    up: float = 0.0
    up_from: int = 0
    up_x: int = 0
    up_e: float = 0.0
    up_n: int = 0
    down: float = 0.0
    down_from: int = 0
    #: The open spike: (start, x, e, n, evidence) when it opened, or None.
    spike: tuple[int, int, float, int, float] | None = None
    #: (x, e, n) of each step judged since it opened: its end is chosen among them.
    tail: list[tuple[int, float, int]] = field(default_factory=list)
    #: (x, e, n) of each step of the current excursion before a spike opens.
    rise: list[tuple[int, float, int]] = field(default_factory=list)
    opened: int = 0  # the step at which the open spike was decided
    peak: float = 0.0  # the highest evidence while open
    closed: int = 0  # len(closed spikes) at this point


@dataclass(slots=True)
class SeriesState:
    """Everything one series remembers (plain data: snapshots copy it as it is)."""

    #: Step -> [signals, denominator] for the rewind horizon (and steps not judged yet).
    counts: dict[int, list[int]] = field(default_factory=dict)
    #: Hour -> (signals, denominator) outside spikes: what the baseline is made of.
    hours: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_step: int | None = None
    decision: Decision = field(default_factory=Decision)
    closed: list[Spike] = field(default_factory=list)
    #: Hour -> the decision state at that hour's first step (before judging it).
    checkpoints: dict[int, Decision] = field(default_factory=dict)
    #: Earliest step whose counts changed after it was judged.
    rewind_to: int | None = None
    rate_hour: int | None = None
    rate: float | None = None
    #: Hour -> its expected rate, for the scan's look back (not saved: a function of `hours`).
    rates: dict[int, float | None] = field(default_factory=dict)
    #: Expected count and signals of the last step judged (for the ratio gauge).
    last_e: float = 0.0
    last_x: int = 0


def add_counts(state: SeriesState, step: int, dx: int, dn: int) -> None:
    """A change to a step's counts (a new minute, or a revision of one)."""
    cell = state.counts.get(step)
    if cell is None:
        cell = state.counts[step] = [0, 0]
    cell[0] += dx
    cell[1] += dn
    if state.next_step is not None and step < state.next_step:
        state.rewind_to = step if state.rewind_to is None else min(state.rewind_to, step)


def spikes_of(state: SeriesState, settings: SpikeSettings) -> list[Spike]:
    """Every spike known: the closed ones and the open one (if any)."""
    open_ = _open_spike(state, settings)
    return [*state.closed, open_] if open_ is not None else list(state.closed)


def _open_spike(state: SeriesState, settings: SpikeSettings) -> Spike | None:
    d = state.decision
    if d.spike is None or state.next_step is None:
        return None
    start, x, e, n, evidence = d.spike
    for sx, se, sn in d.tail:
        x, e, n = x + sx, e + se, n + sn
    return Spike(start, state.next_step - 1, x, e, n, max(evidence, d.peak), True)


def judge_until(state: SeriesState, until_step: int, settings: SpikeSettings) -> None:
    """Judge every step before `until_step` not judged yet (after going back for late data)."""
    if state.next_step is None:
        if not state.counts:
            return
        first = min(state.counts)
        state.next_step = first - first % settings.steps_per_hour
    if state.rewind_to is not None:
        _rewind(state, state.rewind_to, settings)
    sph = settings.steps_per_hour
    step = state.next_step
    while step < until_step:
        if step % sph == 0:
            hour = step // sph
            fold(state, hour - settings.fold_lag_hours, settings)
            d = state.decision
            snap = replace(d, closed=len(state.closed), tail=list(d.tail), rise=list(d.rise))
            state.checkpoints[hour] = snap
        _judge(state, step, settings)
        step += 1
    state.next_step = step
    _forget(state, settings)


def _judge(state: SeriesState, step: int, settings: SpikeSettings) -> None:
    x, n = state.counts.get(step, (0, 0))
    rate = baseline_rate(state, step // settings.steps_per_hour, settings)
    d = state.decision
    if rate is None:  # warming up: nothing decided, nothing accumulated
        state.last_e, state.last_x = 0.0, x
        return
    e = rate * n
    state.last_e, state.last_x = e, x
    k = settings.target_ratio
    llr = x * math.log(k) - (k - 1) * e
    if d.spike is None:
        if d.up == 0:  # an excursion begins here (if this step raises the evidence)
            d.up_from, d.up_x, d.up_e, d.up_n, d.rise = step, 0, 0.0, 0, []
        if d.up + llr <= 0:
            d.up, d.up_from, d.up_x, d.up_e, d.up_n = 0.0, step + 1, 0, 0.0, 0
        else:
            d.up += llr
            d.up_x += x
            d.up_e += e
            d.up_n += n
            d.rise.append((x, e, n))
            if (
                d.up >= settings.threshold
                and d.up_x >= settings.min_count
                and d.up_x >= settings.min_ratio * d.up_e
            ):
                d.spike = _open(d, settings)
                d.rise = []
                d.down, d.down_from, d.tail, d.opened, d.peak = 0.0, step + 1, [], step, d.up
                return
        if settings.scan_threshold > 0:
            scan(state, step, settings)
        return
    d.up = max(0.0, d.up + llr)
    d.peak = max(d.peak, d.up)
    d.tail.append((x, e, n))
    if d.down - llr <= 0:
        d.down, d.down_from = 0.0, step + 1
        return
    d.down -= llr
    if d.down >= settings.threshold:
        state.closed.append(_close(d, settings))
        d.spike, d.tail = None, []
        d.up, d.up_from, d.up_x, d.up_e, d.up_n = 0.0, step + 1, 0, 0.0, 0


def _open(d: Decision, settings: SpikeSettings) -> tuple[int, int, float, int, float]:
    """The spike starts at the latest start as likely as the best within 2 nats, for a rise
    as large as the excursion's (at low counts an ordinary signal just before the incident
    would otherwise start the spike early)."""
    ratio = max(settings.target_ratio, d.up_x / d.up_e if d.up_e > 0 else settings.target_ratio)
    log_r, r1 = math.log(ratio), ratio - 1
    suffix = [0.0]
    for sx, se, _ in reversed(d.rise):
        suffix.append(suffix[-1] + sx * log_r - r1 * se)
    best = max(suffix)
    back = next(i for i, v in enumerate(suffix) if v >= best - END_TOLERANCE and i > 0)
    kept = d.rise[len(d.rise) - back :]
    x, e, n = sum(t[0] for t in kept), sum(t[1] for t in kept), sum(t[2] for t in kept)
    return (d.up_from + len(d.rise) - back, x, e, n, d.up)


def _close(d: Decision, settings: SpikeSettings) -> Spike:
    """The closed spike ends where the evidence for "elevated since the start" peaks: the
    likeliest end of a rise followed by the baseline (at low counts the last step D was at 0
    can be hours after the rate came back: one normal signal in a quiet night resets D)."""
    assert d.spike is not None
    start, x, e, n, evidence = d.spike
    # The rise as large as it was (not just `target_ratio`): against a rate 12 times the
    # baseline, a quiet hour after the incident weighs heavily, where against 2.5 times it
    # one ordinary signal in a quiet night would look like more of the spike.
    all_x, all_e = x + sum(t[0] for t in d.tail), e + sum(t[1] for t in d.tail)
    ratio = max(settings.target_ratio, all_x / all_e if all_e > 0 else settings.target_ratio)
    log_r, r1 = math.log(ratio), ratio - 1
    path = [0.0]
    for sx, se, _ in d.tail:
        path.append(path[-1] + sx * log_r - r1 * se)
    best = max(path)
    # The earliest end as likely as the best within 2 nats (a likelihood interval).
    end_at = next(i for i, v in enumerate(path) if v >= best - END_TOLERANCE) - 1
    for sx, se, sn in d.tail[: end_at + 1]:
        x, e, n = x + sx, e + se, n + sn
    return Spike(start, d.opened + end_at + 1, x, e, n, max(evidence, d.peak), False)


def _rewind(state: SeriesState, step: int, settings: SpikeSettings) -> None:
    """Go back to the checkpoint at or before `step`'s hour and forget what followed it."""
    state.rewind_to = None
    sph = settings.steps_per_hour
    hour = step // sph
    candidates = [h for h in state.checkpoints if h <= hour]
    if not candidates:
        return  # beyond the rewind horizon: the change counts, the past decisions stay
    back = max(candidates)
    snap = state.checkpoints[back]
    state.decision = replace(snap, tail=list(snap.tail), rise=list(snap.rise))
    del state.closed[snap.closed :]
    for h in [h for h in state.checkpoints if h >= back]:
        del state.checkpoints[h]
    for h in [h for h in state.hours if h >= back - settings.fold_lag_hours]:
        del state.hours[h]
    state.rate_hour = state.rate = None
    state.rates.clear()
    state.next_step = back * sph


def _forget(state: SeriesState, settings: SpikeSettings) -> None:
    """Drop what no decision can need again: step counts and checkpoints beyond the rewind
    horizon (their hours are folded), baseline hours beyond the weeks looked back."""
    assert state.next_step is not None
    sph = settings.steps_per_hour
    now_hour = state.next_step // sph
    for h in [h for h in state.rates if h < now_hour - settings.scan_max_steps // sph - 2]:
        del state.rates[h]
    keep_from = now_hour - settings.rewind_ms // HOUR_MS - settings.fold_lag_hours - 1
    if len(state.checkpoints) > settings.rewind_ms // HOUR_MS + 24:
        for h in [h for h in state.checkpoints if h < keep_from]:
            del state.checkpoints[h]
        for s in [s for s in state.counts if s < (keep_from - settings.fold_lag_hours) * sph]:
            del state.counts[s]
        oldest = now_hour - 168 * max(settings.weeks, 1) - 24 * settings.rolling_days - 2
        for h in [h for h in state.hours if h < oldest]:
            del state.hours[h]
        horizon = state.next_step - 168 * sph * max(settings.weeks, 1)
        gone = sum(1 for s in state.closed if s.end_step < horizon)
        if gone:  # the oldest spikes (closed in order): checkpoints count past them
            del state.closed[:gone]
            for snap in state.checkpoints.values():
                snap.closed = max(0, snap.closed - gone)
