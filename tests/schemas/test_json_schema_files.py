"""The committed JSON Schema files are exactly what the models generate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas import Channel, Event, Rejection, decode
from schemas.errors import ExportError
from schemas.event import TOPIC_CHANNELS
from schemas.export import export_json_schemas, json_schemas

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 31, tzinfo=UTC)
COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "json"


def test_committed_schema_files_are_in_sync_with_the_models(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert len(written) == len(json_schemas())
    for path in written:
        committed = COMMITTED / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `parcours schema export schemas/json`"
        )
    extra = {p.relative_to(COMMITTED) for p in COMMITTED.rglob("*.json")} - {
        p.relative_to(tmp_path) for p in written
    }
    assert not extra, f"files no model generates: {sorted(map(str, extra))}"


def test_exporting_into_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ExportError):
        export_json_schemas(target)


@pytest.mark.parametrize("topic", sorted(TOPIC_CHANNELS))
def test_topic_schemas_require_device_id_exactly_where_the_decoder_does(topic: str) -> None:
    files = json_schemas()
    index = orjson.loads(files["index.json"])
    assert index["topic_schemas"][topic] == f"topics/{topic}.json"
    schema = orjson.loads(files[f"topics/{topic}.json"])
    event = schema["$defs"]["event"]
    schema_requires = "device_id" in event["required"]
    doc = {"event_id": "e1", "event_type": "custom_thing", "occurred_at": "2026-11-02T10:00:00Z"}
    (without_device,) = decode(orjson.dumps(doc), topic, now=NOW)
    assert schema_requires == isinstance(without_device, Rejection)
    assert schema_requires == (TOPIC_CHANNELS[topic] is not Channel.STORE)
    if schema_requires:
        assert event["properties"]["device_id"]["type"] == "string"  # null is not a device
    # A message is one event or a non-empty array of them, as the decoder reads it.
    (empty,) = decode(b"[]", topic, now=NOW)
    assert isinstance(empty, Rejection)
    assert schema["oneOf"][1] == {
        "type": "array",
        "minItems": 1,
        "items": {"$ref": "#/$defs/event"},
    }
    with_device = {**doc, "device_id": "d1"}
    results = decode(orjson.dumps([with_device, {**with_device, "event_id": "e2"}]), topic, now=NOW)
    assert all(isinstance(r, Event) for r in results) and len(results) == 2
