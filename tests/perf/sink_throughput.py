"""Benchmark: rows/s into chDB per sink process (issue 15, point 4: at least 50,000).

The rows are the journey core's own output for simulated traffic (events, sessions, friction,
links, merges, per-minute aggregates, in the proportions the core emits them), computed once
beforehand. Three ways of writing them, alternating over the rounds, each round into a fresh
database of the one embedded chDB (chDB allows one per process), side by side:

- **bare insert**: clickhouse-connect's column-oriented insert of the same rows, already cut
  into the sink's batches and turned into columns: what ClickHouse and the client alone cost,
  the floor;
- **embedded sink**: `ClickHouseSink.add` then `flush`, the write path of `parcours ingest`:
  records to rows, the batch's deduplication token, columns, the insert, metrics;
- **streaming sink**: the records as the journey stage puts them on the records topic (one
  JSON record per message) through the sink stage's write step (`SinkStage._write`: read the
  records, judge friction spikes, the sink, a flush after every poll of 5,000 messages), the
  write path of `parcours sink` without the Kafka consumer.

Printed per way: rows/s of wall time (chDB inserts in threads of this process; wall time is
what a sink process delivers), rows/s of the process's CPU time, both as the median of the
rounds, the ratio to the bare insert and to the 50,000 rows/s target. Run (under the shared
lock, it is heavy):

    .venv/bin/python tests/perf/sink_throughput.py [--events 100000] [--repeat 3]

Figures, not assertions: these machines are shared; read medians and ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from schemas import Event, decode
from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.core.config import JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.core.records import Record
from streams.sinks.clickhouse import ClickHouseSink, _row
from streams.sinks.columns import COLUMNS
from streams.worker.messages import record_to_bytes
from streams.worker.sink_stage import SinkStage

TARGET = 50_000
#: Records per poll of the sink stage (its default `batch_size`).
POLL = 5_000
#: Rows per insert and table (the default `PARCOURS_SINK_BATCH_ROWS`).
BATCH_ROWS = 50_000


def core_records(n_events: int, seed: int) -> list[Record]:
    """What the journey core emits for about `n_events` simulated events, finish included."""
    from streams.simulate import SimulationConfig, generate

    config = SimulationConfig(
        customers=max(200, n_events // 60), days=7, seed=seed, malformed_rate=0.0
    )
    pipeline = JourneyPipeline(JourneyConfig())
    records: list[Record] = []
    events = 0
    for msg in generate(config):
        if isinstance(msg.payload, bytes):
            continue
        for result in decode(orjson.dumps(msg.payload), msg.topic):
            if isinstance(result, Event):
                events += 1
                records.extend(pipeline.process(result, result.ts_ms))
        if events >= n_events:
            break
    records.extend(pipeline.finish())
    return records


class _Message:
    """A consumed records-topic message, as much of it as the sink stage's write step reads."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


def bare_insert(client: Client, records: list[Record]) -> Callable[[], None]:
    """The floor: the same rows, cut and turned into columns beforehand; inserts only."""
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for record in records:
        table, row, _ = _row(record)
        by_table.setdefault(table, []).append(row)
    batches = [
        (table, [list(c) for c in zip(*rows[i : i + BATCH_ROWS], strict=True)])
        for table, rows in by_table.items()
        for i in range(0, len(rows), BATCH_ROWS)
    ]

    def run() -> None:
        for i, (table, columns) in enumerate(batches):
            client.insert(
                table,
                columns,
                column_names=COLUMNS[table],
                column_oriented=True,
                # a token per batch, as the sink gives (the tables keep a deduplication window)
                settings={"insert_deduplication_token": f"bare/{table}/{i}"},
            )

    return run


def embedded_sink(client: Client, records: list[Record]) -> Callable[[], None]:
    def run() -> None:
        sink = ClickHouseSink(client, batch_rows=BATCH_ROWS, flush_interval_s=None)
        sink.add(records)
        sink.flush()

    return run


def streaming_sink(client: Client, records: list[Record]) -> Callable[[], None]:
    values = [_Message(record_to_bytes(r)) for r in records]

    def run() -> None:
        sink = ClickHouseSink(client, batch_rows=BATCH_ROWS, flush_interval_s=None)
        # No broker: the consumer is made but never subscribed (the write step does not use
        # it); librdkafka's complaints that nothing listens are kept off the output.
        with _quiet_stderr():
            stage = SinkStage("127.0.0.1:9", "parcours-records", sink, batch_size=POLL)
            try:
                for i in range(0, len(values), POLL):
                    stage._write(values[i : i + POLL])
            finally:
                stage.consumer.close()

    return run


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null meanwhile (librdkafka writes there from its threads)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


WAYS: dict[str, Callable[[Client, list[Record]], Callable[[], None]]] = {
    "bare insert": bare_insert,
    "embedded sink": embedded_sink,
    "streaming sink": streaming_sink,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    t0 = time.perf_counter()
    records = core_records(args.events, args.seed)
    tables = Counter(_row(r)[0] for r in records)
    print(
        f"{len(records):,} rows from {args.events:,} simulated events in "
        f"{time.perf_counter() - t0:.1f}s: "
        + ", ".join(f"{t} {n:,}" for t, n in tables.most_common())
    )
    where = tempfile.mkdtemp(prefix="parcours-sink-bench-")
    try:
        wall: dict[str, list[float]] = {w: [] for w in WAYS}
        cpu: dict[str, list[float]] = {w: [] for w in WAYS}
        stored_by: dict[str, int] = {}
        for round_ in range(args.repeat):
            for i, (name, way) in enumerate(WAYS.items()):
                client = connect(f"chdb://{where}", f"sink_bench_{round_}_{i}")
                apply_migrations(client)
                run = way(client, records)
                started_wall, started_cpu = time.perf_counter(), time.process_time()
                run()
                wall[name].append(len(records) / (time.perf_counter() - started_wall))
                cpu[name].append(len(records) / (time.process_time() - started_cpu))
                stored = sum(
                    int(client.query(f"SELECT count() FROM {t}").result_rows[0][0]) for t in COLUMNS
                )
                # Replacing tables collapse the versions of a row within one insert: fewer rows
                # are stored than written (the streaming sink's smaller inserts collapse less).
                stored_by[name] = stored
        print(
            f"{args.repeat} rounds, ways alternating; medians (all runs listed); rows written "
            f"per run {len(records):,}"
        )
        floor = statistics.median(wall["bare insert"])
        print(
            f"{'way':<15} {'rows/s (wall)':>14} {'vs bare':>8} {'vs 50k':>7} "
            f"{'rows/s (CPU)':>13} {'rows stored':>12}   runs (wall)"
        )
        for name in WAYS:
            rate = statistics.median(wall[name])
            print(
                f"{name:<15} {rate:>14,.0f} {rate / floor:>7.2f}x {rate / TARGET:>6.2f}x "
                f"{statistics.median(cpu[name]):>13,.0f} {stored_by[name]:>12,}   "
                + ", ".join(f"{r:,.0f}" for r in wall[name])
            )
        print("(vs bare: the way's rate divided by the bare insert's; vs 50k: by the target)")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
