"""Benchmark: what reading versioned sessions with FINAL costs (docs/storage.md).

Writes N sessions (a tenth of them twice: an open row, then the closed one; a hundredth
withdrawn) into a fresh chDB database, then times the conversion KPI's shape read three ways:
the table as it is (duplicates included: wrong, the baseline), `FINAL`, and the `argMax` by
version a view without FINAL would need. Prints medians and ratios against the baseline.

    .venv/bin/python tests/perf/versioned_reads.py [--sessions 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations

QUERIES = {
    "raw rows (baseline, counts stale versions)": "SELECT channel, count() AS sessions, "
    "countIf(converted) AS converted, sum(revenue) FROM sessions ARRAY JOIN channels AS channel "
    "GROUP BY channel",
    "FINAL (what Parcours reads)": "SELECT channel, count() AS sessions, countIf(converted), "
    "sum(revenue) FROM sessions FINAL ARRAY JOIN channels AS channel GROUP BY channel",
    "argMax by version": "SELECT channel, count(), countIf(converted), sum(revenue) FROM ("
    "SELECT session_id, argMax(channels, version) AS channels, argMax(converted, version) AS "
    "converted, argMax(revenue, version) AS revenue, argMax(is_deleted, version) AS deleted "
    "FROM sessions GROUP BY session_id HAVING deleted = 0) ARRAY JOIN channels AS channel "
    "GROUP BY channel",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    client = connect(f"chdb://{tempfile.mkdtemp(prefix='parcours-versioned-')}", "bench")
    apply_migrations(client)
    n = args.sessions
    base = (
        "SELECT concat('s-', toString(number)) AS session_id, concat('c-', toString(number % "
        "(toUInt64({n}) / 3))) AS person_id, toDateTime64('2026-11-02 00:00:00', 3) + number "
        "AS started_at, started_at + 600 AS ended_at, 600.0 AS duration_s, 5 AS events, 3 AS "
        "views, [['web'], ['app'], ['web', 'store']][number % 3 + 1] AS channels, ['d'] AS "
        "devices, '/' AS landing_page, '/' AS exit_page, true AS engaged, false AS bounced, "
        "number % 7 = 0 AS converted, if(converted, 42.5, 0) AS revenue, 0 AS friction_count"
    )
    client.command(
        f"INSERT INTO sessions SELECT *, false, 11, 0 FROM ({base.format(n=n)} FROM numbers({n}))"
    )
    client.command(
        f"INSERT INTO sessions SELECT *, true, 10, 0 FROM ({base.format(n=n)} "
        f"FROM numbers({n}) WHERE number % 10 = 0)"
    )
    client.command(
        f"INSERT INTO sessions SELECT *, false, 12, 1 FROM ({base.format(n=n)} "
        f"FROM numbers({n}) WHERE number % 100 = 0)"
    )
    rows = client.query("SELECT count() FROM sessions").result_rows[0][0]
    print(f"{n:,} sessions, {rows:,} rows (open rows and withdrawals included)")
    medians = {}
    for name, sql in QUERIES.items():
        times = []
        for _ in range(args.repeat + 1):
            began = time.perf_counter()
            client.query(sql)
            times.append(time.perf_counter() - began)
        medians[name] = statistics.median(times[1:])
    first = next(iter(medians.values()))
    for name, median in medians.items():
        print(f"{name:45s} median {median * 1000:8.1f} ms   x{median / first:5.2f}")


if __name__ == "__main__":
    main()
