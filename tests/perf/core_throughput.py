"""Benchmark: decode + identity + sessions + friction on simulated events, one core.

Prints events/s per core (CPU time; median of several runs over the same pre-serialised
messages, so simulation cost is excluded) and where the core's memory goes, measured when the
most sessions are open:

- per open session: the state an open session costs (its `SessionState`, the events waiting
  for the watermark and the open checkout attempt), what the issue's "a few hundred bytes per
  open session" is about;
- what scales with the horizons, not with open sessions: per remembered event id (dedup
  horizon), per person kept (persons whose session closed stay for the late and dedup
  horizons), per device, and per minute of aggregates kept (retention);
- the total the pipeline holds (tracemalloc), divided by open sessions too: with a small
  simulated population the horizons dominate it, so read it as a total, not as a per-session cost.

The breakdown is a deep size (`sys.getsizeof` of every object reachable, each counted once);
its sum is printed next to the tracemalloc total as a check. The sum is the larger: tracing
starts after decoding, so tracemalloc misses the strings and properties of decoded events
that the state keeps (ids, pages, waiting events), which a live stream does pay for. Run:

    .venv/bin/python tests/perf/core_throughput.py [--events 1000000] [--repeat 3]
    .venv/bin/python tests/perf/core_throughput.py --repeat 0 --dedup-hours 2   # memory only

Figures, not assertions: these machines are shared, so read medians and compare in one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace

import orjson

from schemas import Event, decode
from streams.core.config import HOUR_MS, JourneyConfig
from streams.core.dedup import count as dedup_count
from streams.core.pipeline import JourneyPipeline
from streams.simulate import SimulationConfig, generate

SAMPLE_EVERY = 5_000


def simulated_messages(n_events: int, seed: int) -> list[tuple[str, bytes]]:
    """Well-formed messages only (the simulator's malformed ones would just be rejections)."""
    config = SimulationConfig(
        customers=max(200, n_events // 60), days=7, seed=seed, malformed_rate=0.0
    )
    out: list[tuple[str, bytes]] = []
    count = 0
    for msg in generate(config):
        if isinstance(msg.payload, bytes):
            continue
        out.append((msg.topic, orjson.dumps(msg.payload)))
        count += len(msg.payload) if isinstance(msg.payload, list) else 1
        if count >= n_events:
            break
    return out


def run_once(messages: list[tuple[str, bytes]], config: JourneyConfig) -> tuple[float, float, int]:
    """CPU seconds and wall seconds of decode + process + finish, and the number of events."""
    pipeline = JourneyPipeline(config)
    events = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for topic, value in messages:
        for result in decode(value, topic):
            if isinstance(result, Event):
                events += 1
                pipeline.process(result, 0)
    pipeline.finish()
    return time.process_time() - cpu, time.perf_counter() - wall, events


def decode_only(messages: list[tuple[str, bytes]]) -> float:
    started = time.process_time()
    for topic, value in messages:
        decode(value, topic)
    return time.process_time() - started


def deep_size(obj: object, seen: set[int]) -> int:
    """Bytes of `obj` and of everything it references, skipping (and adding to `seen`) the
    objects already counted: shared objects count once, in the first part that reaches them."""
    total, stack = 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif not isinstance(o, str | bytes | bytearray | int | float | type(None)):
            for cls in type(o).__mro__:
                stack.extend(getattr(o, s) for s in getattr(cls, "__slots__", ()) if hasattr(o, s))
            if hasattr(o, "__dict__"):
                stack.append(o.__dict__)
    return total


@dataclass
class Breakdown:
    """Deep sizes of the pipeline's state, split by what each part scales with."""

    open_sessions: int
    open_state: int  # sessions + waiting events + checkout attempts (of every person)
    sessions: int
    waiting: int
    checkouts: int
    remembered_ids: int
    dedup: int
    persons: int
    persons_closed: int
    person_records: int  # everything else of a person, the persons dict and the deadline index
    devices: int
    device_records: int
    minutes: int
    buckets: int
    aggregates: int

    @property
    def total(self) -> int:
        return (
            self.open_state
            + self.dedup
            + self.person_records
            + self.device_records
            + (self.aggregates)
        )


def breakdown(pipeline: JourneyPipeline) -> Breakdown:
    seen: set[int] = set()
    persons, devices = list(pipeline.persons.values()), list(pipeline.devices.values())
    sessions = sum(deep_size(p.session, seen) for p in persons)
    waiting = sum(deep_size(p.pending, seen) for p in persons)
    checkouts = sum(deep_size(p.checkout, seen) for p in persons)
    dedup = sum(deep_size(p.seen, seen) for p in persons)
    dedup += sum(deep_size(d.seen, seen) for d in devices)
    ids = sum(dedup_count(p.seen) for p in persons) + sum(dedup_count(d.seen) for d in devices)
    person_records = sum(deep_size(p, seen) for p in persons)
    person_records += deep_size(pipeline.persons, seen)
    person_records += deep_size((pipeline._due, pipeline._due_heap), seen)
    device_records = deep_size(pipeline.devices, seen)
    aggregates = deep_size(pipeline.aggregates, seen)
    return Breakdown(
        open_sessions=pipeline.open_sessions,
        open_state=sessions + waiting + checkouts,
        sessions=sessions,
        waiting=waiting,
        checkouts=checkouts,
        remembered_ids=ids,
        dedup=dedup,
        persons=len(persons),
        persons_closed=sum(1 for p in persons if p.session is None),
        person_records=person_records,
        devices=len(devices),
        device_records=device_records,
        minutes=len(pipeline.aggregates.minutes),
        buckets=len(pipeline.aggregates.buckets),
        aggregates=aggregates,
    )


def measure_memory(
    messages: list[tuple[str, bytes]], config: JourneyConfig
) -> tuple[int, int, int, Breakdown]:
    """(events, sample index with the most open sessions, bytes held then, breakdown then).

    First pass under tracemalloc (decoded input excluded from the total), sampled every
    5,000 events; second pass, untraced, to the same point for the deep-size breakdown.
    """
    decoded = [r for t, v in messages for r in decode(v, t) if isinstance(r, Event)]
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    pipeline = JourneyPipeline(config)
    most_open, at, held = -1, 0, 0
    for i, ev in enumerate(decoded):
        pipeline.process(ev, 0)
        if i % SAMPLE_EVERY == SAMPLE_EVERY - 1:
            open_sessions = pipeline.open_sessions
            if open_sessions > most_open:
                most_open, at = open_sessions, i + 1
                held = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    del pipeline
    gc.collect()
    pipeline = JourneyPipeline(config)
    for ev in decoded[:at]:
        pipeline.process(ev, 0)
    return len(decoded), at, held, breakdown(pipeline)


def per(total: int, n: int) -> str:
    return f"{total / n:,.0f}" if n else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dedup-hours", type=float, default=None, help="default: JourneyConfig")
    parser.add_argument("--late-hours", type=float, default=None, help="default: JourneyConfig")
    args = parser.parse_args()
    config = JourneyConfig()
    if args.dedup_hours is not None:
        config = replace(config, dedup_horizon_ms=int(args.dedup_hours * HOUR_MS))
    if args.late_hours is not None:
        config = replace(config, late_horizon_ms=int(args.late_hours * HOUR_MS))
    t0 = time.perf_counter()
    messages = simulated_messages(args.events, args.seed)
    print(f"simulated {len(messages):,} messages in {time.perf_counter() - t0:.1f}s")
    if args.repeat > 0:
        cpu_rates, wall_rates, events = [], [], 0
        for _ in range(args.repeat):
            cpu, wall, events = run_once(messages, config)
            cpu_rates.append(events / cpu)
            wall_rates.append(events / wall)
        decode_rate = events / statistics.median(decode_only(messages) for _ in range(args.repeat))
        print(f"events: {events:,}; medians of {args.repeat} runs, CPU time")
        print(f"decode only:                        {decode_rate:,.0f} events/s")
        print(
            f"decode+identity+sessions+friction:  {statistics.median(cpu_rates):,.0f} events/s "
            f"per core (runs: {', '.join(f'{r:,.0f}' for r in cpu_rates)}; "
            f"wall clock: {statistics.median(wall_rates):,.0f} events/s)"
        )
    n, at, held, b = measure_memory(messages, config)
    print(
        f"memory when the most sessions were open (after event {at:,} of {n:,}; dedup horizon "
        f"{config.dedup_horizon_ms / HOUR_MS:g} h, late horizon "
        f"{config.late_horizon_ms / HOUR_MS:g} h, aggregates kept "
        f"{config.aggregate_retention_ms / HOUR_MS:g} h):"
    )
    print(
        f"  per open session:           {per(b.open_state, b.open_sessions):>7} bytes "
        f"({b.open_sessions:,} open; session state {per(b.sessions, b.open_sessions)}, "
        f"waiting events {per(b.waiting, b.open_sessions)}, "
        f"checkout attempts {per(b.checkouts, b.open_sessions)})"
    )
    print(
        f"  per remembered event id:    {per(b.dedup, b.remembered_ids):>7} bytes "
        f"({b.remembered_ids:,} ids within the dedup horizon)"
    )
    print(
        f"  per person kept:            {per(b.person_records, b.persons):>7} bytes "
        f"({b.persons:,} persons, {b.persons_closed:,} without an open session; recent "
        "sessions, contacts, replay guards, deadline index)"
    )
    print(
        f"  per device kept:            {per(b.device_records, b.devices):>7} bytes "
        f"({b.devices:,} devices; links)"
    )
    print(
        f"  per aggregate minute kept:  {per(b.aggregates, b.minutes):>7} bytes "
        f"({b.minutes:,} minutes, {per(b.buckets, b.minutes)} buckets a minute)"
    )
    print(
        f"  total held: {held / 1e6:,.1f} MB by tracemalloc (which misses what the state keeps "
        f"of the decoded input); the parts above add up to {b.total / 1e6:,.1f} MB, i.e. "
        f"{per(b.total, b.open_sessions)} bytes per open session all included"
    )


if __name__ == "__main__":
    main()
