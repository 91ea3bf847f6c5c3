"""JSON Schema files of the contract, for producers written in other languages.

One file for the envelope, one per canonical event type (its `properties`), one per topic (a
message on that topic: one event or a non-empty array, with `device_id` required on the web and
app topics), and an index. The output is deterministic (sorted keys, two-space indent, trailing newline) so the committed
copies in `schemas/json/` can be compared byte for byte with freshly generated ones.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import ExportError
from schemas.event import RFC3339_PATTERN, TOPIC_CHANNELS, Channel
from schemas.properties import CANONICAL, IDENTIFYING_TYPES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class EventEnvelopeV1(BaseModel):
    """One event of contract version 1 (a message holds one, or a JSON array of them)."""

    model_config = ConfigDict(extra="forbid", title="ParcoursEventV1")

    event_id: str = Field(min_length=1, max_length=128, description="Unique id; the dedup key.")
    event_type: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$",
        description="snake_case; canonical types have typed properties, others are custom events.",
    )
    occurred_at: datetime = Field(
        description="RFC 3339 with offset; not more than 24 h in the future, not before 2000-01-01.",
        json_schema_extra={"pattern": RFC3339_PATTERN},
    )
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Required on clickstream and app-events; optional on store-events.",
    )
    customer_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="A known customer (login, card)."
    )
    properties: dict[str, Any] = Field(
        default_factory=dict, description="At most 32 KiB serialised; see the per-type schemas."
    )
    schema_version: Literal[1] = 1


def _dump(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


#: Channels whose events must name their device (web cookie, app install).
DEVICE_REQUIRED = frozenset({Channel.WEB, Channel.APP})


def _topic_schema(topic: str, channel: Channel, envelope: dict[str, Any]) -> dict[str, Any]:
    """A message value on `topic`: one event, or a JSON array of at least one event."""
    event = {k: v for k, v in envelope.items() if k not in ("$schema", "$id")}
    event["properties"] = dict(event["properties"])
    if channel in DEVICE_REQUIRED:
        event["properties"]["device_id"] = {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": f"Required on {topic}.",
            "title": "Device Id",
        }
        event["required"] = sorted({*event["required"], "device_id"})
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"parcours-{topic}-message-v1.json",
        "title": f"{topic} message",
        "description": (
            f"A Kafka message value on `{topic}` (channel `{channel.value}`): one event, or a "
            "JSON array of events (each validated on its own)."
        ),
        "$defs": {"event": event},
        "oneOf": [
            {"$ref": "#/$defs/event"},
            {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/event"}},
        ],
    }


def json_schemas() -> dict[str, bytes]:
    """File name -> content of every schema file."""
    files: dict[str, bytes] = {}
    envelope = EventEnvelopeV1.model_json_schema()
    envelope["$schema"] = SCHEMA_DIALECT
    envelope["$id"] = "parcours-event-v1.json"
    files["event.json"] = _dump(envelope)
    index: dict[str, Any] = {
        "contract_version": 1,
        "topics": {topic: channel.value for topic, channel in sorted(TOPIC_CHANNELS.items())},
        "envelope": "event.json",
        "event_types": {},
        "identifying_types": sorted(IDENTIFYING_TYPES),
    }
    for event_type, model in sorted(CANONICAL.items()):
        schema = model.model_json_schema()
        schema["$schema"] = SCHEMA_DIALECT
        schema["title"] = f"{event_type} properties"
        name = f"properties/{event_type}.json"
        files[name] = _dump(schema)
        index["event_types"][event_type] = name
    index["topic_schemas"] = {}
    for topic, channel in sorted(TOPIC_CHANNELS.items()):
        name = f"topics/{topic}.json"
        files[name] = _dump(_topic_schema(topic, channel, envelope))
        index["topic_schemas"][topic] = name
    files["index.json"] = _dump(index)
    return files


def export_json_schemas(directory: Path) -> list[Path]:
    """Write every schema file under `directory` (created if missing); returns the paths."""
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} exists and is not a directory")
    written: list[Path] = []
    for name, content in sorted(json_schemas().items()):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
