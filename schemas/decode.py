"""Decoding: raw bytes from a topic -> validated events, or rejections with a reason.

Intuition: decoding is a total function. Whatever the bytes, the answer is a list with one
result per event the producer meant to send: an `Event`, or a `Rejection` carrying a reason
code, a message naming the field, and the original bytes. Nothing raises and nothing vanishes,
so the dead-letter topic can account for every input.

Two paths, one set of rules. A message is first read in one pass by `schemas.onepass`
(msgspec validates the envelope while it decodes; the properties are checked against rules
derived from the pydantic models): that path only accepts, and answers for the plainly valid
messages, nearly all of them. Anything else goes through the reference decoder below, which
gives every rejection its reason code and message: the envelope checked by hand, canonical
properties by the strict pydantic models of `schemas.properties`, whose errors map onto the same
reason codes. tests/schemas/test_onepass.py checks that both paths agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from time import time_ns
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import onepass
from schemas.errors import SchemaError
from schemas.event import (
    EARLIEST,
    MAX_FUTURE,
    RFC3339,
    SNAKE_CASE,
    TOPIC_CHANNELS,
    Channel,
    Event,
    datetime_to_ms,
    datetime_to_us,
    trusted_event,
    us_to_datetime,
)
from schemas.properties import CANONICAL, IDENTIFYING_TYPES, Properties

MAX_MESSAGE_BYTES = 1024 * 1024
_MAX_FUTURE_US = MAX_FUTURE // timedelta(microseconds=1)
MAX_PROPERTIES_BYTES = 32 * 1024
#: Deepest nesting of objects and arrays in one event (the event object is level 1). Deeper
#: input is rejected `too_deep`: storage serialises properties with orjson, which refuses
#: anything past about 254 levels, and no tracking plan needs more than a handful.
MAX_DEPTH = 64
ENVELOPE_FIELDS = frozenset(
    {
        "event_id",
        "event_type",
        "occurred_at",
        "device_id",
        "customer_id",
        "properties",
        "schema_version",
    }
)
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
_SNAKE_CASE = SNAKE_CASE
_RFC3339 = RFC3339


class RejectReason(StrEnum):
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    TOO_LARGE = "too_large"
    UNKNOWN_TOPIC = "unknown_topic"
    TOO_DEEP = "too_deep"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that broke the contract. `raw` is the whole original message, byte for byte;
    `index` is the element's position when the message was a JSON array."""

    reason: RejectReason
    message: str
    field: str | None
    topic: str
    raw: bytes
    index: int | None = None
    event_id: str | None = None


class _Invalid(SchemaError):
    """Internal: one check failed (turned into a Rejection before leaving this module)."""

    def __init__(self, reason: RejectReason, field: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


DecodeResult = Event | Rejection


def decode(raw: bytes, topic: str, *, now: datetime | None = None) -> list[DecodeResult]:
    """Decode one message value from `topic`. Never raises.

    `now` (default: the clock) is what `occurred_at` may not be more than 24 h after. Read as
    epoch microseconds (`time.time_ns`), and made a datetime only for the reference decoder:
    `datetime.now` costs a few percent of decoding a message."""
    now_us = time_ns() // 1000 if now is None else datetime_to_us(now)
    channel = TOPIC_CHANNELS.get(topic)
    if channel is not None and len(raw) <= MAX_PROPERTIES_BYTES:
        try:
            events = onepass.decode_valid(raw, channel, now_us + _MAX_FUTURE_US)
        except Exception:  # not plainly valid after all: the reference decoder judges it
            events = None
        if events is not None:
            return events  # type: ignore[return-value]  # Events are results (no copy, no cast call)
    return reference_decode(raw, topic, us_to_datetime(now_us) if now is None else now)


def reference_decode(raw: bytes, topic: str, now: datetime) -> list[DecodeResult]:
    """The reference decoder alone (what `decode` falls back to). Never raises."""
    try:
        return _decode(raw, topic, now)
    except Exception as exc:  # a bug must still not lose the input
        return [
            _reject(raw, topic, RejectReason.INVALID_VALUE, None, f"undecodable input: {exc!r}")
        ]


def decode_document(
    doc: Any, topic: str, raw: bytes, *, now: datetime | None = None
) -> list[DecodeResult]:
    """Decode a message value that is already parsed (`doc`), keeping `raw` for rejections.

    For callers that hold the value inside a larger JSON document (an ingest line) and cannot
    re-serialise it (nested too deep for orjson): each element is still judged on its own, so
    the valid events beside a hostile one go through. Never raises."""
    try:
        channel = TOPIC_CHANNELS.get(topic)
        if channel is None:
            return _decode(raw, topic, now or datetime.now(UTC))
        return _decode_doc(doc, channel, raw, topic, now or datetime.now(UTC))
    except Exception as exc:
        return [
            _reject(raw, topic, RejectReason.INVALID_VALUE, None, f"undecodable input: {exc!r}")
        ]


def _reject(
    raw: bytes,
    topic: str,
    reason: RejectReason,
    field: str | None,
    message: str,
    index: int | None = None,
    event_id: str | None = None,
) -> Rejection:
    return Rejection(reason, message, field, topic, bytes(raw), index, event_id)


def _decode(raw: bytes, topic: str, now: datetime) -> list[DecodeResult]:
    channel = TOPIC_CHANNELS.get(topic)
    if channel is None:
        known = ", ".join(sorted(TOPIC_CHANNELS))
        return [
            _reject(
                raw,
                topic,
                RejectReason.UNKNOWN_TOPIC,
                None,
                f"unknown topic {topic!r}; expected one of {known}",
            )
        ]
    if len(raw) > MAX_MESSAGE_BYTES:
        return [
            _reject(
                raw,
                topic,
                RejectReason.TOO_LARGE,
                None,
                f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}",
            )
        ]
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [_reject(raw, topic, RejectReason.INVALID_JSON, None, f"not valid JSON: {exc}")]
    return _decode_doc(doc, channel, raw, topic, now)


