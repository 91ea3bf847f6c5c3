"""simulate -> ingest -> ClickHouse, checked against an independent batch computation."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from schemas import Event, Rejection, decode
from streams.embedded.runner import EmbeddedRunner
from streams.embedded.wiring import EMBEDDED_FLUSH_INTERVAL_S, embedded_runner
from streams.queries.funnel import FunnelSpec, Step, funnel_query, funnel_rows
from streams.queries.query import run_query
from streams.simulate import SimulationConfig, parse_incident, write_ingest_file
from streams.simulate.config import DEFAULT_START
from streams.sinks.clickhouse import ClickHouseSink
from tests.embedded.oracle import (
    GAP_MS,
    OracleEvent,
    events_per_minute,
    key,
    sessions_of,
    signals_of,
)
from tests.queries.funnel_oracle import reference_levels

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0  # a fixed clock for the runner: 2027-01-15
RETRO_MS = 30 * 86_400_000
#: Devices shared by the public (README, "People"): never linked, guests get visits of their own.
SHARED_TYPES = {"pos", "kiosk"}


def simulate(tmp_path: Path, **overrides: object) -> Path:
    config = SimulationConfig(customers=150, days=2, seed=11, **overrides)  # type: ignore[arg-type]
    path = tmp_path / "traffic.jsonl"
    write_ingest_file(config, path)
    return path


def ingest(path: Path, client: Client) -> EmbeddedRunner:
    runner = EmbeddedRunner(ClickHouseSink(client, flush_interval_s=None), clock=lambda: NOW)
    with path.open("rb") as fh:
        runner.feed_lines(fh, source=f"file:{path.name}")
    runner.finish()
    return runner


def valid_events(path: Path) -> list[Event]:
    """Independent of the core: decode each line and keep the first copy of each event id."""
    seen: set[str] = set()
    out = []
    now = datetime.fromtimestamp(NOW, UTC)
    for line in path.read_bytes().splitlines():
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("topic"), str) or "value" not in doc:
            continue
        for result in decode(orjson.dumps(doc["value"]), doc["topic"], now=now):
            if isinstance(result, Event) and result.event_id not in seen:
                seen.add(result.event_id)
                out.append(result)
    return out


def oracle_event(ev: Event, person: str) -> OracleEvent:
    props = ev.properties
    results = props.get("results_count")
    return OracleEvent(
        ev.event_id,
        ev.event_type,
        ev.ts_ms,
        person,
        results if isinstance(results, int) else None,
        ev.channel.value,
        ev.device_id,
        props.get("element"),
        props.get("medium"),
    )


def rejections_by_reason(path: Path) -> Counter[str]:
    """The ingest format (README): a line that is not JSON, not an object, without a string
    topic or without a value is rejected whole; otherwise each rejection of its value counts."""
    out: Counter[str] = Counter()
    now = datetime.fromtimestamp(NOW, UTC)
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            out["invalid_json"] += 1
            continue
        if not isinstance(doc, dict):
            out["not_an_object"] += 1
        elif "topic" not in doc or "value" not in doc:
            out["missing_field"] += 1
        elif not isinstance(doc["topic"], str):
            out["wrong_type"] += 1
        else:
            for result in decode(orjson.dumps(doc["value"]), doc["topic"], now=now):
                if isinstance(result, Rejection):
                    out[str(result.reason)] += 1
    return out


def shared_device(ev: Event) -> bool:
    return ev.device_id is not None and ev.properties.get("device_type") in SHARED_TYPES


def guest_visits(events: list[Event]) -> dict[str, str]:
    """Event id -> guest visit at a shared device (README, 'People'): a guest's events at a till
    or kiosk, in arrival order, until a receipt, an event naming a customer, or a gap."""
    out: dict[str, str] = {}
    open_visits: dict[str, tuple[str, int]] = {}
    for ev in events:
        if not shared_device(ev):
            continue
        device = str(ev.device_id)
        if ev.customer_id:
            open_visits.pop(device, None)
            continue
        visit = open_visits.get(device)
        if visit is None or abs(ev.ts_ms - visit[1]) > GAP_MS:
            visit = (f"anon:{device}:{ev.event_id}", ev.ts_ms)
        out[ev.event_id] = visit[0]
        open_visits[device] = (visit[0], max(visit[1], ev.ts_ms))
        if ev.event_type == "purchase":
            del open_visits[device]
    return out


def resolved_person(
    ev: Event, links: dict[str, list[tuple[int, str]]], guests: dict[str, str]
) -> str:
    """The identity rule, re-implemented from its definition (README, 'People')."""
    if ev.customer_id:
        return ev.customer_id
    if ev.device_id is None:
        tx, store = ev.properties.get("transaction_id"), ev.properties.get("store_id")
        if ev.event_type != "purchase" or not tx:
            return f"guest:{ev.event_id}"
        return f"guest:{store}/{tx}" if store else f"guest:{tx}"
    if ev.event_id in guests:
        return guests[ev.event_id]
    mine = sorted(links.get(ev.device_id, []))
    current = [c for at, c in mine if at <= ev.ts_ms]
    if current:
        return current[-1]
    if mine and ev.ts_ms >= mine[0][0] - RETRO_MS:
        return mine[0][1]
    return f"anon:{ev.device_id}"


def test_tables_match_an_independent_computation(tmp_path: Path, ch: Client) -> None:
    # No late arrivals: the batch oracle has no notion of "late". A payment outage so that
    # payment failures occur at this small scale.
    outage = parse_incident("payment_outage:+1d10h:+1d16h", DEFAULT_START)
    path = simulate(tmp_path, jitter_rate=0.0, late_rate=0.0, incidents=(outage,))
    runner = ingest(path, ch)
    events = valid_events(path)
    # every valid event stored once; every bad input rejected with a reason
    assert ch.query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0] == (
        len(events),
        len(events),
    )
    stats = runner.stats
    assert stats.events == len(events) + stats.duplicates
    assert (
        ch.query("SELECT count() FROM rejected_events").result_rows[0][0]
        == stats.rejected_total
        > 0
    )
    # identity links: every (device, customer) pair seen together
    links: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for ev in sorted(events, key=lambda e: e.ts_ms):
        if ev.device_id and ev.customer_id and not shared_device(ev):
            mine = links[ev.device_id]
            current = [c for at, c in sorted(mine) if at <= ev.ts_ms]
            if not mine or (current[-1] if current else None) != ev.customer_id:
                mine.append((ev.ts_ms, ev.customer_id))
    stored_pairs = set(ch.query("SELECT device_id, customer_id FROM identity_links").result_rows)
    assert stored_pairs == {(d, c) for d, ls in links.items() for _, c in ls}
    # sessions, re-derived per resolved person by gap and cap
    guests = guest_visits(events)
    assert len(set(guests.values())) >= 5  # the simulated guest receipts at tills
    oracle_events = [oracle_event(ev, resolved_person(ev, links, guests)) for ev in events]
    oracle = sessions_of(oracle_events)
    stored = ch.query(
        "SELECT resolved_person_id, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), "
        "events, views, bounced, converted FROM sessions_resolved"
    ).result_rows
    assert len(oracle) > 300
    assert Counter(map(tuple, stored)) == Counter(map(key, oracle))
    # every signal type but quick_back, re-derived from its definition (README), per type
    signals = dict(
        ch.query("SELECT type, uniqExact(signal_id) FROM friction GROUP BY type").result_rows
    )
    expected_signals = signals_of(oracle_events)
    assert {t: n for t, n in signals.items() if t != "quick_back"} == dict(expected_signals)
    assert signals["bounce"] == sum(s.bounced for s in oracle) > 50
    # not vacuous: each of the ten re-derived types occurs in this input
    assert len(expected_signals) == 10 and min(expected_signals.values()) >= 2, expected_signals
    # per-minute events by channel and type = a count over the valid events
    per_minute = ch.query(
        "SELECT toUnixTimestamp(minute) * 1000, channel, key, count FROM events_per_minute "
        "WHERE metric = 'events'"
    ).result_rows
    assert {(m, c, k): n for m, c, k, n in per_minute} == dict(events_per_minute(oracle_events))
    # rejections per reason = the ingest format's rules applied to the raw file
    rejected = dict(
        ch.query("SELECT reason, count() FROM rejected_events GROUP BY reason").result_rows
    )
    assert rejected == dict(rejections_by_reason(path)) == dict(stats.rejected)
    # funnel counts = the reference funnel over the same events and persons
    steps = ["view_item", "add_to_cart", "begin_checkout", "purchase"]
    start = datetime(2026, 11, 2, tzinfo=UTC)
    end = datetime(2026, 11, 5, tzinfo=UTC)
    spec = FunnelSpec(tuple(Step(s) for s in steps), 3600, start, end)
    rows = funnel_rows(spec, run_query(ch, funnel_query(spec)))
    levels = reference_levels(
        [(resolved_person(ev, links, guests), ev.ts_ms, ev.event_type) for ev in events],
        steps,
        3_600_000,
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
    )
    assert [r.persons for r in rows] == [sum(v >= k for v in levels.values()) for k in range(1, 5)]


TABLES = [
    "events",
    "sessions",
    "friction",
    "identity_links",
    "session_merges",
    "minute_aggregates",
    "rejected_events",
]


def snapshot(ch: Client) -> dict[str, object]:
    """Row count and a hash of every stored row (received_at aside), per table."""
    return {
        t: ch.query(
            f"SELECT count(), cityHash64(groupArraySorted(100000)(cityHash64(*))) FROM (SELECT * EXCEPT received_at FROM {t})"
            if t in ("events", "rejected_events")
            else f"SELECT count(), cityHash64(groupArraySorted(100000)(cityHash64(*))) FROM {t}"
        ).result_rows[0]
        for t in TABLES
    }


def test_ingesting_the_same_file_twice_changes_nothing(tmp_path: Path, ch: Client) -> None:
    path = simulate(tmp_path)
    ingest(path, ch)
    first = snapshot(ch)
    ingest(path, ch)
    assert snapshot(ch) == first


def test_the_embedded_event_time_flush_cuts_a_replay_the_same_way(
    tmp_path: Path, ch: Client
) -> None:
    """The embedded sink flushes every table on event time, besides size (by default once per
    day; here every hour to cut many batches): a replay is cut at the same points, so the
    tokens drop it and the tables do not change."""
    path = simulate(tmp_path)
    default = embedded_runner(ch, batch_rows=50_000)
    assert default.sink.flush_interval_s == EMBEDDED_FLUSH_INTERVAL_S == 86_400  # type: ignore[attr-defined]
    snapshots, flushes = [], []
    for _ in range(2):
        runner = embedded_runner(ch, batch_rows=50_000, flush_interval_s=3600)
        runner.sink.flush = counting(runner.sink.flush, flushes)  # type: ignore[method-assign]
        with path.open("rb") as fh:
            runner.feed_lines(fh, source=f"file:{path.name}")
        runner.finish()
        snapshots.append(snapshot(ch))
    assert snapshots[0] == snapshots[1]
    assert len(flushes) > 2 * 30  # two days of events: about one flush per hour of event time


def counting(flush: Callable[[], object], calls: list[int]) -> Callable[[], object]:
    def wrapped() -> object:
        calls.append(1)
        return flush()

    return wrapped


BAD_LINES = [
    (b"this is not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"value": {}}', "missing_field"),
    (b'{"topic": 7, "value": {}}', "wrong_type"),
    (b'{"topic": "clickstream"}', "missing_field"),
    (b'{"topic": "pageviews", "value": {}}', "unknown_topic"),
    (b'{"topic": "clickstream", "value": "text"}', "not_an_object"),
    (b'{"topic": "clickstream", "value": {"event_type": "page_view"}}', "missing_field"),
    (
        b'{"topic": "clickstream", "value": {"event_id": 1, "event_type": "page_view", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d"}}',
        "wrong_type",
    ),
    (
        b'{"topic": "clickstream", "value": {"event_id": "b1", "event_type": "Page View", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d"}}',
        "invalid_value",
    ),
    (
        b'{"topic": "clickstream", "value": {"event_id": "b2", "event_type": "page_view", "occurred_at": "1999-01-01T00:00:00Z", "device_id": "d", "properties": {"page": "/"}}}',
        "timestamp_out_of_range",
    ),
    (
        b'{"topic": "clickstream", "value": {"event_id": "b3", "event_type": "page_view", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d", "properties": {"page": "/", "x": "'
        + b"y" * 33_000
        + b'"}}}',
        "too_large",
    ),
    (b'{"topic": "app-events", "value": []}', "invalid_value"),
]
GOOD = b'{"topic": "clickstream", "value": [{"event_id": "g1", "event_type": "page_view", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d", "properties": {"page": "/"}}, {"event_id": "g2", "event_type": "page_view", "occurred_at": "2026-11-02T10:00:05Z", "device_id": "d", "properties": {"page": "/x"}}, {"event_id": "g3"}]}'


def test_every_kind_of_bad_line_is_rejected_with_its_reason(ch: Client) -> None:
    lines = [GOOD] + [line for line, _ in BAD_LINES]
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None), clock=lambda: NOW)
    runner.feed_lines(io.BytesIO(b"\n".join(lines) + b"\n"), source="file:bad.jsonl")
    runner.finish()
    stored = ch.query("SELECT count() FROM events").result_rows[0][0]
    rejected = ch.query(
        "SELECT position, reason, raw FROM rejections ORDER BY position"
    ).result_rows
    assert stored == 2
    expected = [(1, "missing_field")] + [(i + 2, reason) for i, (_, reason) in enumerate(BAD_LINES)]
    assert [(p, r) for p, r, _ in rejected] == expected
    # counts in = events stored + rejected (the good line held 3 events, one of them bad)
    assert 3 + len(BAD_LINES) == stored + len(rejected)
    assert rejected[1][2].encode() == BAD_LINES[0][0]


def test_a_rejected_event_inside_an_ingest_line_keeps_the_whole_line(ch: Client) -> None:
    """The line's value is re-serialised for decoding; the rejection keeps the line as read."""
    good = b'{"event_id": "k1", "event_type": "page_view", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d", "properties": {"page": "/\xc3\xa9t\xc3\xa9"}}'
    line = b'{ "topic" : "clickstream",  "value": [' + good + b', {"event_id": "k2", "n": 1.50}] }'
    single = b'{"value": {"event_id": "k3", "occurred_at": "2026-11-02T10:00:00.000+02:00"}, "topic": "clickstream"}'
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None), clock=lambda: NOW)
    runner.feed_lines(io.BytesIO(line + b"\r\n" + single + b"\n"), source="file:raw.jsonl")
    runner.finish()
    assert ch.query("SELECT event_id FROM events").result_rows == [("k1",)]
    rejected = ch.query(
        "SELECT position, batch_index, event_id, reason, raw FROM rejections ORDER BY position"
    ).result_rows
    assert [r[:4] for r in rejected] == [
        (1, 1, "k2", "invalid_value"),
        (2, None, "k3", "missing_field"),
    ]
    assert [r[4].encode() for r in rejected] == [line, single]
