"""Benchmark: decode + identity + sessions + friction + aggregates on simulated events, one core.

Prints, side by side in one run, events/s per core (CPU time) of the code in this checkout and
of baseline commits (by default 9c9f320, before the late-data work, and 8b0f803, before the
core-speed work), each run in its own process from a `git archive` of that commit's `schemas/`
and `streams/`, over the same pre-serialised messages (simulation cost excluded), repeats
alternating between the versions so that the machine's load hits them alike; medians and ratios.
Also, per version: decode-only events/s, and Python calls per event (a `sys.setprofile` count
of calls into Python and C functions over a sample of the messages, decode included).

Then where the current core's memory goes, measured when the most sessions are open:

- per open session: the state an open session costs (its `SessionState`, the events waiting
  for the watermark and the open checkout attempt);
- what scales with the horizons, not with open sessions: per remembered event id (dedup
  horizon), per person kept (persons whose session closed stay for the late, dedup and revision
  horizons; the revision history, the events kept to replay a person's journey, is shown on its
  own), per device, and per minute of aggregates kept (retention);
- the total the pipeline holds (tracemalloc), divided by open sessions too: with a small
  simulated population the horizons dominate it, so read it as a total, not as a per-session cost.

The breakdown is a deep size (`sys.getsizeof` of every object reachable, each counted once);
its sum is printed next to the tracemalloc total as a check. The sum is the larger: tracing
starts after decoding, so tracemalloc misses the strings and properties of decoded events
that the state keeps (ids, pages, waiting events), which a live stream does pay for. Run:

    .venv/bin/python tests/perf/core_throughput.py [--events 1000000] [--repeat 5]
    .venv/bin/python tests/perf/core_throughput.py --baseline none     # this checkout only
    .venv/bin/python tests/perf/core_throughput.py --repeat 0 --dedup-hours 2   # memory only

Figures, not assertions: these machines are shared, so read medians and ratios of one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from schemas import Event, decode
from streams.core.config import HOUR_MS, JourneyConfig
from streams.core.pipeline import JourneyPipeline

REPO = Path(__file__).resolve().parents[2]
BASELINES = ("9c9f320", "8b0f803")
#: Messages of the calls-per-event sample (counting every call is slow).
CALLS_SAMPLE = 20_000

SAMPLE_EVERY = 5_000


def simulated_messages(n_events: int, seed: int) -> list[tuple[str, bytes]]:
    """Well-formed messages only (the simulator's malformed ones would just be rejections)."""
    from streams.simulate import SimulationConfig, generate

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


def calls_per_event(messages: list[tuple[str, bytes]], config: JourneyConfig) -> float:
    """Python and C function calls per event (decode + core) over the sample."""
    calls: Counter[str] = Counter()

    def count(frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            calls[event] += 1

    pipeline = JourneyPipeline(config)
    events = 0
    sys.setprofile(count)
    try:
        for topic, value in messages:
            for result in decode(value, topic):
                if isinstance(result, Event):
                    events += 1
                    pipeline.process(result, 0)
        pipeline.finish()
    finally:
        sys.setprofile(None)
    return sum(calls.values()) / max(events, 1)


def measure(messages_file: str, what: str) -> None:
    """Child process: one measurement of the code on `sys.path` (this checkout or a baseline's
    archive), printed as JSON."""
    with open(messages_file, "rb") as f:
        messages = pickle.load(f)
    config = JourneyConfig()
    if what == "calls":
        print(json.dumps({"calls": calls_per_event(messages[:CALLS_SAMPLE], config)}))
        return
    cpu, _, events = run_once(messages, config)
    print(json.dumps({"events": events, "cpu": cpu, "decode": decode_only(messages)}))


def baseline_tree(rev: str) -> Path:
    """`schemas/` and `streams/` of commit `rev`, extracted once into a temporary directory."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev],  # the repository of the working directory
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    where = Path(tempfile.gettempdir()) / f"parcours-core-baseline-{commit}"
    if not (where / "streams" / "core" / "pipeline.py").exists():
        where.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "schemas", "streams"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def run_child(tree: Path, messages_file: str, what: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, __file__, "--measure", messages_file, "--what", what],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def side_by_side(messages: list[tuple[str, bytes]], baselines: list[str], repeat: int) -> None:
    """Events/s per core of this checkout and of each baseline, alternating, medians, ratios."""
    versions = [("this checkout", REPO)] + [(rev, baseline_tree(rev)) for rev in baselines]
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        pickle.dump(messages, f)
    try:
        rates: dict[str, list[float]] = {name: [] for name, _ in versions}
        decodes: dict[str, list[float]] = {name: [] for name, _ in versions}
        events = 0
        for _ in range(repeat):
            for name, tree in versions:
                r = run_child(tree, f.name, "rate")
                events = int(r["events"])
                rates[name].append(events / r["cpu"])
                decodes[name].append(events / r["decode"])
        calls = {name: run_child(tree, f.name, "calls")["calls"] for name, tree in versions}
    finally:
        os.unlink(f.name)
    print(f"events: {events:,}; {repeat} runs per version, alternating; medians of CPU time")
    mine = statistics.median(rates["this checkout"])
    mine_decode = statistics.median(decodes["this checkout"])
    print(
        f"{'version':<15} {'events/s per core':>18} {'ratio':>7} {'decode only/s':>14} "
        f"{'ratio':>7} {'calls/event':>12}   runs"
    )
    for name, _ in versions:
        rate, dec = statistics.median(rates[name]), statistics.median(decodes[name])
        print(
            f"{name:<15} {rate:>18,.0f} {mine / rate:>6.2f}x {dec:>14,.0f} "
            f"{mine_decode / dec:>6.2f}x {calls[name]:>12,.0f}   "
            f"{', '.join(f'{r:,.0f}' for r in rates[name])}"
        )
    print("(ratio: this checkout's figure divided by the version's)")


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
    history: int  # the revision history: events kept to replay, and the bases
    history_events: int
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
    history = sum(deep_size(p.history, seen) + deep_size(p.bases, seen) for p in persons)
    history_events = sum(len(p.history or ()) for p in persons)
    dedup = sum(deep_size(p.seen, seen) for p in persons)
    dedup += sum(deep_size(d.seen, seen) for d in devices)
    from streams.core.dedup import count as dedup_count

    ids = sum(dedup_count(p.seen) for p in persons) + sum(dedup_count(d.seen) for d in devices)
    person_records = history + sum(deep_size(p, seen) for p in persons)
    person_records += deep_size(pipeline.persons, seen)
    person_records += deep_size((pipeline._due, pipeline._due_heap, pipeline._listed), seen)
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
        history=history,
        history_events=history_events,
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
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--baseline",
        action="append",
        help=f"commit to compare with (repeatable; default {' and '.join(BASELINES)}; none: no"
        " comparison)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--what", default="rate", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dedup-hours", type=float, default=None, help="default: JourneyConfig")
    parser.add_argument("--late-hours", type=float, default=None, help="default: JourneyConfig")
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.what)
        return
    baselines = [b for b in (args.baseline or BASELINES) if b != "none"]
    config = JourneyConfig()
    if args.dedup_hours is not None:
        config = replace(config, dedup_horizon_ms=int(args.dedup_hours * HOUR_MS))
    if args.late_hours is not None:
        config = replace(config, late_horizon_ms=int(args.late_hours * HOUR_MS))
    t0 = time.perf_counter()
    messages = simulated_messages(args.events, args.seed)
    print(f"simulated {len(messages):,} messages in {time.perf_counter() - t0:.1f}s")
    if args.repeat > 0:
        side_by_side(messages, baselines, args.repeat)
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
        "sessions, contacts, replay guards, deadline index, revision history)"
    )
    print(
        f"    of which revision history:  {per(b.history, b.persons):>7} bytes per person "
        f"({b.history_events:,} events kept, {per(b.history, b.history_events)} bytes each)"
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
