"""`parcours paths` on chDB: random sessions of touchpoints against a plain-Python cut of the
same sequences, drop-off and Sankey from the counts, channel transitions by hand, golden SQL."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from collections import Counter

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.core.records import EventRow, Record
from streams.queries.paths import (
    PathRow,
    channel_transitions_query,
    drop_off,
    path_rows,
    paths_query,
    sankey,
)
from streams.queries.query import QueryError, run_query
from tests.queries.test_funnel import GOLDEN, T0, row, store
from tests.queries.test_kpi import FROM, TO, session
from tests.queries.test_kpi import T0 as KPI_T0

PAGES = [("web", "page_view", "/a"), ("web", "page_view", "/b"), ("app", "screen_view", "home")]


def ev(
    eid: str, sid: str, at: int, channel: str, kind: str, page: str | None = None, **props: object
) -> EventRow:
    r = row(eid, f"p-{sid}", T0 + at, kind, channel, props=dict(props))
    return dataclasses.replace(r, session_id=sid, page=page)


def label(channel: str, kind: str, page: str | None, props: dict[str, object]) -> str:
    if kind in ("page_view", "screen_view"):
        return f"{channel} {page}"
    if kind == "store_visit":
        return f"store {props['store_id']}"
    return f"{channel} purchase"


def random_sessions(seed: int) -> tuple[list[Record], list[list[str]]]:
    rng = random.Random(seed)
    records: list[Record] = []
    sequences = []
    for s in range(80):
        labels = []
        for i in range(rng.randint(1, 7)):
            pick = rng.random()
            if pick < 0.7:
                channel, kind, page = rng.choice(PAGES)
                props: dict[str, object] = {}
            elif pick < 0.85:
                channel, kind, page, props = "store", "store_visit", None, {"store_id": "paris"}
            else:
                channel, kind, page, props = rng.choice(("web", "store")), "purchase", None, {}
            records.append(ev(f"s{s}-{i}", f"s{s}", i * 1000 + s, channel, kind, page, **props))
            labels.append(label(channel, kind, page, props))
        records.append(
            rng.choice([ev(f"s{s}-x", f"s{s}", 500, "web", "add_to_cart")])
        )  # no touchpoint
        sequences.append([k for k, _ in itertools.groupby(labels)])
    return records, sequences


def expected(
    sequences: list[list[str]], start: str | None, end: str | None, depth: int
) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for steps in sequences:
        if start is not None:
            if start in steps:
                i = steps.index(start)
                out[tuple(steps[i : i + depth])] += 1
        elif end is not None:
            if end in steps:
                i = steps.index(end)
                out[tuple(steps[: i + 1][-depth:])] += 1
        elif steps:
            out[tuple(steps[:depth])] += 1
    return out


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1, 2])
def test_paths_match_the_plain_cut(ch: Client, seed: int) -> None:
    records, sequences = random_sessions(seed)
    store(ch, records, batch_rows=53)
    for start, end, depth in (
        (None, None, 3),
        ("web /a", None, 2),
        (None, "web purchase", 3),
        ("store paris", None, 4),
    ):
        rows = path_rows(ch, paths_query(FROM, TO, start=start, end=end, depth=depth))
        assert Counter({r.path: r.sessions for r in rows}) == expected(sequences, start, end, depth)


@pytest.mark.unit
def test_drop_off_and_sankey_follow_the_counts() -> None:
    rows = [PathRow(("a", "b", "c"), 5), PathRow(("a", "b"), 3), PathRow(("a",), 2)]
    steps = [(d.step, d.sessions, d.dropped) for d in drop_off(rows)]
    assert steps == [(1, 10, 0), (2, 8, 2), (3, 5, 3)]
    chart = sankey(rows)
    assert {n["id"]: n["sessions"] for n in chart["nodes"]} == {"1:a": 10, "2:b": 8, "3:c": 5}
    assert {(link["source"], link["target"]): link["value"] for link in chart["links"]} == {
        ("1:a", "2:b"): 8,
        ("2:b", "3:c"): 5,
    }
    with pytest.raises(QueryError, match="not both"):
        paths_query(FROM, TO, start="x", end="y")
    with pytest.raises(QueryError, match="depth"):
        paths_query(FROM, TO, depth=0)


@pytest.mark.integration
def test_channel_transitions_within_and_across_sessions(ch: Client) -> None:
    store(
        ch,
        [
            ev("1", "A", 0, "web", "page_view", "/a"),
            ev("2", "A", 1000, "app", "screen_view", "home"),
            ev("3", "A", 2000, "app", "screen_view", "home"),
            ev("4", "A", 3000, "store", "store_visit", store_id="paris"),
            dataclasses.replace(session("A", ("web",), "/a"), person_id="lea"),
            dataclasses.replace(
                session("B", ("app",), "home"), person_id="lea", started_at_ms=KPI_T0 + 3600_000
            ),
        ],
    )
    rows = set(run_query(ch, channel_transitions_query(FROM, TO)).rows)
    assert rows == {
        ("within session", "web", "app", 1),
        ("within session", "app", "store", 1),
        ("across sessions", "web", "app", 1),
    }


@pytest.mark.unit
def test_paths_sql_matches_the_golden_files() -> None:
    for name, query in (
        ("paths_from_start", paths_query(FROM, TO, start="web /cart", depth=3)),
        ("channel_transitions", channel_transitions_query(FROM, TO)),
    ):
        path = GOLDEN / f"{name}.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(query.sql + "\n")
        assert query.sql + "\n" == path.read_text()
    assert "web /cart" not in paths_query(FROM, TO, start="web /cart").sql


@pytest.mark.integration
def test_the_command_prints_tables_and_sankey_json(ch: Client) -> None:
    from streams.cli.main import app

    store(ch, random_sessions(3)[0])
    database = ch.query("SELECT currentDatabase()").result_rows[0][0]
    runner = CliRunner()
    args = ["paths", "--from", "2026-11-01", "--to", "2026-11-10", "--database", database]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for title in ("Top paths", "Drop-off", "Channel transitions"):
        assert title in result.output, result.output
    result = runner.invoke(app, [*args, "--format", "sankey"])
    assert result.exit_code == 0, result.output
    chart = orjson.loads(result.output)
    assert chart["nodes"] and chart["links"]
    result = runner.invoke(app, [*args, "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("path,steps,sessions,share")