def _decode_doc(
    doc: Any, channel: Channel, raw: bytes, topic: str, now: datetime
) -> list[DecodeResult]:
    if isinstance(doc, list):
        if not doc:
            return [
                _reject(
                    raw,
                    topic,
                    RejectReason.INVALID_VALUE,
                    None,
                    "empty batch: the array holds no event",
                )
            ]
        return [_decode_one(el, channel, raw, topic, i, now) for i, el in enumerate(doc)]
    return [_decode_one(doc, channel, raw, topic, None, now)]


def _decode_one(
    doc: Any, channel: Channel, raw: bytes, topic: str, index: int | None, now: datetime
) -> DecodeResult:
    where = "" if index is None else f"[{index}] "
    if not isinstance(doc, dict):
        kind = _kind(doc)
        return _reject(
            raw,
            topic,
            RejectReason.NOT_AN_OBJECT,
            None,
            f"{where}an event must be a JSON object, got {kind}",
            index,
        )
    event_id = doc.get("event_id")
    known_id = event_id if isinstance(event_id, str) else None
    try:
        return _event(doc, channel, raw, len(raw) > MAX_PROPERTIES_BYTES, now)
    except _Invalid as bad:
        return _reject(raw, topic, bad.reason, bad.field, where + bad.message, index, known_id)


def _string(doc: dict[str, Any], name: str, *, required: bool, max_len: int) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise _Invalid(RejectReason.MISSING_FIELD, name, f"{name}: required")
        return None
    if not isinstance(value, str):
        raise _Invalid(
            RejectReason.WRONG_TYPE, name, f"{name}: expected a string, got {_kind(value)}"
        )
    if not value:
        raise _Invalid(RejectReason.INVALID_VALUE, name, f"{name}: must not be empty")
    if len(value) > max_len:
        raise _Invalid(
            RejectReason.INVALID_VALUE, name, f"{name}: {len(value)} characters; at most {max_len}"
        )
    return value


