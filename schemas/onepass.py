"""Decoding in one pass: msgspec parses and validates the envelope while it reads the bytes.

Intuition: nearly every message is a valid event, and for those the answer is simply the
`Event`. msgspec decodes the envelope straight into a typed struct, checking types, lengths,
unknown fields and nulls as it goes (no intermediate dict), which is several times cheaper than
parsing into Python objects and checking them afterwards. What msgspec cannot say in a type (a
snake_case event type, an RFC 3339 timestamp in range, a device required by the channel, the
canonical properties) is checked here by hand, and the properties through `PropertyChecks`,
which are derived from the pydantic models of `schemas.properties` (the one definition).

This path only ever *accepts*. The moment anything is not plainly valid (any msgspec error, a
nested property, an integer beyond 64 bits, a lowercase or leap-second timestamp, an unknown
or out-of-range value, a message over the size limits) it answers None, and `schemas.decode`
runs the reference decoder on the same bytes, which gives the exact rejection and reason code.
So the rules and messages of rejections live in one place, and this module cannot change them:
tests/schemas/test_onepass.py checks, on valid and hostile inputs alike, that whatever this
path accepts the reference decoder accepts with the same `Event`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import msgspec

from schemas.event import (
    EARLIEST,
    RFC3339,
    SNAKE_CASE,
    Channel,
    Event,
    datetime_to_ms,
    ms_to_datetime,
    trusted_event,
)
from schemas.properties import CANONICAL, IDENTIFYING_TYPES, Properties

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """The envelope as msgspec checks it while decoding (the rest is checked in `accept`)."""

    event_id: Id
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    occurred_at: str
    device_id: Id | None = None
    customer_id: Id | None = None
    properties: dict[str, Any] | None = None
    schema_version: int = 1


_DECODER = msgspec.json.Decoder(Envelope | list[Envelope])
_rfc3339, _snake_case = RFC3339.fullmatch, SNAKE_CASE.fullmatch
_fromisoformat, _STORE = datetime.fromisoformat, Channel.STORE
#: Integers the reference parser (orjson) keeps as integers; beyond, it reads a float.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1

# -- canonical properties ------------------------------------------------------------------

#: One field's check: the value (present and not None) -> whether it is certainly valid.
Check = Callable[[Any], bool]


def _scalar_check(annotation: Any, metadata: list[Any]) -> Check | None:
    """The check of a strict pydantic field of a scalar type, or None when it is not one this
    module knows (the field is then always left to pydantic)."""
    bounds: dict[str, Any] = {}
    for m in metadata:
        for name in ("min_length", "ge", "le", "pattern", "allow_inf_nan"):
            if getattr(m, name, None) is not None:
                bounds[name] = getattr(m, name)
        if not any(hasattr(m, n) for n in ("min_length", "ge", "le", "pattern", "allow_inf_nan")):
            return None
    ge, le = bounds.get("ge"), bounds.get("le")
    if get_origin(annotation) is Literal:
        values = frozenset(get_args(annotation))
        if bounds or not all(type(v) is str for v in values):
            return None
        return lambda v: type(v) is str and v in values
    if annotation is str:
        pattern, min_len = bounds.pop("pattern", None), bounds.pop("min_length", 0)
        if set(bounds) or pattern not in (None, r"^[A-Z]{3}$"):
            return None
        if pattern is not None:  # three uppercase ASCII letters
            return lambda v: (
                type(v) is str and len(v) == 3 and v.isascii() and v.isalpha() and v.isupper()
            )
        return lambda v: type(v) is str and len(v) >= min_len
    if annotation is bool:
        return None if bounds else (lambda v: type(v) is bool)
    if annotation is int:
        if set(bounds) - {"ge", "le"}:
            return None
        lo = -math.inf if ge is None else ge
        hi = math.inf if le is None else le
        return lambda v: type(v) is int and lo <= v <= hi
    if annotation is float:
        if set(bounds) - {"ge", "le", "allow_inf_nan"}:
            return None
        lo = -math.inf if ge is None else ge
        hi = math.inf if le is None else le
        # Strict pydantic floats take ints too; NaN compares false, infinities are refused.
        return lambda v: (
            (type(v) is float or type(v) is int) and lo <= v <= hi and -math.inf < v < math.inf
        )
    return None


_UNKNOWN: Check = lambda v: False  # noqa: E731 - a field type this module does not check


def _field_checks(model: type[Properties]) -> tuple[tuple[str, bool, Check], ...]:
    """(name, required, check) for each field of `model`."""
    checks = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if get_origin(annotation) in (Union, type(int | None)):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else None
        check = _scalar_check(annotation, list(field.metadata)) or _UNKNOWN
        checks.append((name, field.is_required(), check))
    return tuple(checks)


#: Event type -> its properties' field checks; `Properties` for any other type.
PROPERTY_CHECKS = {event_type: _field_checks(model) for event_type, model in CANONICAL.items()}
_DEFAULT_CHECKS = _field_checks(Properties)
#: Types whose models check more than their fields' types (a validator: a survey score on its
#: kind's scale): their properties are always checked by pydantic.
_VALIDATED = frozenset(
    event_type
    for event_type, model in CANONICAL.items()
    if model.__pydantic_decorators__.field_validators
    or model.__pydantic_decorators__.model_validators
)


def properties_valid(event_type: str, properties: dict[str, Any]) -> bool:
    """Whether the flat `properties` are certainly valid for `event_type` (False: not sure,
    ask pydantic). Extra properties are allowed, as by the models."""
    if event_type in _VALIDATED:
        return False
    for name, required, check in PROPERTY_CHECKS.get(event_type, _DEFAULT_CHECKS):
        value = properties.get(name)
        if value is None:
            if required:
                return False
        elif not check(value):
            return False
    return True


# -- the envelope ------------------------------------------------------------------------


def decode_valid(raw: bytes, channel: Channel, future_limit: datetime) -> list[Event] | None:
    """The events of `raw` when every one is plainly valid, `occurred_at` at most
    `future_limit`; None otherwise (see the module docstring)."""
    try:
        doc = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if type(doc) is not list:
        ev = accept(cast(Envelope, doc), channel, future_limit)
        return None if ev is None else [ev]
    events = []
    for envelope in doc:
        ev = accept(envelope, channel, future_limit)
        if ev is None:
            return None
        events.append(ev)
    return events or None  # an empty batch is a rejection


def accept(e: Envelope, channel: Channel, future_limit: datetime) -> Event | None:
    """The `Event` of an envelope msgspec has type-checked, or None when not plainly valid."""
    event_type, device, customer = e.event_type, e.device_id, e.customer_id
    if event_type not in CANONICAL and not _snake_case(event_type):
        return None
    if device is None and channel is not _STORE:
        return None
    if event_type in IDENTIFYING_TYPES and (device is None or customer is None):
        return None
    if e.schema_version != 1:
        return None
    # RFC 3339: the reference decoder's pattern, then the common form (upper-case, no leap
    # second) parsed directly; a lowercase `t`/`z` or a leap second is left to the reference.
    value = e.occurred_at
    if not _rfc3339(value) or value[17:19] == "60" or "t" in value or "z" in value:
        return None
    try:
        at = _fromisoformat(value)
    except ValueError:  # February 30
        return None
    if at < EARLIEST or at > future_limit:
        return None
    props = e.properties
    if props is None:
        props = {}
    for v in props.values():
        t = type(v)
        if t is dict or t is list or (t is int and not _INT_MIN <= v <= _INT_MAX):
            return None
    if not properties_valid(event_type, props):
        return None
    ts_ms = datetime_to_ms(at)
    # The parsed time is the event's own when it is UTC to the millisecond (the usual `...Z`).
    occurred = at if at.tzinfo is UTC and not at.microsecond % 1000 else ms_to_datetime(ts_ms)
    return trusted_event(
        e.event_id, event_type, ts_ms, channel, device, customer, props, 1, occurred
    )
