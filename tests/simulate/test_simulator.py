"""The simulator: reproducible, streaming, every story present, incidents and noise as asked."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.simulate import (
    SimulationConfig,
    SimulationError,
    generate,
    parse_incident,
    to_ingest_line,
    write_ingest_file,
)
from streams.simulate.config import DEFAULT_START

pytestmark = pytest.mark.unit


def output(config: SimulationConfig) -> bytes:
    buf = io.BytesIO()
    write_ingest_file(config, buf)
    return buf.getvalue()


def events(config: SimulationConfig) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for msg in generate(config):
        if msg.malformed:
            continue
        out.extend(msg.payload if isinstance(msg.payload, list) else [msg.payload])  # type: ignore[list-item]
    return out


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    config = SimulationConfig(customers=60, days=1, seed=5)
    assert output(config) == output(config)
    assert output(config) != output(SimulationConfig(customers=60, days=1, seed=6))


def test_lines_are_in_the_ingest_format() -> None:
    for line in output(SimulationConfig(customers=40, days=1, malformed_rate=0)).splitlines():
        doc = orjson.loads(line)
        assert set(doc) == {"topic", "value"} and doc["topic"] in (
            "clickstream",
            "app-events",
            "store-events",
        )


def test_generation_streams() -> None:
    gen = generate(SimulationConfig(customers=200_000, days=7))
    first = list(itertools.islice(gen, 10))  # would take minutes if the week were built first
    assert len(first) == 10


def test_noise_rates_are_roughly_as_configured() -> None:
    config = SimulationConfig(customers=400, days=2, malformed_rate=0.02, duplicate_rate=0.03)
    messages = list(generate(config))
    malformed = sum(m.malformed for m in messages) / len(messages)
    duplicates = sum(m.duplicate for m in messages) / len(messages)
    assert 0.012 < malformed < 0.03
    assert 0.018 < duplicates < 0.042
    assert any(isinstance(m.payload, list) and not m.malformed for m in messages)  # batches
    assert any(isinstance(m.payload, bytes) for m in messages)  # broken JSON lines
    broken = next(m for m in messages if isinstance(m.payload, bytes))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(to_ingest_line(broken))


def test_every_story_is_present() -> None:
    evs = events(SimulationConfig(customers=500, days=3))
    types = Counter(e["event_type"] for e in evs)
    for event_type in (
        "page_view",
        "screen_view",
        "view_item",
        "add_to_cart",
        "begin_checkout",
        "add_shipping_info",
        "add_payment_info",
        "purchase",
        "payment_error",
        "search",
        "click",
        "exception",
        "login",
        "support_contact",
        "store_visit",
        "survey_response",
        "apply_coupon",
    ):
        assert types[event_type] > 0, event_type
    zero_searches = [
        e for e in evs if e["event_type"] == "search" and e["properties"]["results_count"] == 0
    ]  # type: ignore[index]
    assert len(zero_searches) >= 3
    assert any(str(e.get("device_id", "")).startswith("t-") for e in evs), "shared tablets"
    assert any(
        e["event_type"] == "purchase" and "device_id" not in e and "customer_id" in e for e in evs
    ), "store receipt with card"
    till_receipts = [e for e in evs if str(e.get("device_id", "")).startswith("till-")]
    assert any("customer_id" not in e for e in till_receipts), "guest receipt at a till"
    assert any("customer_id" in e for e in till_receipts), "loyalty receipt at a till"
    anonymous_then_login = {
        e["device_id"] for e in evs if "customer_id" not in e and "device_id" in e
    } & {e["device_id"] for e in evs if e["event_type"] == "login"}
    assert anonymous_then_login


def test_payment_outage_raises_payment_errors_inside_its_window() -> None:
    start = DEFAULT_START
    outage = parse_incident("payment_outage:+1d:+1d12h", start)
    evs = events(SimulationConfig(customers=800, days=2, incidents=(outage,)))

    def rate(inside: bool) -> float:
        def within(e: dict[str, object]) -> bool:
            at = datetime.fromisoformat(str(e["occurred_at"]))
            return (outage.start <= at < outage.end) == inside

        errors = sum(1 for e in evs if e["event_type"] == "payment_error" and within(e))
        attempts = sum(1 for e in evs if e["event_type"] == "add_payment_info" and within(e))
        return errors / max(attempts, 1)

    assert rate(True) > 5 * rate(False)


@pytest.mark.parametrize(
    ("text", "kind", "start", "end", "channel"),
    [
        (
            "payment_outage:+2d:+2d6h",
            "payment_outage",
            timedelta(days=2),
            timedelta(days=2, hours=6),
            None,
        ),
        (
            "checkout_bug:+90m:+3h:app",
            "checkout_bug",
            timedelta(minutes=90),
            timedelta(hours=3),
            "app",
        ),
        (
            "payment_outage:2026-11-03T10:00:00+00:00:2026-11-03T12:00:00+00:00",
            "payment_outage",
            timedelta(days=1, hours=10),
            timedelta(days=1, hours=12),
            None,
        ),
    ],
)
def test_incident_specs(
    text: str, kind: str, start: timedelta, end: timedelta, channel: str | None
) -> None:
    incident = parse_incident(text, DEFAULT_START)
    assert (incident.kind, incident.start, incident.end, incident.channel) == (
        kind,
        DEFAULT_START + start,
        DEFAULT_START + end,
        channel,
    )


@pytest.mark.parametrize(
    "text",
    ["flood:+1d:+2d", "payment_outage:+1d", "payment_outage:+2d:+1d", "checkout_bug:soon:later"],
)
def test_bad_incident_specs_are_explained(text: str) -> None:
    with pytest.raises(SimulationError):
        parse_incident(text, datetime(2026, 11, 2, tzinfo=UTC))


def test_every_friction_story_fires_when_ingested() -> None:
    """The simulated traffic holds every friction story: run through decode and the journey
    core, each of the eleven signal types fires, and some web checkouts end with a store
    purchase (abandon online, buy in store)."""
    from schemas import Event, decode
    from streams.core.pipeline import JourneyPipeline
    from streams.core.records import FrictionSignal

    outage = parse_incident("payment_outage:+1d10h:+1d16h", DEFAULT_START)
    pipeline = JourneyPipeline()
    records = []
    now = datetime(2027, 1, 1, tzinfo=UTC)
    for msg in generate(SimulationConfig(customers=500, days=3, seed=7, incidents=(outage,))):
        value = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
        for result in decode(value, msg.topic, now=now):
            if isinstance(result, Event):
                records.extend(pipeline.process(result))
    records.extend(pipeline.finish())
    signals = [r for r in records if isinstance(r, FrictionSignal)]
    fired = Counter(s.type for s in signals)
    for signal_type in (
        "bounce",
        "quick_back",
        "cart_abandoned",
        "checkout_abandoned",
        "channel_switch",
        "checkout_loop",
        "payment_failure",
        "search_frustration",
        "rage_click",
        "error_hit",
        "repeat_contact",
    ):
        assert fired[signal_type] > 0, (signal_type, fired)
    web_to_store = [
        s
        for s in signals
        if s.type == "channel_switch"
        and s.details["checkout_channel"] == "web"
        and s.details["purchase_channel"] == "store"
    ]
    assert web_to_store, "journeys that abandon a web checkout and buy in store"
