"""A payment outage, told as checkout visits, through the embedded runner into chDB: the spike
is in `friction_spikes` with its start and end, `parcours spikes` lists it and `parcours
friction` marks the hours inside it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from streams.embedded.runner import EmbeddedRunner
from streams.queries.kpi import friction_query
from streams.queries.query import run_query
from streams.queries.spikes import spikes_query
from streams.sinks.clickhouse import ClickHouseSink

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 2, tzinfo=UTC)
OUTAGE = (START + timedelta(days=2, hours=18), START + timedelta(days=2, hours=20))


def checkout_visits(days: int = 4, seed: int = 5) -> list[tuple[str, dict[str, object]]]:
    """A web checkout every 2 minutes; 1 in 15 fails its payment (two payment errors), 1 in 2
    during the outage."""
    rng = random.Random(seed)
    messages = []
    for visit in range(days * 720):
        at = START + timedelta(minutes=2 * visit, seconds=rng.randrange(60))
        failing = rng.random() < (0.5 if OUTAGE[0] <= at < OUTAGE[1] else 1 / 15)
        steps = ["page_view", "begin_checkout", "add_payment_info"]
        steps += ["payment_error", "payment_error"] if failing else ["purchase"]
        for i, event_type in enumerate(steps):
            props: dict[str, object] = {"page": "/cart"} if event_type == "page_view" else {}
            if event_type == "purchase":
                props = {"transaction_id": f"T{visit}", "value": 20.0, "currency": "EUR"}
            event = {
                "event_id": f"v{visit}-{i}",
                "event_type": event_type,
                "occurred_at": (at + timedelta(seconds=20 * i)).isoformat(),
                "device_id": f"d{visit}",
                "properties": props,
            }
            messages.append(("clickstream", event))
    messages.sort(key=lambda m: str(m[1]["occurred_at"]))
    return messages


def test_the_outage_is_a_spike_in_the_table_the_spikes_command_and_friction(ch: Client) -> None:
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None), clock=lambda: 1.8e9)
    for position, (topic, event) in enumerate(checkout_visits(), 1):
        runner.feed_message(topic, orjson.dumps(event), "test", position)
    runner.finish()
    rows = ch.query(
        "SELECT type, channel, started_at, ended_at, ratio, status FROM friction_spikes FINAL"
    ).result_rows
    # a failed payment leaves its checkout attempt abandoned: both rates spike, nothing else
    assert sorted(r[0] for r in rows) == ["checkout_abandoned", "payment_failure"], rows
    for _, channel, started, ended, ratio, status in rows:
        assert (channel, status) == ("web", "closed")
        assert abs(started.replace(tzinfo=UTC) - OUTAGE[0]) <= timedelta(minutes=15)
        assert abs(ended.replace(tzinfo=UTC) - OUTAGE[1]) <= timedelta(minutes=15)
        assert ratio > 4

    listed = run_query(
        ch, spikes_query(START, START + timedelta(days=4), "payment_failure", "web")
    ).records()
    assert [(r["type"], r["channel"]) for r in listed] == [("payment_failure", "web")]
    assert run_query(ch, spikes_query(START, START + timedelta(days=1))).rows == []
    assert run_query(ch, spikes_query(START, START + timedelta(days=4), "bounce")).rows == []

    hours = run_query(
        ch, friction_query(START, START + timedelta(days=4), "hour", "payment_failure")
    ).records()
    marked = sorted(r["hour"].replace(tzinfo=UTC) for r in hours if r["in_spike"])
    assert marked[0] <= OUTAGE[0] + timedelta(minutes=15) and marked[-1] >= OUTAGE[1] - timedelta(
        hours=1
    )
    assert all(OUTAGE[0] - timedelta(hours=1) <= h < OUTAGE[1] + timedelta(hours=1) for h in marked)
    assert any(not r["in_spike"] for r in hours)


TABLET_BUG = (START + timedelta(days=2, hours=14), START + timedelta(days=2, hours=16))


def app_visits(days: int = 4, seed: int = 9) -> list[tuple[str, dict[str, object]]]:
    """An app visit a minute, phones and tablets in turn; 1 in 12 hits an exception, 2 in 3 on
    a tablet during the tablet-only checkout bug (the phones' rate does not move)."""
    rng = random.Random(seed)
    messages = []
    for visit in range(days * 1440):
        at = START + timedelta(minutes=visit, seconds=rng.randrange(60))
        device_type = "tablet" if visit % 2 else "mobile"
        bug = device_type == "tablet" and TABLET_BUG[0] <= at < TABLET_BUG[1]
        steps = ["screen_view", "begin_checkout"]
        steps += ["exception"] if rng.random() < (2 / 3 if bug else 1 / 12) else []
        for i, event_type in enumerate(steps):
            props: dict[str, object] = {"device_type": device_type}
            if event_type == "screen_view":
                props["screen"] = "cart"
            elif event_type == "exception":
                props["description"] = "CheckoutView: address form crashed"
            event = {
                "event_id": f"a{visit}-{i}",
                "event_type": event_type,
                "occurred_at": (at + timedelta(seconds=20 * i)).isoformat(),
                "device_id": f"app{visit}",
                "properties": props,
            }
            messages.append(("app-events", event))
    messages.sort(key=lambda m: str(m[1]["occurred_at"]))
    return messages


def test_a_tablet_only_checkout_bug_is_a_spike_of_the_tablets(ch: Client) -> None:
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None), clock=lambda: 1.8e9)
    for position, (topic, event) in enumerate(app_visits(), 1):
        runner.feed_message(topic, orjson.dumps(event), "test", position)
    runner.finish()
    rows = ch.query(
        "SELECT type, channel, device_type, started_at, ended_at, ratio FROM friction_spikes "
        "FINAL WHERE NOT is_deleted ORDER BY device_type"
    ).result_rows
    # The tablets' rate is 8 times normal; the app's as a whole 4.5 times (a spike too); the
    # phones' did not move: no spike of theirs.
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("error_hit", "app", ""),
        ("error_hit", "app", "tablet"),
    ], rows
    for _, _, device_type, started, ended, ratio in rows:
        assert abs(started.replace(tzinfo=UTC) - TABLET_BUG[0]) <= timedelta(minutes=15)
        assert abs(ended.replace(tzinfo=UTC) - TABLET_BUG[1]) <= timedelta(minutes=15)
        assert ratio > (5 if device_type else 3)
    listed = run_query(ch, spikes_query(START, START + timedelta(days=4), "error_hit")).records()
    assert [r["device_type"] for r in listed] == ["", "tablet"]
