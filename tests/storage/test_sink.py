"""The ClickHouse sink on chDB: every record type round trips; replays never duplicate."""

from __future__ import annotations

from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client

from schemas import Rejection, RejectReason
from streams.clickhouse.errors import SinkError
from streams.core.records import (
    EventRow,
    FrictionSignal,
    IdentityLink,
    MinuteAggregate,
    SessionMerge,
    SessionSummary,
)
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink, RetryPolicy

pytestmark = pytest.mark.integration

T0 = 1_793_610_000_123


def records() -> list[Any]:
    return [
        EventRow(
            "e1",
            "purchase",
            T0,
            T0 + 5,
            "web",
            "w1",
            "mobile",
            "c1",
            "c1",
            "s1",
            None,
            None,
            12.5,
            "EUR",
            {"transaction_id": "t", "value": 12.5},
            False,
        ),
        EventRow(
            "e2",
            "page_view",
            T0 + 1000,
            T0 + 1005,
            "app",
            "a1",
            None,
            None,
            "anon:a1",
            "s1",
            "/home",
            None,
            None,
            None,
            {"page": "/home"},
            True,
        ),
        SessionSummary(
            "s1",
            "c1",
            T0,
            T0 + 1000,
            1.0,
            2,
            1,
            ("app", "web"),
            ("a1", "w1"),
            "/home",
            "/home",
            True,
            False,
            True,
            12.5,
            1,
        ),
        FrictionSignal(
            "f1",
            "rage_click",
            "c1",
            "s1",
            "web",
            "w1",
            "mobile",
            T0,
            {"element": "pay", "clicks": 3},
        ),
        IdentityLink("w1", "c1", T0, 30 * 86_400_000),
        SessionMerge("s0", "s1", "c1", T0),
        MinuteAggregate(T0 - T0 % 60_000, "web", "events", "purchase", 1, 12.5, "0", 1),
    ]


def counts(client: Client) -> dict[str, int]:
    tables = [
        "events",
        "sessions",
        "friction",
        "identity_links",
        "session_merges",
        "minute_aggregates",
        "rejected_events",
        "rejected_messages",
    ]
    return {t: client.query(f"SELECT count() FROM {t}").result_rows[0][0] for t in tables}


def test_every_record_type_round_trips(ch: Client) -> None:
    sink = ClickHouseSink(ch, flush_interval_s=None)
    sink.add(records())
    report = sink.flush()
    assert report.total == 7
    row = ch.query(
        "SELECT event_id, toUnixTimestamp64Milli(occurred_at), device_type, value, currency, JSONExtractFloat(properties, 'value'), late FROM events ORDER BY event_id"
    ).result_rows
    assert row == [
        ("e1", T0, "mobile", 12.5, "EUR", 12.5, False),
        ("e2", T0 + 1000, "", None, "", 0.0, True),
    ]
    session = ch.query(
        "SELECT session_id, channels, devices, converted, revenue FROM sessions"
    ).result_rows
    assert session == [("s1", ["app", "web"], ["a1", "w1"], True, 12.5)]
    assert ch.query("SELECT JSONExtractInt(details, 'clicks') FROM friction").result_rows == [(3,)]
    assert ch.query(
        "SELECT resolved_session_id FROM events_resolved WHERE session_id = 's1' LIMIT 1"
    ).result_rows == [("s1",)]


def test_the_same_batch_twice_is_stored_once(ch: Client) -> None:
    for _ in range(2):
        sink = ClickHouseSink(ch, flush_interval_s=None)
        sink.add(records())
        sink.flush()
    assert counts(ch) == {
        "events": 2,
        "sessions": 1,
        "friction": 1,
        "identity_links": 1,
        "session_merges": 1,
        "minute_aggregates": 1,
        "rejected_events": 0,
        "rejected_messages": 0,
    }


def test_batches_are_cut_by_size(ch: Client) -> None:
    sink = ClickHouseSink(ch, batch_rows=1, flush_interval_s=None)
    sink.add(records()[:2])
    assert counts(ch)["events"] == 2
    assert sink.buffered == 0


class FakeClock:
    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float | None:
        return self.now


