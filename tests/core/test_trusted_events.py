"""Events built without validation (`schemas.event.trusted_event`, used by the decoder and for
waiting events) equal the validated ones, and the fast millisecond arithmetic is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Channel, Event, decode
from schemas.event import datetime_to_ms

pytestmark = pytest.mark.unit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
def test_datetime_to_ms_is_floor_of_milliseconds(at: datetime) -> None:
    at = at.replace(tzinfo=UTC)
    assert datetime_to_ms(at) == (at - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("topic", "doc"),
    [
        (
            "clickstream",
            {
                "event_id": "e1",
                "event_type": "page_view",
                "occurred_at": "2026-11-02T10:15:30.123456+02:00",
                "device_id": "w1",
                "properties": {"page": "/a", "device_type": "mobile"},
            },
        ),
        (
            "store-events",
            {
                "event_id": "e2",
                "event_type": "purchase",
                "occurred_at": "2026-11-02T10:15:30Z",
                "customer_id": "c1",
                "properties": {"transaction_id": "t", "value": 9.5, "currency": "EUR"},
                "schema_version": 1,
            },
        ),
    ],
)
def test_decoded_event_equals_the_validated_one(topic: str, doc: dict[str, object]) -> None:
    (decoded,) = decode(orjson.dumps(doc), topic)
    assert isinstance(decoded, Event)
    validated = Event.model_validate(
        {**doc, "channel": Channel.STORE if topic == "store-events" else Channel.WEB}
    )
    assert decoded == validated
    assert decoded.model_dump() == validated.model_dump()
    assert decoded.model_fields_set == set(Event.model_fields)  # as model_construct sets it


def test_copying_an_event_leaves_the_others_fields_set_alone() -> None:
    """Trusted events share one `model_fields_set` (all fields): a copy gets its own."""
    doc = {"event_id": "e1", "event_type": "view_cart", "occurred_at": "2026-11-02T10:15:30Z"}
    (a,) = decode(orjson.dumps(doc | {"device_id": "w1"}), "clickstream")
    (b,) = decode(orjson.dumps(doc | {"device_id": "w2"}), "clickstream")
    assert isinstance(a, Event) and isinstance(b, Event)
    copy = a.model_copy(update={"event_id": "e2"})
    assert copy.model_fields_set == b.model_fields_set == set(Event.model_fields)
    assert copy.model_fields_set is not a.model_fields_set
