"""The contract, rule by rule: every rejection reason, every canonical type, the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas import Channel, Event, Rejection, RejectReason, decode

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ev(event_type: Any = "page_view", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": event_type,
        "occurred_at": "2026-11-02T10:15:30.123Z",
        "device_id": "w-1",
        "properties": {"page": "/home"} if event_type == "page_view" else {},
    }
    if event_type is _DROP:
        del doc["event_type"]
    for key, value in overrides.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def one(doc: Any, topic: str = "clickstream", raw: bytes | None = None) -> Event | Rejection:
    results = decode(raw if raw is not None else orjson.dumps(doc), topic, now=NOW)
    assert len(results) == 1
    return results[0]


def rejected(doc: Any, topic: str = "clickstream", raw: bytes | None = None) -> Rejection:
    result = one(doc, topic, raw)
    assert isinstance(result, Rejection), result
    return result


def test_a_valid_event_is_normalised_to_utc_milliseconds() -> None:
    result = one(ev(occurred_at="2026-11-02T11:15:30.123456+01:00"))
    assert isinstance(result, Event)
    assert result.occurred_at == datetime(2026, 11, 2, 10, 15, 30, 123000, tzinfo=UTC)
    assert result.ts_ms == 1793614530123
    assert result.channel is Channel.WEB


@pytest.mark.parametrize(
    ("topic", "channel"),
    [("clickstream", Channel.WEB), ("app-events", Channel.APP), ("store-events", Channel.STORE)],
)
def test_the_channel_comes_from_the_topic(topic: str, channel: Channel) -> None:
    result = one(ev(), topic)
    assert isinstance(result, Event) and result.channel is channel


# Every reason code, with the field its message must name.
REJECTIONS: list[tuple[str, Any, str, RejectReason, str]] = [
    ("unknown topic", ev(), "pageviews", RejectReason.UNKNOWN_TOPIC, "pageviews"),
    ("invalid json", b'{"event_id": ', "clickstream", RejectReason.INVALID_JSON, "JSON"),
    ("scalar", b"42", "clickstream", RejectReason.NOT_AN_OBJECT, "object"),
    ("missing id", ev(event_id=_DROP), "clickstream", RejectReason.MISSING_FIELD, "event_id"),
    ("missing type", ev(event_type=_DROP), "clickstream", RejectReason.MISSING_FIELD, "event_type"),
    (
        "missing time",
        ev(occurred_at=_DROP),
        "clickstream",
        RejectReason.MISSING_FIELD,
        "occurred_at",
    ),
    (
        "web needs device",
        ev(device_id=_DROP),
        "clickstream",
        RejectReason.MISSING_FIELD,
        "device_id",
    ),
    (
        "app needs device",
        ev(device_id=_DROP),
        "app-events",
        RejectReason.MISSING_FIELD,
        "device_id",
    ),
    ("id not a string", ev(event_id=7), "clickstream", RejectReason.WRONG_TYPE, "event_id"),
    ("empty id", ev(event_id=""), "clickstream", RejectReason.INVALID_VALUE, "event_id"),
    ("id too long", ev(event_id="x" * 129), "clickstream", RejectReason.INVALID_VALUE, "event_id"),
    (
        "type not snake",
        ev(event_type="PageView"),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "event_type",
    ),
    (
        "type too long",
        ev(event_type="a" * 65),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "event_type",
    ),
    (
        "device too long",
        ev(device_id="d" * 129),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "device_id",
    ),
    ("customer not str", ev(customer_id=5), "clickstream", RejectReason.WRONG_TYPE, "customer_id"),
    (
        "time not str",
        ev(occurred_at=1700000000),
        "clickstream",
        RejectReason.WRONG_TYPE,
        "occurred_at",
    ),
    (
        "time no offset",
        ev(occurred_at="2026-11-02T10:15:30"),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "occurred_at",
    ),
    (
        "time garbage",
        ev(occurred_at="yesterday"),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "occurred_at",
    ),
    (
        "time bad date",
        ev(occurred_at="2026-02-30T10:00:00Z"),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "occurred_at",
    ),
    (
        "before 2000",
        ev(occurred_at="1999-12-31T23:59:59.999Z"),
        "clickstream",
        RejectReason.TIMESTAMP_OUT_OF_RANGE,
        "occurred_at",
    ),
    (
        "far future",
        ev(occurred_at="2026-11-24T12:00:00.001Z"),
        "clickstream",
        RejectReason.TIMESTAMP_OUT_OF_RANGE,
        "occurred_at",
    ),
    ("props not object", ev(properties=[1]), "clickstream", RejectReason.WRONG_TYPE, "properties"),
    (
        "props too large",
        ev(properties={"page": "/", "blob": "x" * 33_000}),
        "clickstream",
        RejectReason.TOO_LARGE,
        "properties",
    ),
    ("message too large", None, "clickstream", RejectReason.TOO_LARGE, "limit"),
    ("unknown field", ev(colour="red"), "clickstream", RejectReason.INVALID_VALUE, "colour"),
    (
        "bad version",
        ev(schema_version=2),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "schema_version",
    ),
    (
        "version not int",
        ev(schema_version="1"),
        "clickstream",
        RejectReason.WRONG_TYPE,
        "schema_version",
    ),
    ("login needs customer", ev("login"), "clickstream", RejectReason.MISSING_FIELD, "customer_id"),
    (
        "sign_up needs device",
        ev("sign_up", device_id=_DROP, customer_id="c"),
        "store-events",
        RejectReason.MISSING_FIELD,
        "device_id",
    ),
    (
        "bad device type",
        ev(properties={"page": "/", "device_type": "fridge"}),
        "clickstream",
        RejectReason.INVALID_VALUE,
        "device_type",
    ),
]


@pytest.mark.parametrize(
    ("case", "doc", "topic", "reason", "names"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejection(case: str, doc: Any, topic: str, reason: RejectReason, names: str) -> None:
    raw = doc if isinstance(doc, bytes) else None
    if case == "message too large":
        raw = orjson.dumps(
            [ev(event_id=f"e{i}", properties={"page": "x" * 1000}) for i in range(1100)]
        )
    rejection = rejected(doc, topic, raw)
    assert rejection.reason is reason
    assert names in rejection.message
    assert rejection.raw == (raw if raw is not None else orjson.dumps(doc))
    assert rejection.topic == topic


def test_timestamps_at_the_bounds_are_accepted() -> None:
    assert isinstance(one(ev(occurred_at="2000-01-01T00:00:00Z")), Event)
    assert isinstance(one(ev(occurred_at="2026-11-24T12:00:00Z")), Event)
    assert isinstance(one(ev(occurred_at="2026-11-24T13:00:00+01:00")), Event)


def test_store_events_may_omit_the_device() -> None:
    result = one(
        ev("store_visit", device_id=_DROP, customer_id="c-1", properties={"store_id": "s"}),
        "store-events",
    )
    assert isinstance(result, Event) and result.device_id is None and result.customer_id == "c-1"


# Canonical types: one valid example and one broken example each (reason, field).
CANONICAL_CASES: list[tuple[str, dict[str, Any], dict[str, Any], RejectReason, str]] = [
    (
        "page_view",
        {"page": "/", "utm_source": "news"},
        {"page": 3},
        RejectReason.WRONG_TYPE,
        "page",
    ),
    ("screen_view", {"screen": "home"}, {}, RejectReason.MISSING_FIELD, "screen"),
    (
        "view_item_list",
        {"item_list_id": "shoes"},
        {"item_list_id": 1},
        RejectReason.WRONG_TYPE,
        "item_list_id",
    ),
    ("view_item", {"item_id": "sku"}, {}, RejectReason.MISSING_FIELD, "item_id"),
    (
        "search",
        {"search_term": "red", "results_count": 0},
        {"search_term": "red", "results_count": -1},
        RejectReason.INVALID_VALUE,
        "results_count",
    ),
    (
        "search",
        {"search_term": "red", "results_count": 3},
        {"search_term": "red", "results_count": True},
        RejectReason.WRONG_TYPE,
        "results_count",
    ),
    (
        "add_to_wishlist",
        {"item_id": "sku"},
        {"item_id": ["sku"]},
        RejectReason.WRONG_TYPE,
        "item_id",
    ),
    (
        "add_to_cart",
        {"item_id": "sku", "quantity": 2, "price": 9.5},
        {"item_id": "sku", "quantity": 0},
        RejectReason.INVALID_VALUE,
        "quantity",
    ),
    (
        "remove_from_cart",
        {"item_id": "sku"},
        {"quantity": 1},
        RejectReason.MISSING_FIELD,
        "item_id",
    ),
    ("view_cart", {}, {"device_type": 1}, RejectReason.WRONG_TYPE, "device_type"),
    ("begin_checkout", {"value": 10}, {"value": "10"}, RejectReason.WRONG_TYPE, "value"),
    (
        "purchase",
        {"transaction_id": "t", "value": 10.5, "currency": "EUR"},
        {"transaction_id": "t", "value": 10.5, "currency": "euro"},
        RejectReason.INVALID_VALUE,
        "currency",
    ),
    (
        "purchase",
        {"transaction_id": "t", "value": 0, "currency": "EUR"},
        {"transaction_id": "t", "currency": "EUR"},
        RejectReason.MISSING_FIELD,
        "value",
    ),
    ("refund", {"transaction_id": "t"}, {"value": -1}, RejectReason.INVALID_VALUE, "value"),
    ("click", {"element": "pay"}, {"element": ""}, RejectReason.INVALID_VALUE, "element"),
    (
        "exception",
        {"description": "NPE", "fatal": True},
        {"description": "NPE", "fatal": "yes"},
        RejectReason.WRONG_TYPE,
        "fatal",
    ),
    ("payment_error", {"reason": "declined"}, {"reason": 402}, RejectReason.WRONG_TYPE, "reason"),
    (
        "support_contact",
        {"medium": "chat", "topic": "refund"},
        {"medium": "pigeon"},
        RejectReason.INVALID_VALUE,
        "medium",
    ),
    ("store_visit", {"store_id": "paris"}, {}, RejectReason.MISSING_FIELD, "store_id"),
    (
        "survey_response",
        {"kind": "nps", "score": 9},
        {"kind": "nps"},
        RejectReason.MISSING_FIELD,
        "score",
    ),
]


@pytest.mark.parametrize(
    ("event_type", "good", "bad", "reason", "field"),
    CANONICAL_CASES,
    ids=[f"{c[0]}-{c[4]}" for c in CANONICAL_CASES],
)
def test_canonical_properties(
    event_type: str, good: dict[str, Any], bad: dict[str, Any], reason: RejectReason, field: str
) -> None:
    ids = {"customer_id": "c-1"}
    assert isinstance(one(ev(event_type, properties=good, **ids)), Event)
    rejection = rejected(ev(event_type, properties=bad, **ids))
    assert rejection.reason is reason
    assert rejection.field == f"properties.{field}"
    assert f"properties.{field}" in rejection.message


def test_custom_events_keep_free_form_properties() -> None:
    result = one(ev("apply_coupon", properties={"code": "XMAS", "nested": {"a": [1, 2]}}))
    assert isinstance(result, Event) and result.properties["nested"] == {"a": [1, 2]}


def test_extra_properties_on_canonical_types_are_kept() -> None:
    result = one(ev(properties={"page": "/", "ab_test": "b"}))
    assert isinstance(result, Event) and result.properties["ab_test"] == "b"


def test_a_batch_validates_each_element_on_its_own() -> None:
    raw = orjson.dumps(
        [ev(event_id="a"), ev(event_id="b", occurred_at="nope"), 7, ev(event_id="c")]
    )
    results = decode(raw, "clickstream", now=NOW)
    assert [type(r).__name__ for r in results] == ["Event", "Rejection", "Rejection", "Event"]
    bad_time, scalar = results[1], results[2]
    assert isinstance(bad_time, Rejection) and isinstance(scalar, Rejection)
    assert (bad_time.index, bad_time.event_id, bad_time.reason) == (
        1,
        "b",
        RejectReason.INVALID_VALUE,
    )
    assert (scalar.index, scalar.reason) == (2, RejectReason.NOT_AN_OBJECT)
    assert bad_time.raw == raw and scalar.raw == raw


def test_an_empty_batch_is_rejected_not_ignored() -> None:
    rejection = rejected(None, raw=b"[]")
    assert rejection.reason is RejectReason.INVALID_VALUE and "empty batch" in rejection.message


def test_raw_bytes_are_kept_byte_for_byte() -> None:
    raw = b'  {"event_id": "\\u00e9", "weird"  :  true }\n'
    assert rejected(None, raw=raw).raw == raw


def test_timestamps_before_now_plus_24h_use_the_given_clock() -> None:
    late = ev(occurred_at=(NOW + timedelta(hours=23)).isoformat())
    assert isinstance(one(late), Event)
    assert (
        decode(orjson.dumps(late), "clickstream", now=NOW - timedelta(hours=2))[0].__class__
        is Rejection
    )


def _nested(depth: int) -> dict[str, Any]:
    """Properties whose containers nest `depth` levels in all (properties itself is level 1)."""
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return {"page": "/", "x": value} if depth > 1 else {"page": "/"}


def test_nesting_up_to_the_limit_is_accepted_and_deeper_is_too_deep() -> None:
    from schemas.decode import MAX_DEPTH

    base = {
        "event_id": "n",
        "event_type": "page_view",
        "occurred_at": "2026-11-02T10:00:00Z",
        "device_id": "d",
    }
    # the event object is level 1, properties level 2: MAX_DEPTH - 1 levels from properties on
    ok = one({**base, "properties": _nested(MAX_DEPTH - 1)})
    assert isinstance(ok, Event) and orjson.dumps(ok.properties)
    deep = rejected({**base, "properties": _nested(MAX_DEPTH)})
    assert deep.reason == RejectReason.TOO_DEEP and deep.field == "properties"
    assert MAX_DEPTH == 64


def test_a_deep_element_is_rejected_alone_in_a_batch() -> None:
    """Before issue 12, a properties object too deep for orjson to write again made the size
    check raise, and the whole message (the valid events beside it too) was rejected."""
    good = {
        "event_id": "g",
        "event_type": "page_view",
        "occurred_at": "2026-11-02T10:00:00Z",
        "device_id": "d",
        "properties": {"page": "/"},
    }
    nested = b'{"a":' * 300 + b"1" + b"}" * 300
    deep = orjson.dumps({**good, "event_id": "deep"})[:-2] + b',"x":' + nested + b"}}"
    padding = b" " * 33_000  # over the properties size pre-check
    results = decode(
        b"[" + orjson.dumps(good) + b"," + deep + b"]" + padding, "clickstream", now=NOW
    )
    assert isinstance(results[0], Event)
    assert isinstance(results[1], Rejection) and results[1].reason == RejectReason.TOO_DEEP


@pytest.mark.parametrize(
    ("event_type", "properties", "field"),
    [
        ("purchase", {"transaction_id": "t", "value": 1.7e308, "currency": "EUR"}, "value"),
        ("begin_checkout", {"value": 1e13}, "value"),
        ("add_to_cart", {"item_id": "i", "price": 1e300}, "price"),
        ("add_to_cart", {"item_id": "i", "quantity": 10**12}, "quantity"),
        ("survey_response", {"kind": "nps", "score": -1e200}, "score"),
        ("survey_response", {"kind": "nps", "score": 11}, "score"),
        ("survey_response", {"kind": "csat", "score": 0}, "score"),
        ("survey_response", {"kind": "csat", "score": 5.5}, "score"),
        ("survey_response", {"kind": "ces", "score": 8}, "score"),
    ],
)
def test_absurd_numbers_are_rejected(
    event_type: str, properties: dict[str, Any], field: str
) -> None:
    doc = {
        "event_id": "a",
        "event_type": event_type,
        "occurred_at": "2026-11-02T10:00:00Z",
        "device_id": "d",
        "properties": properties,
    }
    rejection = rejected(doc)
    assert rejection.reason == RejectReason.INVALID_VALUE
    assert rejection.field == f"properties.{field}"


@pytest.mark.parametrize(
    ("kind", "score"), [("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5), ("ces", 7)]
)
def test_survey_scores_at_the_ends_of_their_scale_are_accepted(kind: str, score: int) -> None:
    doc = {
        "event_id": "s",
        "event_type": "survey_response",
        "occurred_at": "2026-11-02T10:00:00Z",
        "device_id": "d",
        "properties": {"kind": kind, "score": score, "touchpoint": "checkout"},
    }
    (result,) = decode(orjson.dumps(doc), "clickstream", now=NOW)
    assert isinstance(result, Event) and result.properties["score"] == score
