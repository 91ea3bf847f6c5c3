"""The decoder and the published JSON Schema agree on RFC 3339, tested from the same cases.

Before issue 12 the decoder refused a lowercase `z` and the leap second `23:59:60`, which
RFC 3339 (section 5.6) allows and the schema's `format: date-time` accepts; it accepted a space
between date and time, which RFC 3339's grammar does not. Now both read `RFC3339_PATTERN`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import Event, decode

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SCHEMA = orjson.loads(
    (Path(__file__).parents[2] / "schemas/json/topics/clickstream.json").read_bytes()
)

#: (occurred_at, valid per RFC 3339, UTC instant when valid)
CASES: list[tuple[str, bool, datetime | None]] = [
    ("2026-11-02T10:00:00Z", True, datetime(2026, 11, 2, 10, tzinfo=UTC)),
    ("2026-11-02T10:00:00z", True, datetime(2026, 11, 2, 10, tzinfo=UTC)),
    ("2026-11-02t10:00:00Z", True, datetime(2026, 11, 2, 10, tzinfo=UTC)),
    ("2026-11-02T10:00:00.5+02:00", True, datetime(2026, 11, 2, 8, 0, 0, 500_000, tzinfo=UTC)),
    ("2026-11-02T10:00:00-00:00", True, datetime(2026, 11, 2, 10, tzinfo=UTC)),
    ("2026-11-02T10:00:00+23:59", True, datetime(2026, 11, 1, 10, 1, tzinfo=UTC)),
    # a leap second is the instant after 23:59:59 (POSIX time has none)
    ("2016-12-31T23:59:60Z", True, datetime(2017, 1, 1, tzinfo=UTC)),
    ("2016-12-31t23:59:60.250z", True, datetime(2017, 1, 1, tzinfo=UTC)),
    ("2026-11-02 10:00:00Z", False, None),
    ("2026-11-02T10:00:00", False, None),
    ("2026-11-02T24:00:00Z", False, None),
    ("2026-11-02T10:60:00Z", False, None),
    ("2026-11-02T10:00:61Z", False, None),
    ("2026-13-02T10:00:00Z", False, None),
    ("2026-11-32T10:00:00Z", False, None),
    ("2026-11-02T10:00:00+24:00", False, None),
    ("2026-11-02T10:00:00.Z", False, None),
    ("2026-11-02T10:00Z", False, None),
    ("２026-11-02T10:00:00Z", False, None),
    ("2026-11-02T10:00:00Z\n", False, None),
]


def _doc(occurred_at: str) -> dict[str, Any]:
    return {
        "event_id": "e1",
        "event_type": "custom_thing",
        "occurred_at": occurred_at,
        "device_id": "d",
    }


@pytest.mark.parametrize(("occurred_at", "valid", "instant"), CASES)
def test_the_decoder_follows_rfc3339(
    occurred_at: str, valid: bool, instant: datetime | None
) -> None:
    (result,) = decode(orjson.dumps(_doc(occurred_at)), "clickstream", now=NOW)
    assert isinstance(result, Event) is valid, result
    if isinstance(result, Event):
        assert result.occurred_at == instant


@pytest.mark.parametrize(("occurred_at", "valid", "instant"), CASES)
def test_the_json_schema_follows_rfc3339(
    occurred_at: str, valid: bool, instant: datetime | None
) -> None:
    assert Draft202012Validator(SCHEMA).is_valid(_doc(occurred_at)) is valid


def test_a_date_that_does_not_exist_is_refused_by_the_decoder() -> None:
    """The pattern cannot know month lengths; the decoder (and `format: date-time`) can."""
    (result,) = decode(orjson.dumps(_doc("2026-02-30T10:00:00Z")), "clickstream", now=NOW)
    assert not isinstance(result, Event) and result.reason == "invalid_value"
