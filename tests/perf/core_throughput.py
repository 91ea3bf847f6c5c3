"""Benchmark: decode + identity + sessions + friction on simulated events, one core.

Prints events/s (median of several runs over the same pre-serialised messages, so simulation
cost is excluded) and the core's state size per open session. Run it with:

    .venv/bin/python tests/perf/core_throughput.py [--events 1000000] [--repeat 3]

Figures, not assertions: these machines are shared, so read medians and compare in one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import orjson

from schemas import Event, decode
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


def run_once(messages: list[tuple[str, bytes]]) -> tuple[float, int, int]:
    pipeline = JourneyPipeline()
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


def state_bytes_per_open_session(messages: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Peak over the run of (traced bytes held by the pipeline) / (open sessions)."""
    decoded = [r for t, v in messages for r in decode(v, t) if isinstance(r, Event)]
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    pipeline = JourneyPipeline()
    peak_ratio, peak_open = 0.0, 0
    for i, ev in enumerate(decoded):
        pipeline.process(ev, 0)
        if i % 5000 == 4999:
            open_sessions = pipeline.open_sessions
            if open_sessions:
                ratio = (tracemalloc.get_traced_memory()[0] - baseline) / open_sessions
                if open_sessions > peak_open:
                    peak_open, peak_ratio = open_sessions, ratio
    tracemalloc.stop()
    return peak_ratio, peak_open


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    t0 = time.perf_counter()
    messages = simulated_messages(args.events, args.seed)
    print(f"simulated {len(messages):,} messages in {time.perf_counter() - t0:.1f}s")
    rates, events, sessions = [], 0, 0
    for _ in range(args.repeat):
        elapsed, events, sessions = run_once(messages)
        rates.append(events / elapsed)
    decode_rate = events / statistics.median(decode_only(messages) for _ in range(args.repeat))
    print(f"events: {events:,}  sessions: {sessions:,}")
    print(f"decode only:                    {decode_rate:,.0f} events/s (median of {args.repeat})")
    print(
        f"decode+identity+sessions+friction: {statistics.median(rates):,.0f} events/s per core "
        f"(median of {args.repeat}; runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    sample = messages[: min(len(messages), 300_000)]
    per_session, open_sessions = state_bytes_per_open_session(sample)
    print(
        f"core state per open session: {per_session:,.0f} bytes at peak "
        f"({open_sessions:,} open sessions; includes device links, dedup memory, aggregates)"
    )


if __name__ == "__main__":
    main()
