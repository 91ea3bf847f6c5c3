"""`parcours person ID` on chDB: a hand-made story, and the events of every simulated person
against the `events_resolved` view (an independent statement of the identity rule)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.core.records import FrictionSignal, IdentityLink, SessionMerge
from streams.queries.person import person_journeys
from streams.queries.query import QueryError
from tests.queries.test_funnel import T0, row, store
from tests.queries.test_kpi import session

pytestmark = pytest.mark.integration
DAY = 86_400_000
RETRO = 30 * DAY


def anon(event_id: str, device: str, ts: int, kind: str, channel: str = "web", sid: str = "s"):  # type: ignore[no-untyped-def]
    r = row(event_id, f"anon:{device}", ts, kind, channel, device=device, anonymous=True)
    return dataclasses.replace(r, session_id=sid)


def story(ch: Client) -> None:
    """Léa browses on her phone anonymously, logs in later, buys in store; the family tablet
    was hers, then her brother's."""
    store(
        ch,
        [
            anon("p1", "phone", T0, "view_item", "app", "s-anon"),
            anon("p2", "phone", T0 + 60_000, "add_to_cart", "app", "s-anon"),
            anon("p0", "phone", T0 - RETRO - DAY, "page_view", "app", "s-old"),  # before retro
            IdentityLink("phone", "c-lea", T0 + 120_000, RETRO),
            SessionMerge("s-anon", "s-lea", "c-lea", T0 + 120_000),
            dataclasses.replace(
                row("l1", "c-lea", T0 + 120_000, "login", "app"), session_id="s-lea"
            ),
            dataclasses.replace(
                row("l2", "c-lea", T0 + DAY, "purchase", "store"), session_id="s-shop"
            ),
            dataclasses.replace(session("s-anon", ("app",), "/p"), person_id="anon:phone"),
            dataclasses.replace(session("s-shop", ("store",), "/"), person_id="c-lea"),
            FrictionSignal(
                "f1",
                "cart_abandoned",
                "anon:phone",
                "s-anon",
                "app",
                "phone",
                "mobile",
                T0 + 90_000,
            ),
            IdentityLink("tablet", "c-lea", T0, RETRO),
            IdentityLink("tablet", "c-tom", T0 + 2 * DAY, RETRO),
            anon("t1", "tablet", T0 + 3600_000, "page_view", "web", "s-t1"),  # Léa's
            anon("t2", "tablet", T0 + 3 * DAY, "page_view", "web", "s-t2"),  # Tom's
        ],
    )


def test_a_customer_id_shows_every_device_and_channel_in_time_order(ch: Client) -> None:
    story(ch)
    (lea,) = person_journeys(ch, "c-lea")
    assert lea.person == "c-lea" and lea.also == []
    events = lea.events.records()
    assert [e["event_id"] for e in events] == ["p1", "p2", "l1", "t1", "l2"]
    # the anonymous session joined Léa's at the login
    assert [e["session_id"] for e in events[:3]] == ["s-lea", "s-lea", "s-lea"]
    assert [r["session_id"] for r in lea.sessions.records()] == ["s-anon", "s-shop"]
    assert [r["type"] for r in lea.signals.records()] == ["cart_abandoned"]
    assert sorted(r["device_id"] for r in lea.links.records()) == ["phone", "tablet"]


def test_a_device_or_anonymous_id_leads_to_the_persons_behind_it(ch: Client) -> None:
    story(ch)
    by_tablet = {j.person: j for j in person_journeys(ch, "tablet")}
    assert set(by_tablet) == {"c-lea", "c-tom"}
    assert [e["event_id"] for e in by_tablet["c-tom"].events.records()] == ["t2"]
    assert by_tablet["c-tom"].also == ["c-lea"]
    by_anon = {j.person for j in person_journeys(ch, "anon:phone")}
    assert by_anon == {"c-lea", "anon:phone"}  # p0 is older than the retro window
    assert person_journeys(ch, "nobody") == []
    with pytest.raises(QueryError):
        person_journeys(ch, "")


def test_every_simulated_person_matches_the_resolved_view(tmp_path: Path, ch: Client) -> None:
    from tests.embedded.test_ingest_end_to_end import ingest, simulate

    ingest(simulate(tmp_path), ch)
    linked = [
        str(r[0])
        for r in ch.query(
            "SELECT DISTINCT customer_id FROM identity_links ORDER BY customer_id LIMIT 15"
        ).result_rows
    ]
    anonymous = [
        str(r[0])
        for r in ch.query(
            "SELECT DISTINCT person_id FROM events WHERE startsWith(person_id, 'anon:') "
            "ORDER BY person_id LIMIT 10"
        ).result_rows
    ]
    assert linked and anonymous
    for ident in linked + anonymous:
        for journey in person_journeys(ch, ident):
            expected = [
                r[0]
                for r in ch.query(
                    "SELECT DISTINCT event_id FROM events_resolved WHERE resolved_person_id = "
                    "{p:String} ORDER BY event_id",
                    parameters={"p": journey.person},
                ).result_rows
            ]
            got = sorted({e["event_id"] for e in journey.events.records()})
            assert got == expected, journey.person


def test_the_command_prints_tables_json_and_csv(ch: Client) -> None:
    from streams.cli.main import app

    story(ch)
    database = ch.query("SELECT currentDatabase()").result_rows[0][0]
    runner = CliRunner()
    result = runner.invoke(app, ["person", "c-lea", "--database", database])
    assert result.exit_code == 0, result.output
    for title in ("Person c-lea", "Sessions: 2", "Events, in time order", "Friction signals: 1"):
        assert title in result.output
    result = runner.invoke(app, ["person", "tablet", "--database", database, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {d["person"] for d in orjson.loads(result.output)} == {"c-lea", "c-tom"}
    result = runner.invoke(app, ["person", "c-tom", "--database", database, "--format", "csv"])
    assert result.exit_code == 0 and result.output.splitlines()[0].startswith("person,occurred_at")
    result = runner.invoke(app, ["person", "nobody", "--database", database])
    assert result.exit_code == 1 and "no customer, device or person 'nobody'" in result.output