def test_every_table_is_flushed_when_the_interval_has_passed(ch: Client) -> None:
    clock = FakeClock()
    sink = ClickHouseSink(ch, batch_rows=1000, flush_interval_s=2.0, clock=clock)
    rejection = RejectedInput(
        Rejection(RejectReason.INVALID_JSON, "not JSON", None, "clickstream", b"{", None, None),
        "file:a.jsonl",
        1,
        T0,
    )
    sink.add(records()[:1])  # the clock has no time yet: nothing can be due
    clock.now = 100.0
    sink.add(records()[1:3])  # first reading: the interval starts here
    clock.now = 101.9
    sink.add(records()[3:5])
    sink.add_rejections([rejection])
    # 5 records, 1 rejection and its message's bytes (stored once, in rejected_messages)
    assert sum(counts(ch).values()) == 0 and sink.buffered == 7
    clock.now = 102.0  # 2 s after the first reading: every table goes out
    sink.add(records()[5:])
    assert counts(ch) == {
        "events": 2,
        "sessions": 1,
        "friction": 1,
        "identity_links": 1,
        "session_merges": 1,
        "minute_aggregates": 1,
        "rejected_events": 1,
        "rejected_messages": 1,
    }
    assert sink.buffered == 0
    clock.now = 103.9  # the next interval counts from that flush
    sink.add(records()[:1])
    assert sink.buffered == 1
    clock.now = 104.0
    sink.add_rejections([])  # adding nothing still lets a due flush happen
    assert sink.buffered == 0


def test_without_an_interval_only_size_and_explicit_flushes_write(ch: Client) -> None:
    clock = FakeClock()
    sink = ClickHouseSink(ch, batch_rows=1000, flush_interval_s=None, clock=clock)
    for clock.now in (0.0, 1e6, 1e9):
        sink.add(records()[:2])
    assert counts(ch)["events"] == 0 and sink.buffered == 6


def test_rejections_are_stored_with_raw_bytes(ch: Client) -> None:
    raw = b'{"event_id": "x", "event_type": 3}'
    rejection = Rejection(
        RejectReason.WRONG_TYPE,
        "event_type: expected a string",
        "event_type",
        "clickstream",
        raw,
        None,
        "x",
    )
    sink = ClickHouseSink(ch, flush_interval_s=None)
    for _ in range(2):  # the same input rejected twice (a replay) is stored once
        sink.add_rejections([RejectedInput(rejection, "file:a.jsonl", 7, T0)])
        sink.flush()
    rows = ch.query(
        "SELECT reason, field, event_id, raw, source, position FROM rejections"
    ).result_rows
    assert rows == [("wrong_type", "event_type", "x", raw.decode(), "file:a.jsonl", 7)]


class FlakyClient:
    """A real chDB client whose first `failures` inserts fail (a network blip)."""

    def __init__(self, client: Client, failures: int) -> None:
        self.client, self.failures, self.calls = client, failures, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("connection reset by peer")
        return self.client.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # queries go through (the sink reads column types)
        return getattr(self.client, name)


def test_failed_inserts_are_retried_and_nothing_is_lost(ch: Client) -> None:
    flaky = FlakyClient(ch, failures=2)
    slept: list[float] = []
    sink = ClickHouseSink(
        cast(Client, flaky),
        flush_interval_s=None,
        retry=RetryPolicy(attempts=5, first_delay_s=0.1),
        sleep=slept.append,
    )
    sink.add(records()[:2])
    sink.flush()
    assert counts(ch)["events"] == 2
    assert slept == [0.1, 0.2]


def test_giving_up_raises_and_keeps_the_rows(ch: Client) -> None:
    flaky = FlakyClient(ch, failures=10)
    sink = ClickHouseSink(
        cast(Client, flaky),
        flush_interval_s=None,
        retry=RetryPolicy(attempts=3, first_delay_s=0.01),
        sleep=lambda s: None,
    )
    sink.add(records()[:2])
    with pytest.raises(SinkError, match="after 3 attempts"):
        sink.flush()
    assert sink.buffered == 2
    flaky.failures = 0
    sink.flush()
    assert counts(ch)["events"] == 2
