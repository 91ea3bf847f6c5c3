"""`parcours touchpoints` on chDB: hand-computed KPIs per touchpoint and support repeat
contacts, satisfaction scores against a plain-Python computation, golden SQL, the command."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.core.records import EventRow, Record
from streams.queries.query import run_query
from streams.queries.touchpoints import (
    repeat_contacts_query,
    satisfaction_query,
    touchpoints_query,
)
from tests.queries.test_funnel import GOLDEN, T0, row, store
from tests.queries.test_kpi import FROM, TO, session

H = 3_600_000


def ev(
    eid: str, sid: str, person: str, at: int, event_type: str, channel: str = "web", **props: object
) -> EventRow:
    page = props.pop("page", None)
    assert page is None or isinstance(page, str)
    r = row(eid, person, T0 + at, event_type, channel, props=dict(props))
    return dataclasses.replace(r, session_id=sid, page=page)


def dataset() -> list[Record]:
    return [
        ev("a1", "A", "p1", 0, "page_view", page="/home"),
        ev("a2", "A", "p1", 30_000, "page_view", page="/shoes"),
        ev("a3", "A", "p1", 90_000, "purchase"),
        ev("b1", "B", "p2", 0, "page_view", page="/home"),
        ev("c1", "C", "p3", 0, "store_visit", "store", store_id="paris"),
        ev("c2", "C", "p3", 600_000, "purchase", "store"),
        ev("d1", "D", "p4", 0, "support_contact", medium="chat"),
        ev("d2", "D", "p4", H, "support_contact", medium="chat"),  # a repeat of d1
        ev("e1", "E", "p4", 49 * H, "support_contact", "store", medium="phone"),
        dataclasses.replace(session("A", ("web",), "/home", converted=True), friction_count=1),
        dataclasses.replace(session("B", ("web",), "/home", bounced=True), friction_count=1),
        session("C", ("store",), "", converted=True),
        session("D", ("web",), ""),
        session("E", ("store",), ""),
    ]


@pytest.mark.integration
def test_kpis_per_touchpoint(ch: Client) -> None:
    store(ch, dataset())
    rows = {
        (r["channel"], r["touchpoint"]): r
        for r in run_query(ch, touchpoints_query(FROM, TO)).records()
    }
    home = rows[("web", "/home")]
    assert (home["visits"], home["persons"], home["bounce_rate"], home["conversion_rate"]) == (
        2,
        2,
        0.5,
        0.5,
    )
    assert home["median_seconds"] == 30.0  # B's only page view has no next event: left out
    assert home["friction_per_100_sessions"] == 100.0
    shoes = rows[("web", "/shoes")]
    assert (shoes["visits"], shoes["conversion_rate"], shoes["median_seconds"]) == (1, 1.0, 60.0)
    paris = rows[("store", "store paris")]
    assert (paris["visits"], paris["median_seconds"], paris["friction_per_100_sessions"]) == (
        1,
        600.0,
        0.0,
    )
    chat = rows[("web", "support chat")]
    assert (chat["visits"], chat["persons"], chat["median_seconds"]) == (1, 1, 3600.0)
    assert ("store", "support phone") in rows
    assert len(rows) == 5


@pytest.mark.integration
def test_repeat_contacts_per_medium(ch: Client) -> None:
    store(ch, dataset())
    rows = {r[0]: r[1:] for r in run_query(ch, repeat_contacts_query(FROM, TO)).rows}
    assert rows == {"chat": (2, 1, 0.5, 0.5), "phone": (1, 0, 0.0, 1.0)}


@pytest.mark.integration
def test_satisfaction_matches_a_plain_computation(ch: Client) -> None:
    rng = random.Random(7)
    scales = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
    responses = []
    records: list[Record] = []
    for i in range(300):
        kind = rng.choice(list(scales))
        score = rng.randint(*scales[kind])
        touchpoint = rng.choice(("checkout", "delivery", "store"))
        channel = "store" if touchpoint == "store" else rng.choice(("web", "app"))
        responses.append((touchpoint, channel, kind, score))
        records.append(
            ev(
                f"s{i}",
                "S",
                f"p{i}",
                i * 1000,
                "survey_response",
                channel,
                kind=kind,
                score=score,
                touchpoint=touchpoint,
            )
        )
    store(ch, records)
    got = {
        (r["touchpoint"], r["channel"]): r
        for r in run_query(ch, satisfaction_query(FROM, TO)).records()
    }
    assert set(got) == {(t, c) for t, c, _, _ in responses}
    for key, r in got.items():
        mine = [(k, s) for t, c, k, s in responses if (t, c) == key]
        nps = [s for k, s in mine if k == "nps"]
        csat = [s for k, s in mine if k == "csat"]
        ces = [s for k, s in mine if k == "ces"]
        assert (r["nps_responses"], r["csat_responses"], r["ces_responses"]) == (
            len(nps),
            len(csat),
            len(ces),
        )
        if nps:
            expected = 100 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)) / len(nps)
            assert r["nps"] == pytest.approx(round(expected, 1))
        if csat:
            assert r["csat_percent"] == pytest.approx(
                round(100 * sum(s >= 4 for s in csat) / len(csat), 1)
            )
        if ces:
            assert r["ces"] == pytest.approx(round(sum(ces) / len(ces), 2))


@pytest.mark.unit
def test_touchpoint_sql_matches_the_golden_files() -> None:
    for name, query in (
        ("touchpoints", touchpoints_query(FROM, TO)),
        ("satisfaction", satisfaction_query(FROM, TO)),
        ("repeat_contacts", repeat_contacts_query(FROM, TO)),
    ):
        path = GOLDEN / f"{name}.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(query.sql + "\n")
        assert query.sql + "\n" == path.read_text()


@pytest.mark.integration
def test_the_command_prints_the_three_tables(ch: Client) -> None:
    from streams.cli.main import app

    store(ch, dataset())
    database = ch.query("SELECT currentDatabase()").result_rows[0][0]
    result = CliRunner().invoke(
        app,
        ["touchpoints", "--from", "2026-11-01", "--to", "2026-11-10", "--database", database],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for title in ("Touchpoints", "Satisfaction", "Support: repeat contacts"):
        assert title in result.output, result.output
