"""How well friction spikes are found: precision, recall and delay per incident size.

Run: `PYTHONPATH=. .venv/bin/python tests/perf/spike_detection.py [--seeds 20]
[--simulated-seeds 20] [--customers N] [--cache DIR]` (`--seeds 0`: the simulator's own visits
only; `--cache`: keep the simulated months, about 40 s each to simulate, for reruns).

Each seed simulates a month (28 days) of traffic with the simulator (streams/simulate) and 16
sized incidents in its last three weeks (sizes 2x, 3x, 5x, 10x x durations 30 min, 1 h, 2 h,
6 h, at random hours of the day, in random order): `payment_outage` (web and app) on even
seeds, `checkout_bug` on the app on odd seeds. A size is what the incident does to the rate:
payment failures per checkout attempt, exceptions per visit (`Incident.factor`).

Speed: the whole journey core runs at ~15,000 events/s, and 20 simulated months at a volume
where a 30-minute incident is visible at all are ~500 M events. So the benchmark counts the
simulated visits per minute the way the friction rules do (`payment_failure`: two payment
errors, or one not followed by a purchase; `error_hit`: an `exception`; the denominators:
`begin_checkout` events and sessions started), turns the counts into the per-minute aggregates
the journey would write, and feeds them to the very `SpikeTracker` the runners use, advancing
the watermark every 5 minutes of event time as a live stream would. The end-to-end path (the
core's own signals into the tracker and the table) is what `make demo` and
tests/embedded/test_spikes_end_to_end.py check.

Two volumes: 30 times the simulator's traffic (drawn from its calibration, `--seeds` months)
and the simulator's own visits (`--simulated-seeds` months, 20 by default: the issue's "20
seeds of a simulated month"). Each is judged twice on the same counts, by the detector as it
was (the CUSUM alone) and as it is (with the multi-scale scan), printed side by side. Beside
each recall, the detectable bound (tests/perf/spike_bounds.py): the recall an oracle that
knows the incident's length and alignment could reach with at most one false alarm a week,
from the signals the baseline expects over each incident (also printed, per kind and
duration): where the bound is low, no detector can do well at that volume.

It prints, per size: incidents found / all (recall), median delay from the incident's start to
the spike's start (event time), median delay to the moment the spike was decided (watermark),
and over all seeds: precision and false spikes per simulated week. Then the delivery checks:
the same month replayed 100x faster (the watermark moves 100 times further between calls),
stalled for 6 hours then caught up, and with late data revising minutes already judged, give
the same spikes as live; and a month whose traffic doubles halfway at constant rates (a second
population joins) is compared with the same month as it is: over the scaled seeds, false
spikes a week in the second halves, doubled vs not, side by side (the added customers bring
their own noise, so the doubled months' false spikes are other ones: their count is printed
too, not a count of spikes the doubling caused); on the simulator's own visits (seed 2),
spike by spike.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from streams.core.config import MINUTE_MS
from streams.core.records import FrictionSpike, MinuteAggregate
from streams.core.spike_tracker import SpikeTracker
from streams.core.spikes import SpikeSettings
from streams.simulate import Incident, SimulationConfig
from streams.simulate.generator import visits

sys.path.insert(0, str(Path(__file__).parent))
from spike_bounds import found_by_any, oracle_power

SIZES = (2.0, 3.0, 5.0, 10.0)
DURATIONS_MIN = (30, 60, 120, 360)
DAYS = 28
MONITORED = (("payment_failure", "web"), ("payment_failure", "app"), ("error_hit", "app"))
MinuteCounts = dict[tuple[int, str, str, str], int]


def incidents_for(seed: int, config: SimulationConfig) -> list[Incident]:
    rng = random.Random(seed * 1009)
    plan = [(s, d) for s in SIZES for d in DURATIONS_MIN]
    rng.shuffle(plan)
    kind, channel = ("payment_outage", None) if seed % 2 == 0 else ("checkout_bug", "app")
    out = []
    for i, (size, minutes) in enumerate(plan):
        day_start = config.start + timedelta(days=7) + timedelta(hours=30 * i)
        start = day_start + timedelta(minutes=rng.randrange(0, 24 * 60, 5))
        out.append(Incident(kind, start, start + timedelta(minutes=minutes), channel, size))
    return out


def cached(
    cache: Path | None, counts_of: Callable[[SimulationConfig], MinuteCounts]
) -> Callable[[SimulationConfig], MinuteCounts]:
    """`counts_of`, its months kept in `cache` (a directory) by their configuration: simulating
    a month of visits takes a minute, judging it a second, so reruns reuse the months."""
    if cache is None:
        return counts_of

    def run(config: SimulationConfig) -> MinuteCounts:
        name = hashlib.sha256(repr(config).encode()).hexdigest()[:16]
        path = cache / f"month-{config.seed}-{config.customers}-{name}.pickle"
        if path.exists():
            with path.open("rb") as f:
                loaded: MinuteCounts = pickle.load(f)
            return loaded
        counts = counts_of(config)
        cache.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(dict(counts), f)
        return counts

    return run


def count_minutes(config: SimulationConfig, into: MinuteCounts | None = None) -> MinuteCounts:
    """Per (minute, channel, metric, key): what the journey's aggregates would count."""
    counts: MinuteCounts = into if into is not None else Counter()
    for steps in visits(config):
        first = steps[0]
        channels = {s.channel for s in steps}
        if len(channels) == 1:
            counts[(first.ts_ms // MINUTE_MS, first.channel, "sessions_started", "")] += 1
        errors = 0
        error_step = None
        fired = False
        for s in steps:
            m = s.ts_ms // MINUTE_MS
            if s.event_type == "begin_checkout":
                counts[(m, s.channel, "events", "begin_checkout")] += 1
            elif s.event_type == "exception":
                counts[(m, s.channel, "friction", "error_hit")] += 1
            elif s.event_type == "payment_error":
                errors += 1
                error_step = s
                if errors == 2:
                    counts[(m, s.channel, "friction", "payment_failure")] += 1
                    fired = True
            elif s.event_type == "purchase" and s.channel == (error_step or s).channel:
                error_step = None
        if error_step is not None and not fired:  # raised when the session closes
            last = steps[-1].ts_ms // MINUTE_MS
            counts[(last, error_step.channel, "friction", "payment_failure")] += 1
    return counts


#: What the scaled model draws: (numerator type, channel) -> its denominator (metric, key).
MODEL = {
    ("payment_failure", "web"): ("events", "begin_checkout"),
    ("payment_failure", "app"): ("events", "begin_checkout"),
    ("error_hit", "web"): ("sessions_started", ""),
    ("error_hit", "app"): ("sessions_started", ""),
}


@dataclass(frozen=True)
class Calibration:
    """Measured on a simulated week: each denominator's mean count per minute by hour of the
    week, and each friction type's rate (signals per denominator)."""

    per_minute: dict[tuple[str, str, str], list[float]]
    rates: dict[tuple[str, str], float]


def calibrate(customers: int, seed: int = 999) -> Calibration:
    config = SimulationConfig(customers=customers, days=7, seed=seed)
    counts = count_minutes(config)
    start_min = int(config.start.timestamp() * 1000) // MINUTE_MS
    per_minute: dict[tuple[str, str, str], list[float]] = {}
    totals: Counter[tuple[str, str, str]] = Counter()
    for (m, ch, metric, key), n in counts.items():
        hour = (m - start_min) // 60
        if 0 <= hour < 168:
            per_minute.setdefault((ch, metric, key), [0.0] * 168)[hour] += n / 60
            totals[(ch, metric, key)] += n
    rates = {
        (t, ch): totals[(ch, "friction", t)] / totals[(ch, *den)] for (t, ch), den in MODEL.items()
    }
    return Calibration(per_minute, rates)


def scaled_counts(config: SimulationConfig, cal: Calibration, scale: float) -> MinuteCounts:
    """A month drawn from the calibration at `scale` times its traffic: denominators Poisson
    around the simulator's hour-of-week profile, signals binomial at the simulator's rate (times
    an incident's factor inside it), as independent visits give."""
    rng = np.random.default_rng(config.seed)
    start_min = int(config.start.timestamp() * 1000) // MINUTE_MS
    minutes = int(config.days * 1440)
    counts: MinuteCounts = {}
    for (t, ch), (metric, key) in MODEL.items():
        profile = np.repeat(np.array(cal.per_minute[(ch, metric, key)]), 60)
        means = np.tile(profile, minutes // len(profile) + 1)[:minutes] * scale
        n = rng.poisson(means)
        p = np.full(minutes, cal.rates[(t, ch)])
        for inc in config.incidents:
            kind = "payment_failure" if inc.kind == "payment_outage" else "error_hit"
            if kind == t and (inc.channel is None or inc.channel == ch):
                a = int(inc.start.timestamp() * 1000) // MINUTE_MS - start_min
                b = int(inc.end.timestamp() * 1000) // MINUTE_MS - start_min
                p[a:b] = np.minimum(1.0, p[a:b] * (inc.factor or 1.0))
        x = rng.binomial(n, p)
        for i in np.flatnonzero(n):
            counts[(start_min + int(i), ch, metric, key)] = int(n[i])
        for i in np.flatnonzero(x):
            counts[(start_min + int(i), ch, "friction", t)] = int(x[i])
    return counts


def aggregates(counts: MinuteCounts) -> list[MinuteAggregate]:
    rows = [
        MinuteAggregate(m * MINUTE_MS, ch, metric, key, n, 0.0, "0", 1)
        for (m, ch, metric, key), n in counts.items()
    ]
    rows.sort(key=lambda r: r.minute_ms)
    return rows


def live(
    rows: list[MinuteAggregate],
    *,
    settings: SpikeSettings | None = None,
    every_min: int = 5,
    stall: tuple[int, int] | None = None,
    late: float = 0.0,
) -> tuple[list[FrictionSpike], dict[str, int]]:
    """Feed minutes in event-time order, the watermark 2 min behind, `advance` every
    `every_min` minutes (none during `stall`, a (from, to) of minutes); `late`: that share of
    the friction minutes first arrives with one signal missing, made whole 1-6 h later (a
    revision of minutes already judged). Returns the final spikes and when each was decided."""
    tracker = SpikeTracker(settings or SpikeSettings())
    rng = random.Random(7)
    decided: dict[str, int] = {}
    pending: list[tuple[int, MinuteAggregate]] = []
    i = 0
    if not rows:
        return [], decided
    minute = rows[0].minute_ms // MINUTE_MS
    end = rows[-1].minute_ms // MINUTE_MS + 1
    while minute <= end:
        batch = []
        while i < len(rows) and rows[i].minute_ms // MINUTE_MS <= minute:
            row = rows[i]
            if late and row.metric == "friction" and row.count and rng.random() < late:
                batch.append(_with_count(row, row.count - 1))
                pending.append((minute + rng.randrange(60, 360), row))
            else:
                batch.append(row)
            i += 1
        due = [r for at, r in pending if at <= minute]
        if due:
            pending = [(at, r) for at, r in pending if at > minute]
            batch.extend(_with_count(r, r.count, 2) for r in due)
        tracker.observe(batch)
        stalled = stall is not None and stall[0] <= minute < stall[1]
        if minute % every_min == 0 and not stalled:
            for spike in tracker.advance((minute - 2) * MINUTE_MS):
                decided.setdefault(spike.spike_id, minute * MINUTE_MS)
        minute += 1
    tracker.observe([_with_count(r, r.count, 2) for _, r in pending])
    for spike in tracker.advance(end * MINUTE_MS, final=True):
        decided.setdefault(spike.spike_id, end * MINUTE_MS)
    return tracker.spikes(), decided


def _with_count(row: MinuteAggregate, count: int, version: int = 1) -> MinuteAggregate:
    return MinuteAggregate(
        row.minute_ms, row.channel, row.metric, row.key, count, 0.0, row.shard, version
    )


def _hits(spike: FrictionSpike, inc: Incident) -> bool:
    channels = ("web", "app") if inc.channel is None else (inc.channel,)
    kind = "payment_failure" if inc.kind == "payment_outage" else "error_hit"
    lo = int(inc.start.timestamp() * 1000) - 30 * MINUTE_MS
    hi = int(inc.end.timestamp() * 1000) + 30 * MINUTE_MS
    return (
        spike.type == kind
        and spike.channel in channels
        and spike.started_at_ms < hi
        and spike.ended_at_ms > lo
    )


def _median(values: Iterable[float]) -> str:
    v = list(values)
    return f"{statistics.median(v):6.1f}" if v else "     -"


def month(seed: int, customers: int) -> SimulationConfig:
    base = SimulationConfig(customers=customers, days=DAYS, seed=seed)
    return SimulationConfig(
        customers=customers, days=DAYS, seed=seed, incidents=tuple(incidents_for(seed, base))
    )


#: The detector as it was (the CUSUM alone) and as it is (with the multi-scale scan).
VARIANTS = {"CUSUM alone": SpikeSettings(scan_threshold=0.0), "CUSUM + scan": SpikeSettings()}


def _series_hit(inc: Incident) -> list[tuple[str, str]]:
    kind = "payment_failure" if inc.kind == "payment_outage" else "error_hit"
    return [(t, ch) for t, ch in MONITORED if t == kind and inc.channel in (None, ch)]


def baseline_signals(
    inc: Incident, series: tuple[str, str], cal: Calibration, start_ms: int, scale: float
) -> float:
    """Signals the baseline expects on `series` over the incident (the calibration's rate times
    its hour-of-week denominator): what the incident multiplies."""
    _, ch = series
    profile = cal.per_minute[(ch, *MODEL[series])]
    a = (int(inc.start.timestamp() * 1000) - start_ms) // MINUTE_MS
    b = (int(inc.end.timestamp() * 1000) - start_ms) // MINUTE_MS
    return sum(profile[(m // 60) % 168] for m in range(a, b)) * cal.rates[series] * scale


def bound(inc: Incident, cal: Calibration, start_ms: int, scale: float) -> float:
    """The oracle's chance to find `inc` (tests/perf/spike_bounds.py) on the series it hits."""
    minutes = (inc.end - inc.start).total_seconds() / 60
    windows = 7 * 1440 / minutes * len(MONITORED)
    return found_by_any(
        [
            oracle_power(baseline_signals(inc, s, cal, start_ms, scale), inc.factor or 1.0, windows)
            for s in _series_hit(inc)
        ]
    )


@dataclass
class Tally:
    found: Counter[tuple[float, int]] = field(default_factory=Counter)
    delays: dict[float, list[float]] = field(default_factory=dict)
    decisions: dict[float, list[float]] = field(default_factory=dict)
    true_spikes: int = 0
    false_spikes: int = 0

    def add(
        self, config: SimulationConfig, spikes: list[FrictionSpike], decided: dict[str, int]
    ) -> None:
        for spike in spikes:
            if any(_hits(spike, inc) for inc in config.incidents):
                self.true_spikes += 1
            elif (spike.type, spike.channel) in MONITORED:
                self.false_spikes += 1
        for inc in config.incidents:
            hits = [s for s in spikes if _hits(s, inc)]
            if hits:
                self.found[_key(inc)] += 1
                first = min(hits, key=lambda s: s.started_at_ms)
                start_ms = int(inc.start.timestamp() * 1000)
                size = inc.factor or 0.0
                self.delays.setdefault(size, []).append(
                    (first.started_at_ms - start_ms) / MINUTE_MS
                )
                self.decisions.setdefault(size, []).append(
                    (decided[first.spike_id] - start_ms) / MINUTE_MS
                )


def _key(inc: Incident) -> tuple[float, int]:
    return (inc.factor or 0.0, int((inc.end - inc.start).total_seconds() // 60))


def evaluate(
    title: str,
    seeds: int,
    counts_of: Callable[[SimulationConfig], MinuteCounts],
    customers: int,
    cal: Calibration,
    scale: float,
) -> None:
    total: Counter[tuple[float, int]] = Counter()
    odds: dict[tuple[float, int], list[float]] = {}
    adds: dict[tuple[str, int], list[float]] = {}
    tallies = {name: Tally() for name in VARIANTS}
    began = time.perf_counter()
    for seed in range(1, seeds + 1):
        config = month(seed, customers)
        start_ms = int(config.start.timestamp() * 1000)
        rows = aggregates(counts_of(config))
        for name, settings in VARIANTS.items():
            tallies[name].add(config, *live(rows, settings=settings))
        for inc in config.incidents:
            total[_key(inc)] += 1
            odds.setdefault(_key(inc), []).append(bound(inc, cal, start_ms, scale))
            e = sum(baseline_signals(inc, s, cal, start_ms, scale) for s in _series_hit(inc))
            adds.setdefault((inc.kind, _key(inc)[1]), []).append(e)
    weeks = seeds * DAYS / 7
    print(f"\n{title}: {seeds} seeds x {DAYS} days ({time.perf_counter() - began:.0f} s)")
    print("signals the baseline expects over the incident (median), on the series it hits:")
    for kind in sorted({k for k, _ in adds}):
        cells = " | ".join(f"{statistics.median(adds[(kind, d)]):6.1f}" for d in DURATIONS_MIN)
        print(f"  {kind:<15} {cells}   (x size - 1 = the excess)")
    head = " | ".join(f"{d:>4} min (bound)" for d in DURATIONS_MIN)
    big = [(s, d) for s in SIZES if s >= 3 for d in DURATIONS_MIN]
    summary = []
    for name, t in tallies.items():
        print(f"\n{name}:")
        print(f"| size | {head} | recall | bound | delay to start | to decision |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in SIZES:
            cells = " | ".join(
                f"{t.found[(size, d)]:>2}/{total[(size, d)]:<2} ({_pct(odds[(size, d)])})"
                for d in DURATIONS_MIN
            )
            n = sum(t.found[(size, d)] for d in DURATIONS_MIN)
            m = sum(total[(size, d)] for d in DURATIONS_MIN)
            all_odds = [p for d in DURATIONS_MIN for p in odds[(size, d)]]
            print(
                f"| {size:>3.0f}x | {cells} | {100 * n / m:5.1f}% | {_pct(all_odds)} "
                f"| {_median(t.delays.get(size, []))} | {_median(t.decisions.get(size, []))} |"
            )
        spikes_all = t.true_spikes + t.false_spikes
        recall_big = sum(t.found[k] for k in big) / max(sum(total[k] for k in big), 1)
        summary.append(
            (
                name,
                recall_big,
                t.false_spikes / weeks,
                _median(t.delays.get(5.0, [])).strip(),
                t.true_spikes,
                spikes_all,
            )
        )
    bound_big = statistics.mean(p for k in big for p in odds[k])
    print("\nside by side (targets: recall >= 95%, <= 1 false spike a week, 5x delay < 15 min):")
    for name, recall_big, per_week, delay5, true_n, all_n in summary:
        print(
            f"  {name:<13} recall >=3x >=30 min {100 * recall_big:5.1f}% (bound "
            f"{100 * bound_big:.1f}%), precision {true_n}/{all_n} = "
            f"{100 * true_n / max(all_n, 1):.1f}%, false spikes {per_week:.2f}/week, "
            f"median delay 5x {delay5} min"
        )
    (_, r0, f0, _, _, _), (_, r1, f1, _, _, _) = summary
    print(
        f"  ratio scan/alone: recall x{r1 / max(r0, 1e-9):.2f}, false spikes x"
        f"{f1 / f0 if f0 else float('nan'):.2f}"
    )


def _pct(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):3.0f}%" if values else "  -"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20, help="scaled months (0: none)")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--simulated-seeds", type=int, default=20)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--skip-delivery", action="store_true")
    parser.add_argument("--cache", type=Path, help="keep the simulated months in this directory")
    args = parser.parse_args()
    watched = ", ".join("/".join(m) for m in MONITORED)
    cal = calibrate(args.customers)
    print(
        f"series watched: {watched}; calibrated on a simulated week of {args.customers:,} "
        "customers: "
        + ", ".join(f"{t}/{ch} {100 * r:.2f}%" for (t, ch), r in sorted(cal.rates.items()))
    )
    if args.seeds:
        evaluate(
            f"scaled: the simulator's traffic x{args.scale:g} ({args.scale * args.customers:,.0f} "
            "customers), drawn from its calibration",
            args.seeds,
            lambda config: scaled_counts(config, cal, args.scale),
            args.customers,
            cal,
            args.scale,
        )
    if args.simulated_seeds:
        evaluate(
            f"simulated: the simulator's own visits, {args.customers:,} customers",
            args.simulated_seeds,
            cached(args.cache, count_minutes),
            args.customers,
            cal,
            1.0,
        )
    if args.seeds:
        doubling(args.seeds, cal, args.scale, args.customers)
    if not args.skip_delivery:
        delivery_checks(args.customers, cached(args.cache, count_minutes))


def _second_population(seed: int, customers: int) -> SimulationConfig:
    """Customers who join halfway through the month, with the same habits and rates."""
    base = SimulationConfig(customers=customers, days=DAYS, seed=seed)
    return SimulationConfig(
        customers=customers,
        days=DAYS / 2,
        seed=seed + 1000,
        start=base.start + timedelta(days=DAYS / 2),
    )


def _summed(a: MinuteCounts, b: MinuteCounts) -> MinuteCounts:
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


def doubling(seeds: int, cal: Calibration, scale: float, customers: int) -> None:
    """Normal months (no incident) at the scaled volume, as they are and with their traffic
    doubled halfway at the same rates: spikes in the second half, on the series watched."""
    half_ms = DAYS // 2 * 1440 * MINUTE_MS
    plain_total = doubled_total = new_total = 0
    for seed in range(1, seeds + 1):
        config = SimulationConfig(customers=customers, days=DAYS, seed=seed)
        start_ms = int(config.start.timestamp() * 1000)
        counts = scaled_counts(config, cal, scale)
        extra = scaled_counts(_second_population(seed, customers), cal, scale)
        plain = _after(live(aggregates(counts))[0], start_ms + half_ms)
        doubled = _after(live(aggregates(_summed(counts, extra)))[0], start_ms + half_ms)
        plain_total += len(plain)
        doubled_total += len(doubled)
        new_total += sum(1 for s in doubled if not any(_overlap(s, t) for t in plain))
    weeks = seeds * DAYS / 2 / 7
    print(
        f"\ntraffic doubled on day {DAYS // 2} at constant rates (scaled x{scale:g}, {seeds} "
        f"normal months, second halves, {weeks:.0f} weeks): spikes {plain_total} as they are, "
        f"{doubled_total} doubled ({plain_total / weeks:.2f} vs {doubled_total / weeks:.2f} a "
        f"week); spikes of the doubled months no plain month has: {new_total}"
    )


def _after(spikes: list[FrictionSpike], from_ms: int) -> list[FrictionSpike]:
    return [s for s in spikes if (s.type, s.channel) in MONITORED and s.ended_at_ms > from_ms]


def _overlap(a: FrictionSpike, b: FrictionSpike) -> bool:
    return (a.type, a.channel) == (b.type, b.channel) and (
        a.started_at_ms < b.ended_at_ms and b.started_at_ms < a.ended_at_ms
    )


def delivery_checks(
    customers: int, month_of: Callable[[SimulationConfig], MinuteCounts] = count_minutes
) -> None:
    seed = 2
    base = SimulationConfig(customers=customers, days=DAYS, seed=seed)
    config = SimulationConfig(
        customers=customers, days=DAYS, seed=seed, incidents=tuple(incidents_for(seed, base))
    )
    rows = aggregates(month_of(config))
    reference, _ = live(rows)
    stall_from = 14 * 1440 + rows[0].minute_ms // MINUTE_MS
    checks = {
        "replay 100x faster": live(rows, every_min=500)[0],
        "stalled 6 h, then caught up": live(rows, stall=(stall_from, stall_from + 360))[0],
        "1% of friction minutes revised 1-6 h late": live(rows, late=0.01)[0],
    }
    print(f"\ndelivery (seed {seed}, {len(reference)} spikes live):")
    for name, spikes in checks.items():
        print(f"  {name}: {len(spikes)} spikes, {'same' if spikes == reference else 'DIFFERENT'}")
    # Traffic doubles halfway through the month (a second population joins), rates unchanged:
    # judged against the same month without the second population (its own false spikes).
    counts = month_of(SimulationConfig(customers=customers, days=DAYS, seed=seed))
    plain = _after(live(aggregates(counts))[0], 0)
    second = month_of(_second_population(seed, customers))
    doubled = _after(live(aggregates(_summed(counts, second)))[0], 0)
    new = [s for s in doubled if not any(_overlap(s, t) for t in plain)]
    print(
        f"  traffic doubled on day {DAYS // 2} at constant rates: {len(doubled)} spikes "
        f"(the month as it is: {len(plain)}); spikes the doubling added: {len(new)}"
    )
    for s in [*plain, *doubled]:
        at = datetime.fromtimestamp(s.started_at_ms / 1000, UTC)
        print(
            f"    {'doubled' if s in doubled else 'as is  '} {s.type}/{s.channel} from "
            f"{at:%a %d %b %H:%M}, {s.signals} signals, {s.expected_signals} expected"
        )


if __name__ == "__main__":
    main()
