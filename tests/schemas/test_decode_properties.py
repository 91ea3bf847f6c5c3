"""Decoding is total: any bytes give results with reasons, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import TOPIC_CHANNELS, Event, Rejection, RejectReason, decode

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, tzinfo=UTC)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([*TOPIC_CHANNELS, "other"]))
def test_any_bytes_decode_or_are_rejected_with_a_reason(raw: bytes, topic: str) -> None:
    results = decode(raw, topic, now=NOW)
    assert results
    for result in results:
        assert isinstance(result, Event | Rejection)
        if isinstance(result, Rejection):
            assert isinstance(result.reason, RejectReason) and result.message and result.raw == raw


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "event_type",
                "occurred_at",
                "device_id",
                "customer_id",
                "properties",
                "schema_version",
                "x",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_any_json_object_decodes_or_is_rejected(doc: dict[str, object]) -> None:
    raw = orjson.dumps(doc)
    for topic in TOPIC_CHANNELS:
        for result in decode(raw, topic, now=NOW):
            assert isinstance(result, Event | Rejection)


@settings(max_examples=200, deadline=None)
@given(
    event_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=128),
    seconds=st.integers(0, 20 * 365 * 86400),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
    page=st.text(min_size=1, max_size=30),
    topic=st.sampled_from(list(TOPIC_CHANNELS)),
)
def test_valid_events_round_trip(
    event_id: str, seconds: int, offset_minutes: int, page: str, topic: str
) -> None:
    from datetime import timezone

    at = datetime(2005, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, milliseconds=seconds % 1000)
    local = at.astimezone(timezone(timedelta(minutes=offset_minutes)))
    doc = {
        "event_id": event_id,
        "event_type": "page_view",
        "occurred_at": local.isoformat(),
        "device_id": "d",
        "properties": {"page": page},
    }
    (result,) = decode(orjson.dumps(doc), topic, now=NOW)
    assert isinstance(result, Event), result
    assert (
        result.occurred_at == at
        and result.event_id == event_id
        and result.properties == {"page": page}
    )
