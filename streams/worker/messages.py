"""Wire formats of the internal topics and the dead-letter topic.

`parcours-journey` carries journey-step inputs partitioned by person (JSON, see
streams.core.codec) with the upstream partition and its watermark; `parcours-records` carries the
core's output records and rejected inputs, for the sink stage. Both are packed, one JSON array per
batch and partition (streams/worker/outbox.py). `parcours-dlq` carries each rejected input's
original bytes with Kafka Connect-style error headers, so existing DLQ tooling reads it.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from schemas import Channel, Rejection, RejectReason
from schemas.event import trusted_event
from streams.core.codec import record_from_dict
from streams.core.identity import Routed
from streams.core.records import Record
from streams.sinks.base import RejectedInput


def dlq_headers(
    rejection: Rejection, topic: str, partition: int, offset: int, error: str = ""
) -> list[tuple[str, bytes]]:
    headers = [
        ("__connect.errors.topic", topic.encode()),
        ("__connect.errors.partition", str(partition).encode()),
        ("__connect.errors.offset", str(offset).encode()),
        ("__connect.errors.exception.class.name", (error or "parcours.Rejection").encode()),
        ("__connect.errors.exception.message", rejection.message.encode()),
        ("parcours.reason", str(rejection.reason).encode()),
    ]
    if rejection.index is not None:
        headers.append(("parcours.index", str(rejection.index).encode()))
    return headers


def rejected_to_bytes(item: RejectedInput) -> bytes:
    r = item.rejection
    return orjson.dumps(
        {
            "kind": "RejectedInput",
            "reason": str(r.reason),
            "message": r.message,
            "field": r.field,
            "topic": r.topic,
            "raw": base64.b64encode(r.raw).decode(),
            "index": r.index,
            "event_id": r.event_id,
            "source": item.source,
            "position": item.position,
            "received_at_ms": item.received_at_ms,
        }
    )


def rejected_message_to_bytes(items: list[RejectedInput]) -> bytes:
    """Every rejection of one message as one records-topic item, its bytes carried once.

    A 40 KB array of 20,000 non-events made 20,000 items with a base64 copy of the message each
    (issue 12); here it is one item: the message's bytes and 20,000 short rejections, which the
    sink stores as one `rejected_messages` row and 20,000 `rejected_events` rows."""
    first = items[0]
    return orjson.dumps(
        {
            "kind": "RejectedMessage",
            "topic": first.rejection.topic,
            "raw": base64.b64encode(first.rejection.raw).decode(),
            "source": first.source,
            "position": first.position,
            "received_at_ms": first.received_at_ms,
            "rejections": [
                [
                    str(i.rejection.reason),
                    i.rejection.message,
                    i.rejection.field,
                    i.rejection.index,
                    i.rejection.event_id,
                ]
                for i in items
            ],
        }
    )


def record_to_bytes(record: Record) -> bytes:
    """`record_to_dict`'s JSON, made by orjson straight from the dataclass.

    `dataclasses.asdict` deep-copies every record and was 7% of a busy worker's CPU; orjson
    writes the same fields in the same order, and the tag is spliced into the object's end.
    """
    body = orjson.dumps(record)
    return body[:-1] + b',"kind":"' + type(record).__name__.encode() + b'"}'


def outputs_from_bytes(value: bytes) -> list[Record | RejectedInput]:
    """A records-topic message: one output, or a JSON array of them (a worker's packed batch)."""
    data = orjson.loads(value)
    outputs: list[Record | RejectedInput] = []
    for item in data if isinstance(data, list) else [data]:
        if item.get("kind") == "RejectedMessage":
            outputs.extend(_rejected_message(item))
        else:
            outputs.append(_output(item))
    return outputs


def _rejected_message(data: dict[str, Any]) -> list[RejectedInput]:
    """One message's rejections, all sharing one `bytes` object (the sink stores it once)."""
    raw = base64.b64decode(data["raw"])
    topic, source = data["topic"], data["source"]
    position, received = int(data["position"]), int(data["received_at_ms"])
    return [
        RejectedInput(
            Rejection(RejectReason(reason), message, field, topic, raw, index, event_id),
            source,
            position,
            received,
        )
        for reason, message, field, index, event_id in data["rejections"]
    ]


def _output(data: dict[str, Any]) -> Record | RejectedInput:
    if data.get("kind") == "RejectedInput":
        rejection = Rejection(
            RejectReason(data["reason"]),
            data["message"],
            data["field"],
            data["topic"],
            base64.b64decode(data["raw"]),
            data["index"],
            data["event_id"],
        )
        return RejectedInput(
            rejection, data["source"], int(data["position"]), int(data["received_at_ms"])
        )
    return record_from_dict(data)


_CHANNELS = {c.value: c for c in Channel}


def routed_from_dict(data: dict[str, Any], watermark_ms: int) -> Routed:
    """A journey input event, trusted: it was validated by the identify stage that sent it.

    Skips pydantic validation (the codec's `message_from_dict` re-validates, which costs more
    than the journey step itself) and takes the partition's watermark at the time of applying.
    """
    e = data["event"]
    ts = int(e["ts_ms"])
    event = trusted_event(
        e["event_id"],
        e["event_type"],
        ts,
        _CHANNELS[e["channel"]],
        e["device_id"],
        e["customer_id"],
        e["properties"],
        e["schema_version"],
    )
    return Routed(
        data["person_id"],
        event,
        watermark_ms,
        int(data["received_at_ms"]),
        str(data.get("source", "")),
        int(data.get("position", -1)),
    )
