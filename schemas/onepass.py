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
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, Union, cast, get_args, get_origin

import msgspec

from schemas.event import (
    EARLIEST,
    RFC3339,
    SNAKE_CASE,
    Channel,
    Event,
    datetime_to_us,
    ms_to_datetime,
    trusted_event,
)
from schemas.properties import CANONICAL, IDENTIFYING_TYPES, Properties

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


#: Integers this path takes: 64-bit signed (msgspec's bounds). The reference parser (orjson)
#: keeps integers up to 2**64 - 1 and reads larger ones as floats: those go to it.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: A property value this path takes: a scalar. An object or an array (which may nest too
#: deep), or an integer beyond 64 bits, is left to the reference decoder.
Scalar = str | Annotated[int, msgspec.Meta(ge=_INT_MIN, le=_INT_MAX)] | float | bool | None


class Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The envelope as msgspec checks it while decoding (the rest is checked in `accept`).
    Not tracked by the garbage collector: it holds no reference back to itself."""

    event_id: Id
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    occurred_at: str
    device_id: Id | None = None
    customer_id: Id | None = None
    properties: dict[str, Scalar] | None = None
    schema_version: int = 1


_DECODER = msgspec.json.Decoder(Envelope | list[Envelope])
_rfc3339, _snake_case = RFC3339.fullmatch, SNAKE_CASE.fullmatch
_fromisoformat, _STORE = datetime.fromisoformat, Channel.STORE

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


class Rules(NamedTuple):
    """What one event type's properties must satisfy, as this module checks it."""

    #: Fields that must be present (and not null).
    required: frozenset[str]
    #: Fields a null does not satisfy (required, or typed without None).
    not_null: frozenset[str]
    #: Field -> the check of a value given for it (not null).
    checks: dict[str, Check]
    #: Field -> the check of a string given for it (the usual value, checked the cheapest way:
    #: a field of any string is absent, a choice of strings is a set's membership).
    on_str: dict[str, Check]


def _string_check(annotation: Any, metadata: list[Any], check: Check) -> Check | None:
    """`check` for string values only, the cheapest way; None: any string is valid."""
    if check is _UNKNOWN:
        return check
    if annotation is str and not metadata:
        return None
    if annotation is str and [getattr(m, "min_length", None) for m in metadata] == [1]:
        return bool  # a non-empty string
    if get_origin(annotation) is Literal:
        return frozenset(get_args(annotation)).__contains__
    return check


def _rules(model: type[Properties]) -> Rules:
    required, not_null = set(), set()
    checks = {name: check for name, _, check in _field_checks(model)}
    on_str: dict[str, Check] = {}
    for name, field in model.model_fields.items():
        annotation, nullable = field.annotation, False
        if get_origin(annotation) in (Union, type(int | None)):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = len(args) < len(get_args(annotation))
            annotation = args[0] if len(args) == 1 else None
        if field.is_required():
            required.add(name)
        if field.is_required() or not nullable:
            not_null.add(name)
        string_check = _string_check(annotation, list(field.metadata), checks[name])
        if string_check is not None:
            on_str[name] = string_check
    return Rules(frozenset(required), frozenset(not_null), checks, on_str)


#: Event type -> its properties' field checks; `Properties` for any other type.
PROPERTY_CHECKS = {event_type: _field_checks(model) for event_type, model in CANONICAL.items()}
#: Types whose models check more than their fields' types (a validator: a survey score on its
#: kind's scale): their properties are always checked by pydantic.
_VALIDATED = frozenset(
    event_type
    for event_type, model in CANONICAL.items()
    if model.__pydantic_decorators__.field_validators
    or model.__pydantic_decorators__.model_validators
)
#: Event type -> its rules; None: always left to pydantic. `Properties` for any other type.
RULES: dict[str, Rules | None] = {
    event_type: None if event_type in _VALIDATED else _rules(model)
    for event_type, model in CANONICAL.items()
}
_DEFAULT_RULES = _rules(Properties)


def properties_valid(event_type: str, properties: dict[str, Any]) -> bool:
    """Whether `properties` are certainly valid for `event_type` (False: not sure, ask
    pydantic). Extra properties are allowed, as by the models. The values are scalars (see
    `Scalar`: msgspec has checked that while decoding).

    One pass over the event's own properties (usually fewer than the model's fields)."""
    rules = RULES.get(event_type, _DEFAULT_RULES)
    if rules is None:
        return False
    for name, value in properties.items():
        if type(value) is str:
            check = rules.on_str.get(name)
        elif value is None:
            if name in rules.not_null:
                return False
            continue
        else:
            check = rules.checks.get(name)
        if check is not None and not check(value):
            return False
    return properties.keys() >= rules.required


# -- the envelope ------------------------------------------------------------------------

#: The usual timestamp: UTC, to the second or the millisecond (`2026-11-02T10:15:30.123Z`). Its
#: fields' ranges (month, day of the month, hour, minute, second up to 59) are then checked by
#: `datetime.fromisoformat`, which refuses what the reference's RFC 3339 pattern refuses in
#: this shape (a leap second `60`, an hour 24, February 30).
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?Z"
).fullmatch
EARLIEST_US = datetime_to_us(EARLIEST)


def decode_valid(raw: bytes, channel: Channel, future_limit_us: int) -> list[Event] | None:
    """The events of `raw` when every one is plainly valid, `occurred_at` at most
    `future_limit_us` (epoch microseconds: the decoder's clock plus 24 h, an integer so that
    the usual timestamp is compared without building a datetime); None otherwise (see the
    module docstring)."""
    try:
        doc = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if type(doc) is Envelope:
        ev = accept(doc, channel, future_limit_us)
        return None if ev is None else [ev]
    events = []
    for envelope in cast("list[Envelope]", doc):  # a batch (a string: no alias built per call)
        ev = accept(envelope, channel, future_limit_us)
        if ev is None:
            return None
        events.append(ev)
    return events or None  # an empty batch is a rejection


def accept(e: Envelope, channel: Channel, future_limit_us: int) -> Event | None:
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
    # RFC 3339: the usual form is recognised by `_PLAIN_TIME`; any other by the reference's
    # pattern, a lowercase `t`/`z` or a leap second being left to the reference.
    value = e.occurred_at
    plain = _PLAIN_TIME(value) is not None
    if not plain and (not _rfc3339(value) or value[17:19] == "60" or "t" in value or "z" in value):
        return None
    try:
        at = _fromisoformat(value)
    except ValueError:  # February 30 (or, in the usual form, a leap second)
        return None
    at_us = datetime_to_us(at)
    if at_us < EARLIEST_US or at_us > future_limit_us:
        return None
    ts_ms = at_us // 1000
    # The parsed time is the event's own when it is UTC to the millisecond, as the usual form
    # always is; otherwise the same instant in UTC, truncated to the millisecond.
    if not plain and (at.tzinfo is not UTC or at.microsecond % 1000):
        at = at.astimezone(UTC) if not at.microsecond % 1000 else ms_to_datetime(ts_ms)
    props = e.properties
    if props is None:
        props = {}
    if not properties_valid(event_type, props):
        return None
    return trusted_event(e.event_id, event_type, ts_ms, channel, device, customer, props, 1, at)
