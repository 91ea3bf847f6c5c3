"""The one-pass decoder only accepts, and what it accepts the reference decoder accepts alike.

`schemas.onepass` answers for plainly valid messages and leaves everything else to the
reference decoder (`schemas.decode.reference_decode`), which owns every rejection. So the one
property that matters: whenever the one-pass path returns events, they are exactly the events
the reference decoder returns for the same bytes (same fields, same `occurred_at` to the
microsecond and time zone). Checked on the simulator's traffic, on the fuzz script's hostile
mutations, and on hypothesis-generated envelopes and properties around every field's limits.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import TOPIC_CHANNELS, Channel, Event, decode, onepass
from schemas.decode import MAX_FUTURE, reference_decode
from schemas.event import datetime_to_us
from schemas.properties import CANONICAL
from streams.simulate import SimulationConfig, generate
from tests.perf.fuzz_decode import _input

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIMIT = NOW + MAX_FUTURE
LIMIT_US = datetime_to_us(LIMIT)


def _same_as_reference(raw: bytes, topic: str) -> bool:
    """Check the property on one input; True when the one-pass path accepted it."""
    channel = TOPIC_CHANNELS.get(topic)
    if channel is None:
        return False
    fast = onepass.decode_valid(raw, channel, LIMIT_US)
    if fast is None:
        return False
    reference = reference_decode(raw, topic, NOW)
    assert fast == reference, raw
    for a, b in zip(fast, reference, strict=True):
        assert isinstance(b, Event)
        assert a.occurred_at.isoformat() == b.occurred_at.isoformat(), raw
        assert a.occurred_at.tzinfo is b.occurred_at.tzinfo, raw
        assert list(a.properties.items()) == list(b.properties.items()), raw
        assert [type(v) for v in a.properties.values()] == [
            type(v) for v in b.properties.values()
        ], raw
    # And `decode` itself gives the same answer whichever path it took.
    assert decode(raw, topic, now=NOW) == reference
    return True


def test_the_simulators_events_take_the_one_pass_path_and_equal_the_reference() -> None:
    config = SimulationConfig(customers=300, days=1, seed=3, malformed_rate=0.02)
    accepted = valid = messages = 0
    for msg in generate(config):
        messages += 1
        raw = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
        accepted += _same_as_reference(raw, msg.topic)
        decoded = reference_decode(raw, msg.topic, NOW)
        # survey responses have a validator (the score's scale): pydantic checks them
        valid += all(
            isinstance(r, Event) and r.event_type not in onepass._VALIDATED for r in decoded
        )
    # Not vacuous: the common case is the fast one (every valid simulated message).
    assert accepted == valid > 0.9 * messages > 2_000


def test_hostile_mutations_are_never_accepted_differently() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        _same_as_reference(_input(rng), rng.choice([*TOPIC_CHANNELS]))


def test_types_with_validators_are_always_checked_by_pydantic() -> None:
    """An NPS of 11 is off its scale: a rule the field types do not say."""
    assert "survey_response" in onepass._VALIDATED
    nps = {"kind": "nps", "score": 11}
    assert not onepass.properties_valid("survey_response", nps)


def test_every_canonical_property_has_a_one_pass_check() -> None:
    """A field type the one-pass path does not know would send every such event to pydantic:
    still right, but slow. This says so when a model gains one."""
    for event_type in CANONICAL:
        for name, _, check in onepass.PROPERTY_CHECKS[event_type]:
            assert check is not onepass._UNKNOWN, (event_type, name)


@given(st.text(max_size=6) | st.sampled_from(["", "EUR", "eur", "chat", "nps", "pos", "mobile"]))
def test_the_string_checks_agree_with_the_field_checks(value: str) -> None:
    """Strings are checked the cheapest way (`Rules.on_str`): the same verdict, every field."""
    for rules in [*onepass.RULES.values(), onepass._DEFAULT_RULES]:
        if rules is None:
            continue
        for name, check in rules.checks.items():
            on_str = rules.on_str.get(name)
            assert (on_str is None or bool(on_str(value))) == check(value), (name, value)


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 10**12, 10**12 + 1, 10**6, 10**6 + 1, 2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e12, 1e12 + 0.5, 1e6, -1e6, -1e6 - 1, 5e-324]),
    st.text(max_size=5),
    st.sampled_from(["", "EUR", "eur", "EURO", "É" * 3, "US\n", "chat", "phone", "nps", "pos"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
FIELD_NAMES = sorted(
    {name for model in CANONICAL.values() for name in model.model_fields} | {"extra", "page"}
)
TIMES = st.sampled_from(
    [
        "2026-11-02T10:15:30.123Z",
        "2026-11-02T10:15:30Z",
        "2026-11-02T10:15:30.123456Z",
        "2026-11-02T10:15:30.1234567Z",
        "2026-11-02T11:15:30.123+01:00",
        "2026-11-02T10:15:30.123+00:00",
        "2026-11-02T10:15:30.123-00:00",
        "2026-11-02t10:15:30.123z",
        "2016-12-31T23:59:60Z",
        "2026-02-30T10:00:00Z",
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:00:00Z",
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:00.001Z",
        "2026-11-02T10:15:30.123Z\n",
        # around the usual form (`_PLAIN_TIME`): other fractions, other offsets, ISO 8601
        # forms Python parses but RFC 3339 does not, out-of-range fields, non-ASCII digits
        "2026-11-02T10:15:30.1Z",
        "2026-11-02T10:15:30.1234Z",
        "2026-11-02T11:15:30.123456+01:00",
        "2026-11-24T13:00:00.000+01:00",
        "2026-11-24T12:00:00.0001Z",
        "2026-11-02T10:15:30,123Z",
        "2026-W45-1T10:15:30Z",
        "20261102T101530Z",
        "2026-11-02T24:00:00.000Z",
        "2026-11-02T10:60:00.000Z",
        "2026-11-02T10:15:60.000Z",
        "2026-13-02T10:15:30.000Z",
        "2026-11-02T10:15:30.000z",
        "２０２６-11-02T10:15:30.000Z",
        "2026-11-02T10:15:3٠.000Z",
    ]
)


@settings(max_examples=600, deadline=None)
@given(
    event_type=st.sampled_from([*CANONICAL, "custom_thing", "Bad", "", "a" * 65, "x__y"]),
    properties=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(FIELD_NAMES), ODD_VALUES, max_size=5)
    ),
    occurred_at=TIMES,
    device=st.sampled_from([None, "d1", "", "d" * 128, "d" * 129, 5]),
    customer=st.sampled_from([None, "c1", "", "c" * 129]),
    version=st.sampled_from([None, 1, 2, True, 1.0, "1", 2**70]),
    topic=st.sampled_from(list(TOPIC_CHANNELS)),
    extra=st.sampled_from([{}, {"unknown": 1}, {"channel": "web"}]),
    batch=st.booleans(),
)
def test_generated_envelopes_are_accepted_only_as_the_reference_does(
    event_type: str,
    properties: dict[str, Any] | None,
    occurred_at: str,
    device: Any,
    customer: Any,
    version: Any,
    topic: str,
    extra: dict[str, Any],
    batch: bool,
) -> None:
    doc: dict[str, Any] = {"event_id": "e-1", "event_type": event_type, "occurred_at": occurred_at}
    for key, value in (("device_id", device), ("customer_id", customer)):
        if value is not None:
            doc[key] = value
    if properties is not None:
        doc["properties"] = properties
    if version is not None:
        doc["schema_version"] = version
    doc.update(extra)
    # The standard library writes integers of any size (orjson refuses those beyond 64 bits).
    raw = json.dumps([doc, doc] if batch else doc, ensure_ascii=False).encode()
    _same_as_reference(raw, topic)


def test_typical_events_of_every_channel_take_the_one_pass_path() -> None:
    doc = {
        "event_id": "e-1",
        "event_type": "purchase",
        "occurred_at": "2026-11-02T10:15:30.123Z",
        "customer_id": "c1",
        "properties": {"transaction_id": "t1", "value": 12, "currency": "EUR"},
    }
    for topic, channel in TOPIC_CHANNELS.items():
        raw = orjson.dumps(doc | ({} if channel is Channel.STORE else {"device_id": "d1"}))
        assert _same_as_reference(raw, topic)
