"""Benchmark: decode + identity + sessions + friction on simulated events, one core.

Prints events/s (median of several runs over the same pre-serialised messages, so simulation
cost is excluded) and the core's state size per open session, measured over the whole input
(tracemalloc makes that pass several times slower, so it is a separate pass, not timed). Run:

    .venv/bin/python tests/perf/core_throughput.py [--events 1000000] [--repeat 3]
    .venv/bin/python tests/perf/core_throughput.py --repeat 0 --dedup-hours 2   # memory only

Figures, not assertions: these machines are shared, so read medians and compare in one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from dataclasses import replace

import orjson

from schemas import Event, decode
from streams.core.config import HOUR_MS, JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.simulate import SimulationConfig, generate


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


def run_once(messages: list[tuple[str, bytes]], config: JourneyConfig) -> tuple[float, int, int]:
    pipeline = JourneyPipeline(config)
    events = 0
    gc.collect()
    started = time.perf_counter()
    for topic, value in messages:
        for result in decode(value, topic):
            if isinstance(result, Event):
                events += 1
                pipeline.process(result, 0)
    pipeline.finish()
    elapsed = time.perf_counter() - started
    return elapsed, events, pipeline.counters.sessions


def decode_only(messages: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for topic, value in messages:
        decode(value, topic)
    return time.perf_counter() - started


def state_bytes_per_open_session(
    messages: list[tuple[str, bytes]], config: JourneyConfig
) -> dict[str, float]:
    """Bytes held by the pipeline (tracemalloc, decoded input excluded) per open session.

    Sampled every 5,000 events over the whole input. Reported: the ratio when the most sessions
    were open, and the highest ratio once at least 1,000 sessions are open (the quiet hours of
    the night, when persons whose sessions closed are still kept for the dedup and late
    horizons). The bytes include every person and device kept, dedup memory and aggregates.
    """
    decoded = [r for t, v in messages for r in decode(v, t) if isinstance(r, Event)]
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    pipeline = JourneyPipeline(config)
    at_peak: dict[str, float] = {"open": 0}
    worst = 0.0
    for i, ev in enumerate(decoded):
        pipeline.process(ev, 0)
        if i % 5000 == 4999:
            open_sessions = pipeline.open_sessions
            held = tracemalloc.get_traced_memory()[0] - baseline
            if open_sessions >= 1000:
                worst = max(worst, held / open_sessions)
            if open_sessions > at_peak["open"]:
                at_peak = {
                    "open": open_sessions,
                    "ratio": held / open_sessions,
                    "bytes": held,
                    "persons": len(pipeline.persons),
                    "devices": len(pipeline.devices),
                }
    tracemalloc.stop()
    return {**at_peak, "worst": worst, "events": len(decoded)}


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
        rates, events, sessions = [], 0, 0
        for _ in range(args.repeat):
            elapsed, events, sessions = run_once(messages, config)
            rates.append(events / elapsed)
        decode_rate = events / statistics.median(decode_only(messages) for _ in range(args.repeat))
        print(f"events: {events:,}  sessions: {sessions:,}")
        print(
            f"decode only:                    {decode_rate:,.0f} events/s (median of {args.repeat})"
        )
        print(
            f"decode+identity+sessions+friction: {statistics.median(rates):,.0f} events/s per core "
            f"(median of {args.repeat}; runs: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    m = state_bytes_per_open_session(messages, config)
    print(
        f"state measured over all {m['events']:,.0f} events; dedup horizon "
        f"{config.dedup_horizon_ms / HOUR_MS:g} h, late horizon {config.late_horizon_ms / HOUR_MS:g} h"
    )
    print(
        f"core state per open session: {m['ratio']:,.0f} bytes when most sessions were open "
        f"({m['open']:,.0f} open sessions, {m['bytes'] / 1e6:,.1f} MB held, "
        f"{m['persons']:,.0f} persons and {m['devices']:,.0f} devices kept)"
    )
    print(
        f"core state per open session, worst sample (>= 1,000 open): {m['worst']:,.0f} bytes "
        "(includes persons and devices kept for the dedup/late horizons, aggregates)"
    )


if __name__ == "__main__":
    main()
