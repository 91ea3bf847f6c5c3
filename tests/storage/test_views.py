"""The query-time views on chDB: identity resolution, session merges, per-minute totals."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from streams.core.records import EventRow, IdentityLink, MinuteAggregate, Record, SessionMerge
from streams.sinks.clickhouse import ClickHouseSink

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