def _event(
    doc: dict[str, Any], channel: Channel, raw: bytes, check_size: bool, now: datetime
) -> Event:
    unknown = doc.keys() - ENVELOPE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise _Invalid(
            RejectReason.INVALID_VALUE,
            name,
            f"{name}: unknown field (put free-form data in properties)",
        )
    event_id = _string(doc, "event_id", required=True, max_len=128)
    event_type = _string(doc, "event_type", required=True, max_len=64)
    assert event_id is not None and event_type is not None
    if not _SNAKE_CASE.fullmatch(event_type):
        raise _Invalid(
            RejectReason.INVALID_VALUE,
            "event_type",
            f"event_type: {event_type!r} is not snake_case",
        )
    ts_ms = _timestamp(doc.get("occurred_at"), now)
    device_id = _string(doc, "device_id", required=channel is not Channel.STORE, max_len=128)
    customer_id = _string(doc, "customer_id", required=False, max_len=128)
    if event_type in IDENTIFYING_TYPES:
        for name, value in (("device_id", device_id), ("customer_id", customer_id)):
            if value is None:
                raise _Invalid(
                    RejectReason.MISSING_FIELD,
                    name,
                    f"{name}: required on {event_type} (it links the device to the customer)",
                )
    version = doc.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Invalid(
            RejectReason.WRONG_TYPE,
            "schema_version",
            f"schema_version: expected an integer, got {_kind(version)}",
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _Invalid(
            RejectReason.INVALID_VALUE,
            "schema_version",
            f"schema_version: {version} is not supported (supported: 1)",
        )
    properties = doc.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise _Invalid(
            RejectReason.WRONG_TYPE,
            "properties",
            f"properties: expected an object, got {_kind(properties)}",
        )
    elif _too_deep(properties, MAX_DEPTH - 2):  # the event and properties are 2 levels
        raise _Invalid(
            RejectReason.TOO_DEEP,
            "properties",
            f"properties: nested deeper than {MAX_DEPTH} levels",
        )
    elif check_size and (size := len(orjson.dumps(properties))) > MAX_PROPERTIES_BYTES:
        raise _Invalid(
            RejectReason.TOO_LARGE,
            "properties",
            f"properties: {size} bytes serialised; at most {MAX_PROPERTIES_BYTES}",
        )
    _check_properties(CANONICAL.get(event_type, Properties), properties)
    return trusted_event(
        event_id, event_type, ts_ms, channel, device_id, customer_id, properties, version
    )


def _timestamp(value: Any, now: datetime) -> int:
    if value is None:
        raise _Invalid(RejectReason.MISSING_FIELD, "occurred_at", "occurred_at: required")
    if not isinstance(value, str):
        raise _Invalid(
            RejectReason.WRONG_TYPE,
            "occurred_at",
            f"occurred_at: expected an RFC 3339 string, got {_kind(value)}",
        )
    if not _RFC3339.fullmatch(value):
        raise _Invalid(
            RejectReason.INVALID_VALUE,
            "occurred_at",
            f"occurred_at: {value!r} is not an RFC 3339 timestamp with an offset (e.g. 2026-11-02T10:15:30.123Z)",
        )
    try:
        at = parse_rfc3339(value)
    except ValueError as exc:
        raise _Invalid(
            RejectReason.INVALID_VALUE, "occurred_at", f"occurred_at: {value!r}: {exc}"
        ) from None
    if at < EARLIEST:
        raise _Invalid(
            RejectReason.TIMESTAMP_OUT_OF_RANGE,
            "occurred_at",
            f"occurred_at: {value} is before 2000-01-01",
        )
    if at > now + MAX_FUTURE:
        raise _Invalid(
            RejectReason.TIMESTAMP_OUT_OF_RANGE,
            "occurred_at",
            f"occurred_at: {value} is more than 24 h in the future",
        )
    return datetime_to_ms(at)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time (already matched by `RFC3339_PATTERN`) -> aware datetime.

    RFC 3339 allows a lowercase `t` and `z` and the leap second `23:59:60`, which
    `datetime.fromisoformat` refuses: the letters are upper-cased and a leap second is taken as
    the first instant of the next minute (POSIX time has no leap seconds). Raises ValueError
    for a date that does not exist (February 30)."""
    text = value.upper()
    leap = text[17:19] == "60"
    if leap:
        text = text[:17] + "59" + text[19:]
    at = datetime.fromisoformat(text)
    if leap:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    return at


def _too_deep(value: dict[str, Any], limit: int) -> bool:
    """Whether containers nest more than `limit` levels below `value` (iterative: a hostile
    input must not exhaust the Python stack)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _check_properties(model: type[Properties], properties: dict[str, Any]) -> None:
    if model is Properties and "device_type" not in properties:
        return
    try:
        model.model_validate(properties)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in error["loc"])
        field = f"properties.{loc}"
        kind = error["type"]
        if kind == "missing":
            raise _Invalid(RejectReason.MISSING_FIELD, field, f"{field}: required") from None
        wrong_type = kind.endswith("_type") or (
            kind == "literal_error" and not isinstance(error["input"], str)
        )
        reason = RejectReason.WRONG_TYPE if wrong_type else RejectReason.INVALID_VALUE
        got = f", got {_kind(error['input'])}" if reason is RejectReason.WRONG_TYPE else ""
        raise _Invalid(reason, field, f"{field}: {error['msg'].lower()}{got}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)
