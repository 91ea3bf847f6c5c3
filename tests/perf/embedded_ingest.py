"""Benchmark: the embedded pipeline end to end into chDB, and funnel latency at scale.

1. events/s for N simulated events (default 1M): ingest-format lines -> decode -> journey core ->
   batching sink -> chDB, everything included (the lines are simulated beforehand).
2. latency of a 4-step funnel over M events (default 10M): the first part's events are
   replicated (new ids and persons per copy, shifted in time) with INSERT … SELECT inside
   ClickHouse until the table holds M rows (no Python in that loop: a few seconds for 10M rows);
   the funnel then runs R times over the resolved persons; the median is printed. Copies get
   new device ids too, so identity links of the original rows do not resolve the copies.

    .venv/bin/python tests/perf/embedded_ingest.py [--events 1000000] [--funnel-events 10000000]
    .venv/bin/python tests/perf/embedded_ingest.py --events 20000 --funnel-events 200000  # smoke

Figures, not assertions: these machines are shared; read medians and ratios of one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.embedded.wiring import embedded_runner
from streams.queries.funnel import FunnelSpec, Step, funnel_query
from streams.queries.query import run_query
from streams.simulate import SimulationConfig, generate, to_ingest_line


def simulated_lines(n_events: int, seed: int) -> tuple[list[bytes], datetime]:
    config = SimulationConfig(customers=max(500, n_events // 60), days=7, seed=seed)
    lines, count = [], 0
    for msg in generate(config):
        lines.append(to_ingest_line(msg))
        count += len(msg.payload) if isinstance(msg.payload, list) else 1
        if count >= n_events:
            break
    return lines, config.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--funnel-events", type=int, default=10_000_000)
    parser.add_argument("--funnel-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="parcours-bench-")
    try:
        client = connect(f"chdb://{directory}")
        apply_migrations(client)
        t0 = time.perf_counter()
        lines, start = simulated_lines(args.events, args.seed)
        print(f"simulated {len(lines):,} lines in {time.perf_counter() - t0:.1f}s (not counted)")
        runner = embedded_runner(client, batch_rows=50_000)  # as `parcours ingest` runs it
        t0 = time.perf_counter()
        runner.feed_lines(lines, source="bench")
        stats = runner.finish()
        elapsed = time.perf_counter() - t0
        stored = client.query("SELECT count() FROM events").result_rows[0][0]
        print(
            f"ingest: {stats.events:,} events ({stats.rejected_total:,} rejected, {stored:,} stored) "
            f"in {elapsed:.1f}s = {stats.events / elapsed:,.0f} events/s end to end into chDB (1 process)"
        )
        # grow the events table to the funnel size by shifted copies of what was ingested
        copies = 0
        while stored < args.funnel_events:
            copies += 1
            client.command(
                f"INSERT INTO events SELECT concat(event_id, '#{copies}'), event_type, "
                f"occurred_at + toIntervalDay({7 * copies}), received_at, channel, "
                f"if(device_id = '', '', concat(device_id, '#{copies}')), device_type, "
                f"if(customer_id = '', '', concat(customer_id, '#{copies}')), concat(person_id, '#{copies}'), "
                f"session_id, page, item_id, value, currency, properties, late FROM events WHERE NOT position(event_id, '#') "
                f"LIMIT {min(args.events, args.funnel_events - stored)}"
            )
            stored = client.query("SELECT count() FROM events").result_rows[0][0]
        print(f"events table grown to {stored:,} rows ({copies} shifted copies)")
        spec = FunnelSpec(
            tuple(Step(s) for s in ("view_item", "add_to_cart", "begin_checkout", "purchase")),
            3600,
            start,
            start + timedelta(days=7 * (copies + 2)),
            breakdown="channel",
        )
        query = funnel_query(spec)
        timings = []
        for _ in range(args.funnel_runs):
            t0 = time.perf_counter()
            result = run_query(client, query)
            timings.append(time.perf_counter() - t0)
        entered = sum(r[1] for r in result.rows)
        print(
            f"4-step funnel by channel over {stored:,} events ({entered:,} persons entered): "
            f"median {statistics.median(timings):.2f}s over {args.funnel_runs} runs "
            f"(min {min(timings):.2f}s, max {max(timings):.2f}s)"
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
