"""Benchmark: the embedded pipeline end to end into chDB, and funnel latency at scale.

1. events/s for N simulated events (default 1M): ingest-format lines -> decode -> journey core ->
   batching sink -> chDB, everything included (the lines are simulated beforehand).
2. latency of a 4-step funnel over M events (default 10M): the first part's events are
   replicated (new ids and persons per copy, shifted in time) with INSERT … SELECT inside
   ClickHouse until the table holds M rows (no Python in that loop: a few seconds for 10M rows);
   the identity links and sessions are replicated with them (copies get new device, customer
   and session ids, so each copy resolves like the original). Side by side, R runs each, in
   turn, medians and ratios printed (issue 13's targets):
   - the shipped funnel as `parcours funnel` runs it, after the fold that `parcours ingest`
     does at its end (persons stored on the rows, 0010: a check for pending overrides, then the
     funnel, with no join when none are pending);
   - the same funnel joining every override (`person_overrides`): the cost before the fold;
   - plain `windowFunnel` over the same rows grouped by the stored person (no resolution, no
     time to convert): the floor ClickHouse sets; target: shipped within 1.5x of it;
   - the funnel before issue 13 (events_resolved + self-joins, tests/queries/funnel_reference.py);
   - the KPIs (`parcours kpi`), beside the former queries (tests/perf/former_kpis.py), with a
     check that both give the same rows: the session-table ones must stay < 200 ms.

    .venv/bin/python tests/perf/embedded_ingest.py [--events 1000000] [--funnel-events 10000000]
    .venv/bin/python tests/perf/embedded_ingest.py --events 20000 --funnel-events 200000  # smoke
    .venv/bin/python tests/perf/embedded_ingest.py --keep /tmp/bench10m  # build once, then reuse

With `--keep DIR` the database is built in DIR and left there; a later run with the same DIR
(and the same --events, --funnel-events and --seed) skips the ingest and the copies, applies any
new migration, and measures the queries only (the 10M build takes minutes).

Figures, not assertions: these machines are shared; read medians and ratios of one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.clickhouse.person_fold import fold_persons, has_pending_overrides, merge_versions
from streams.embedded.wiring import embedded_runner
from streams.queries.funnel import PENDING_OVERRIDES, FunnelSpec, Step, funnel_query
from streams.queries.kpi import KPIS, kpi_query
from streams.queries.query import Query, QueryResult, run_query
from streams.simulate import SimulationConfig, generate, to_ingest_line
from tests.perf.former_kpis import FORMER_KPIS
from tests.queries.funnel_reference import reference_funnel_query

#: Plain windowFunnel over the stored person: same rows, same steps, same window, no identity
#: resolution, no breakdown or time to convert. What ClickHouse alone costs.
PLAIN_FUNNEL = """SELECT level, count() AS persons FROM (
    SELECT person_id, windowFunnel({window_ms:UInt64})(toUInt64(toUnixTimestamp64Milli(occurred_at)),
        event_type = 'view_item' AND occurred_at >= {date_from:DateTime64(3)} AND occurred_at < {date_to:DateTime64(3)},
        event_type = 'add_to_cart', event_type = 'begin_checkout', event_type = 'purchase') AS level
    FROM events
    WHERE occurred_at >= {date_from:DateTime64(3)}
      AND occurred_at < {date_to:DateTime64(3)} + toIntervalMillisecond({window_ms:UInt64})
      AND event_type IN ('view_item', 'add_to_cart', 'begin_checkout', 'purchase')
    GROUP BY person_id
) GROUP BY level ORDER BY level"""


#: The embedded client's session may still carry the sink's last `insert_deduplication_token`:
#: without this, ClickHouse takes every copy for a replay of that batch and drops it.
NO_DEDUP = "SETTINGS insert_deduplicate = 0, insert_deduplication_token = ''"


def copy_rows(client: Client, copies: int, limit: int) -> None:
    """Copy `copies` of the original rows: events (up to `limit`), their links and sessions.

    The originals are picked in a subquery: `SELECT * REPLACE (… AS event_id) … WHERE event_id`
    would filter on the replaced (tagged) value, an alias, and copy nothing."""
    tag = f"'#{copies}'"
    days = 7 * copies
    client.command(
        f"INSERT INTO events SELECT * REPLACE (concat(event_id, {tag}) AS event_id, "
        f"occurred_at + toIntervalDay({days}) AS occurred_at, "
        f"if(device_id = '', '', concat(device_id, {tag})) AS device_id, "
        f"if(customer_id = '', '', concat(customer_id, {tag})) AS customer_id, "
        f"concat(person_id, {tag}) AS person_id, concat(session_id, {tag}) AS session_id) "
        f"FROM (SELECT * FROM events WHERE NOT position(event_id, '#') LIMIT {limit}) {NO_DEDUP}"
    )
    client.command(
        f"INSERT INTO identity_links SELECT * REPLACE (concat(device_id, {tag}) AS device_id, "
        f"concat(customer_id, {tag}) AS customer_id, linked_at + toIntervalDay({days}) AS linked_at) "
        f"FROM (SELECT * FROM identity_links WHERE NOT position(device_id, '#')) {NO_DEDUP}"
    )
    client.command(
        f"INSERT INTO sessions SELECT * REPLACE (concat(session_id, {tag}) AS session_id, "
        f"concat(person_id, {tag}) AS person_id, started_at + toIntervalDay({days}) AS started_at, "
        f"ended_at + toIntervalDay({days}) AS ended_at) "
        f"FROM (SELECT * FROM sessions WHERE NOT position(session_id, '#')) {NO_DEDUP}"
    )


def timed(client: Client, query: Query, runs: int) -> tuple[list[float], object]:
    timings, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = run_query(client, query)
        timings.append(time.perf_counter() - t0)
    return timings, result


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
    parser.add_argument("--before-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--keep", metavar="DIR", help="build the database in DIR and keep it; reuse it if built"
    )
    args = parser.parse_args()
    directory = args.keep or tempfile.mkdtemp(prefix="parcours-bench-")
    try:
        client = connect(f"chdb://{directory}")
        apply_migrations(client)
        if args.keep and _built(client, args.funnel_events):
            stored = client.query("SELECT count() FROM events").result_rows[0][0]
            copies = client.query(
                "SELECT max(toUInt32OrZero(extract(event_id, '#([0-9]+)$'))) FROM events"
            ).result_rows[0][0]
            start = SimulationConfig(
                customers=max(500, args.events // 60), days=7, seed=args.seed
            ).start
            print(f"reusing the database in {directory}: {stored:,} events, {copies} copies")
        else:
            stored, copies, start = build(client, args)
        fold(client)
        measure(client, args, stored, copies, start)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


def _built(client: Client, funnel_events: int) -> bool:
    stored: int = client.query("SELECT count() FROM events").result_rows[0][0]
    return stored >= funnel_events


def build(client: Client, args: argparse.Namespace) -> tuple[int, int, datetime]:
    """Ingest the simulated events, then grow `events` to the funnel size by copies."""
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
        copy_rows(client, copies, min(args.events, args.funnel_events - stored))
        stored = client.query("SELECT count() FROM events").result_rows[0][0]
    sessions = client.query("SELECT count() FROM sessions").result_rows[0][0]
    links = client.query("SELECT count() FROM identity_links").result_rows[0][0]
    print(
        f"events table grown to {stored:,} rows ({copies} shifted copies made with INSERT … "
        f"SELECT in chDB, not ingested); {sessions:,} session rows, {links:,} identity links"
    )
    return stored, copies, start


def fold(client: Client) -> None:
    """Compact as `parcours ingest` does at its end: fold the person overrides into the rows
    (0010), merge the versioned tables. Measured here, not hidden: it is part of ingest."""
    t0 = time.perf_counter()
    stats = fold_persons(client)
    folded = time.perf_counter() - t0
    t0 = time.perf_counter()
    merge_versions(client)
    print(
        f"compaction (as at the end of parcours ingest): {stats.rows_rewritten:,} rows rewritten "
        f"under their resolved person in {folded:.1f}s, overrides pending: "
        f"{has_pending_overrides(client)}; sessions and friction merged in "
        f"{time.perf_counter() - t0:.1f}s"
    )


def measure(
    client: Client, args: argparse.Namespace, stored: int, copies: int, start: datetime
) -> None:
    """The funnels side by side, then the KPIs (former and shipped): medians of the runs."""
    sessions = client.query("SELECT count() FROM sessions").result_rows[0][0]
    spec = FunnelSpec(
        tuple(Step(s) for s in ("view_item", "add_to_cart", "begin_checkout", "purchase")),
        3600,
        start,
        start + timedelta(days=7 * (copies + 2)),
        breakdown="channel",
    )
    joined = funnel_query(spec)
    plain = Query(PLAIN_FUNNEL, joined.parameters)
    # The join over every override, as the funnel read persons before the fold existed.
    unfolded = Query(
        joined.sql.replace("person_overrides_pending AS o", "person_overrides AS o"),
        joined.parameters,
    )
    before = reference_funnel_query(spec)

    def shipped() -> QueryResult:
        """As `parcours funnel` runs it: is an override pending? then the funnel."""
        pending = bool(run_query(client, PENDING_OVERRIDES).rows[0][0])
        return run_query(client, funnel_query(spec, join_overrides=pending))

    runs: dict[str, Callable[[], QueryResult]] = {
        "shipped": shipped,
        "plain": lambda: run_query(client, plain),
        "unfolded": lambda: run_query(client, unfolded),
        "before": lambda: run_query(client, before),
    }
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for run in range(args.funnel_runs):  # in turn, so a busy moment hits all of them
        for name, call in runs.items():
            if name == "before" and run >= args.before_runs:
                continue
            t0 = time.perf_counter()
            call()
            figures[name].append(time.perf_counter() - t0)
    entered = sum(r[1] for r in shipped().rows)
    plain_entered = sum(r[1] for r in run_query(client, plain).rows if r[0] >= 1)
    same = sorted(shipped().rows, key=repr) == sorted(run_query(client, before).rows, key=repr)
    med = {k: statistics.median(v) for k, v in figures.items() if v}
    print(
        f"4-step funnel by channel over {stored:,} events ({entered:,} resolved persons entered; "
        f"{plain_entered:,} stored persons for plain windowFunnel), medians of "
        f"{args.funnel_runs} runs ({args.before_runs} for the former query); shipped answer "
        f"{'equals' if same else 'DIFFERS FROM'} the former query's:"
    )
    for name, label in (
        ("plain", "plain windowFunnel by stored person (floor)"),
        ("shipped", "shipped funnel (folded persons, times)"),
        ("unfolded", "same, joining every override (no fold)"),
        ("before", "funnel before issue 13 (events_resolved)"),
    ):
        values = figures[name]
        print(
            f"  {label:<46} median {med[name] * 1000:8.0f} ms  "
            f"(min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})  "
            f"x{med[name] / med['plain']:.2f} of plain"
        )
    print(f"  shipped / plain = {med['shipped'] / med['plain']:.2f} (target <= 1.5)")
    date_to = spec.date_to
    print(
        f"KPIs over {stored:,} events / {sessions:,} session rows, medians of {args.funnel_runs} "
        "runs (target < 200 ms), former queries (tests/perf/former_kpis.py) alongside:"
    )
    for name in KPIS:
        query = kpi_query(name, start, date_to)
        former = Query(FORMER_KPIS[name], query.parameters) if name in FORMER_KPIS else None
        now_t, old_t = [], []
        for _ in range(args.funnel_runs):
            now_t += timed(client, query, 1)[0]
            if former is not None:
                old_t += timed(client, former, 1)[0]
        line = f"  kpi {name:<15} median {statistics.median(now_t) * 1000:7.0f} ms"
        if former is not None:
            same = sorted(run_query(client, query).rows) == sorted(run_query(client, former).rows)
            line += (
                f"   former {statistics.median(old_t) * 1000:7.0f} ms"
                f"  x{statistics.median(old_t) / statistics.median(now_t):.1f} faster"
                f"  answers {'equal' if same else 'DIFFER'}"
            )
        print(line)


if __name__ == "__main__":
    main()
