"""The query-time views on chDB: identity resolution, session merges, per-minute totals."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    MinuteAggregate,
    Record,
    SessionMerge,
    SessionSummary,
)
from streams.sinks.clickhouse import COLUMNS, ClickHouseSink
from tests.embedded.chdb_runner import run_embedded
from tests.journeys.stories import STORIES

pytestmark = pytest.mark.integration

T0 = 1_793_610_000_000
MIN = 60_000


def event(event_id: str, ts: int, device: str, customer: str | None = None) -> EventRow:
    person = customer or f"anon:{device}"
    return EventRow(
        event_id,
        "page_view",
        ts,
        ts,
        "web",
        device,
        "desktop",
        customer,
        person,
        f"s-{event_id}",
        "/",
        None,
        None,
        None,
        {},
        False,
    )


def store(client: Client, records: list[Record], batch_rows: int = 50_000) -> None:
    sink = ClickHouseSink(client, batch_rows=batch_rows, flush_interval_s=None)
    sink.add(records)
    sink.flush()


# Device d: first linked to c1 at T0 + 10 min (retro window 1 h), then to c2 at T0 + 60 min.
RESOLUTION_CASES = [
    ("names_a_customer", event("named", T0 + 90 * MIN, "d", "cx"), "cx"),
    ("before_the_retro_window", event("too_early", T0 - 51 * MIN, "d"), "anon:d"),
    ("inside_the_retro_window", event("retro", T0 - 50 * MIN, "d"), "c1"),
    ("after_the_first_link", event("between", T0 + 30 * MIN, "d"), "c1"),
    ("at_the_second_link", event("at_link", T0 + 60 * MIN, "d"), "c2"),
    ("after_the_second_link", event("after", T0 + 90 * MIN, "d"), "c2"),
    ("device_never_linked", event("other", T0, "z"), "anon:z"),
]


def test_events_resolved_applies_the_identity_rule(ch: Client) -> None:
    store(
        ch,
        [
            *(case[1] for case in RESOLUTION_CASES),
            IdentityLink("d", "c1", T0 + 10 * MIN, 60 * MIN),
            IdentityLink("d", "c2", T0 + 60 * MIN, 60 * MIN),
            SessionMerge("s-between", "s-c1", "c1", T0 + 10 * MIN),
        ],
    )
    query = "SELECT event_id, resolved_person_id, resolved_session_id FROM events_resolved"
    stored = ch.query(query).result_rows
    resolved = {str(r[0]): str(r[1]) for r in stored}
    assert resolved == {case[1].event_id: case[2] for case in RESOLUTION_CASES}
    sessions = {str(r[0]): str(r[2]) for r in stored}
    assert sessions["between"] == "s-c1"
    assert sessions["after"] == "s-after"
    # every column of `events` keeps its name (0002 exposed `e.device_id`, `e.customer_id`)
    columns = ch.query("SELECT * FROM events_resolved LIMIT 0").column_names
    assert list(columns) == [*COLUMNS["events"], "resolved_person_id", "resolved_session_id"]
    assert ch.query(
        "SELECT customer_id FROM events_resolved WHERE device_id = 'd' AND event_id = 'named'"
    ).result_rows == [("cx",)]


def session(session_id: str, ts: int, person: str) -> SessionSummary:
    return SessionSummary(
        session_id,
        person,
        ts,
        ts + 5_000,
        5.0,
        1,
        1,
        ("web",),
        (person,),
        "/",
        "/",
        False,
        True,
        False,
        0.0,
        1,
    )


def signal(signal_id: str, ts: int, person: str, session_id: str = "") -> FrictionSignal:
    return FrictionSignal(
        signal_id, "bounce", person, session_id or f"s-{signal_id}", "web", None, None, ts
    )


# The same cases, for a session starting (a signal occurring) at the event's time. A row of a
# customer keeps its person; an `anon:<device>` row follows the events_resolved rule.
ROW_CASES = [
    ("names_a_customer", T0 + 90 * MIN, "cx", "cx"),
    ("before_the_retro_window", T0 - 51 * MIN, "anon:d", "anon:d"),
    ("inside_the_retro_window", T0 - 50 * MIN, "anon:d", "c1"),
    ("after_the_first_link", T0 + 30 * MIN, "anon:d", "c1"),
    ("at_the_second_link", T0 + 60 * MIN, "anon:d", "c2"),
    ("after_the_second_link", T0 + 90 * MIN, "anon:d", "c2"),
    ("device_never_linked", T0, "anon:z", "anon:z"),
    ("guest_receipt", T0, "guest:r1", "guest:r1"),
]
LINKS: list[Record] = [
    IdentityLink("d", "c1", T0 + 10 * MIN, 60 * MIN),
    IdentityLink("d", "c2", T0 + 60 * MIN, 60 * MIN),
]


def test_sessions_resolved_applies_the_identity_rule_at_the_session_start(ch: Client) -> None:
    store(ch, [*(session(name, ts, person) for name, ts, person, _ in ROW_CASES), *LINKS])
    stored = ch.query("SELECT session_id, resolved_person_id FROM sessions_resolved").result_rows
    assert dict(stored) == {name: expected for name, _, _, expected in ROW_CASES}
    columns = ch.query("SELECT * FROM sessions_resolved LIMIT 0").column_names
    assert list(columns) == [*COLUMNS["sessions"], "resolved_person_id"]


def test_friction_resolved_applies_the_identity_rule_at_the_signal_time(ch: Client) -> None:
    store(
        ch,
        [
            *(signal(name, ts, person) for name, ts, person, _ in ROW_CASES),
            *LINKS,
            SessionMerge("s-after_the_first_link", "s-c1", "c1", T0 + 10 * MIN),
        ],
    )
    stored = ch.query(
        "SELECT signal_id, resolved_person_id, resolved_session_id FROM friction_resolved"
    ).result_rows
    assert {r[0]: r[1] for r in stored} == {name: expected for name, _, _, expected in ROW_CASES}
    sessions = {r[0]: r[2] for r in stored}
    assert sessions["after_the_first_link"] == "s-c1"
    assert sessions["after_the_second_link"] == "s-after_the_second_link"
    columns = ch.query("SELECT * FROM friction_resolved LIMIT 0").column_names
    assert list(columns) == [*COLUMNS["friction"], "resolved_person_id", "resolved_session_id"]


def test_an_anonymous_session_older_than_the_retro_window_stays_anonymous(ch: Client) -> None:
    """Story `anonymous_history_older_than_30_days_stays_anonymous` through the real pipeline:
    sessions, signals and events agree that the 31-day-old visit stays anonymous."""
    story = next(
        s for s in STORIES if s.name == "anonymous_history_older_than_30_days_stays_anonymous"
    )
    run_embedded(story, ch)
    for view in ("events_resolved", "sessions_resolved", "friction_resolved"):
        persons = ch.query(f"SELECT DISTINCT resolved_person_id FROM {view}").result_rows
        assert sorted(p for (p,) in persons) == ["anon:w4", "c4"], view


def test_anonymous_history_within_the_retro_window_joins_the_customer(ch: Client) -> None:
    story = next(
        s for s in STORIES if s.name == "device_history_before_login_is_attributed_retroactively"
    )
    run_embedded(story, ch)
    for view in ("events_resolved", "sessions_resolved"):
        persons = ch.query(f"SELECT DISTINCT resolved_person_id FROM {view}").result_rows
        assert persons == [("c3",)], view


def aggregate(shard: str, count: int, version: int) -> MinuteAggregate:
    return MinuteAggregate(T0, "web", "events", "page_view", count, count * 1.5, shard, version)


def test_events_per_minute_takes_the_newest_version_per_shard_and_adds_shards(ch: Client) -> None:
    ch.command("SYSTEM STOP MERGES minute_aggregates")  # duplicates and old versions stay stored
    rows: list[Record] = [aggregate("0", 5, 1), aggregate("0", 7, 2), aggregate("1", 3, 1)]
    store(ch, rows)
    store(ch, rows, batch_rows=1)  # a replay cut differently: real duplicate rows
    # The first insert was collapsed to the newest version within its block (optimize_on_insert);
    # the three one-row inserts were not: 2 + 3 rows, an old version and duplicates among them.
    assert ch.query("SELECT count() FROM minute_aggregates").result_rows == [(5,)]
    totals = ch.query(
        "SELECT toUnixTimestamp(minute) * 1000, channel, metric, key, count, amount "
        "FROM events_per_minute"
    ).result_rows
    assert totals == [(T0, "web", "events", "page_view", 10, 15.0)]
