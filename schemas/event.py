"""The validated event: what every adapter hands to the journey core.

An `Event` is produced only by `schemas.decode`; by the time one exists, every rule of the
contract holds (ids present and bounded, timestamp in range and normalised to UTC milliseconds,
typed properties valid for canonical event types). The core therefore never re-validates.

`ts_ms` (epoch milliseconds) is what the core computes with: integers compare and hash fast and
serialise without ambiguity, while `occurred_at` stays available for humans and for storage.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: RFC 3339 `date-time` (section 5.6): upper- or lowercase `T` and `Z`, a leap second `60`, an
#: offset within +-23:59. The decoder matches it and the published JSON Schema carries it as
#: `pattern`, so the two agree on what a timestamp is (tests/schemas/test_rfc3339.py). It ends
#: with `(?![\s\S])`, not `$`: in Python `$` also matches before a final newline.
RFC3339_PATTERN = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)"
    r"(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])(?![\s\S])"
)


#: An event type: snake_case (matched whole).
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
RFC3339 = re.compile(RFC3339_PATTERN)
#: `occurred_at` must be at or after EARLIEST and at most MAX_FUTURE after the decoder's now.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(hours=24)


class Channel(StrEnum):
    """Where an event happened. Derived from the Kafka topic, never trusted from the payload."""

    WEB = "web"
    APP = "app"
    STORE = "store"


#: Topic name -> channel. The channel of an event is a property of the stream it came from.
TOPIC_CHANNELS: dict[str, Channel] = {
    "clickstream": Channel.WEB,
    "app-events": Channel.APP,
    "store-events": Channel.STORE,
}


class Event(BaseModel):
    """One validated event of contract version 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=128)
    event_type: str = Field(min_length=1, max_length=64)
    occurred_at: datetime
    channel: Channel
    device_id: str | None = Field(default=None, max_length=128)
    customer_id: str | None = Field(default=None, max_length=128)
    properties: dict[str, Any] = Field(default_factory=dict)
    schema_version: int = 1
    #: Epoch milliseconds of `occurred_at` (UTC); always derived, never given.
    ts_ms: int = 0

    @model_validator(mode="after")
    def _normalise_time(self) -> Event:
        # Normalise once here so that every Event, however built, agrees with its ts_ms.
        # Naive datetimes are refused by the decoder; here they are taken as UTC.
        at = self.occurred_at
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        ts_ms = datetime_to_ms(at)
        object.__setattr__(self, "occurred_at", ms_to_datetime(ts_ms))
        object.__setattr__(self, "ts_ms", ts_ms)
        return self

    @property
    def device_type(self) -> str | None:
        """`properties.device_type` when given (desktop | mobile | tablet | kiosk | pos)."""
        value = self.properties.get("device_type")
        return value if isinstance(value, str) else None


_FIELDS = frozenset(Event.model_fields)
#: The `model_fields_set` of every trusted event: all of them. One set shared by all: pydantic
#: only adds to a model's set when a field is assigned (refused: events are frozen) or in
#: `model_copy(update=...)`, which adds to the copy's own set; and the names it would add are
#: in it already.
_FIELDS_SET = set(_FIELDS)
_new = object.__new__
# The slots every pydantic model has, set through their descriptors: what
# `object.__setattr__` ends up calling, without its lookup by name (it runs for every event).
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def trusted_event(
    event_id: str,
    event_type: str,
    ts_ms: int,
    channel: Channel,
    device_id: str | None,
    customer_id: str | None,
    properties: dict[str, Any],
    schema_version: int,
    occurred_at: datetime | None = None,
) -> Event:
    """An `Event` from fields that are already valid (the decoder has just checked them, or
    they were checked when the event arrived): no validation at all.

    What `Event.model_construct` does without its per-field bookkeeping (about 4x faster; it
    runs once or twice per event). tests/core/test_trusted_events.py and
    test_waiting_events.py check the result equals the validated event. `occurred_at`, when
    given, must be `ms_to_datetime(ts_ms)` already (the decoder has it at hand).
    """
    event = _new(Event)
    _set_dict(
        event,
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": ms_to_datetime(ts_ms) if occurred_at is None else occurred_at,
            "channel": channel,
            "device_id": device_id,
            "customer_id": customer_id,
            "properties": properties,
            "schema_version": schema_version,
            "ts_ms": ts_ms,
        },
    )
    _set_fields(event, _FIELDS_SET)
    _set_extra(event, None)
    _set_private(event, None)
    return event


def ms_to_datetime(ts_ms: int) -> datetime:
    """Epoch milliseconds -> aware UTC datetime (the inverse of `Event.ts_ms`). Integer
    arithmetic: exact, and several times cheaper than `datetime.fromtimestamp`."""
    return _EPOCH + timedelta(milliseconds=ts_ms)


def datetime_to_us(value: datetime) -> int:
    """Aware datetime -> epoch microseconds (exact)."""
    elapsed = value - _EPOCH
    return (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds


def us_to_datetime(epoch_us: int) -> datetime:
    """Epoch microseconds -> aware UTC datetime (the inverse of `datetime_to_us`)."""
    return _EPOCH + timedelta(microseconds=epoch_us)


def datetime_to_ms(value: datetime) -> int:
    """Aware datetime -> epoch milliseconds, truncated to the millisecond."""
    elapsed = value - _EPOCH  # exact integer arithmetic, 3x faster than `// timedelta(ms)`
    return (elapsed.days * 86_400 + elapsed.seconds) * 1000 + elapsed.microseconds // 1000
