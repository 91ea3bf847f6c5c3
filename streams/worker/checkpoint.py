"""Journey partition checkpoints: why a worker killed with SIGKILL changes no stored result.

Intuition: Faust's at-least-once mode commits input offsets *after* the work, but a table's
changelog is written *during* it, so after a crash the restored state can be ahead of the
offsets that are replayed, and the outputs of the lost moment may be half sent. Three rules
close that gap for a journey partition:

1. Outputs first. A batch of journey messages is processed in memory, its outputs (records,
   hand-overs) are sent and the producer is flushed (every output acknowledged) *before* any
   state of the batch is written to the changelog. State is therefore never ahead of outputs.
2. One atomic record per batch. The partition then writes one checkpoint record, keyed
   `\0checkpoint/<p>` in the same changelog partition, holding everything the batch changed:
   the offset of the last journey message applied, the watermark tracker, and the states of
   the persons and the per-minute aggregate buckets the batch touched. The per-person and
   per-minute writes (keys `<person>` and `\0minute/<p>/<minute>`) follow it.
   A Kafka record is all or nothing and a partition keeps its order, so after a crash the
   changelog holds either nothing of the batch, or its checkpoint (plus any prefix of the
   per-person writes, which the checkpoint overrides on restore).
3. Skip what is applied. On restore, journey messages at or below the checkpoint's offset are
   skipped: their effects are in the restored state and their outputs were acknowledged.
   Messages after it are processed again; they only ever re-send outputs with the same ids
   (ClickHouse keeps one copy), because their effects are not in the restored state.

Duplicates that cross stages (the identity stage re-sending an event after its own state was
lost, a hand-over sent twice) are caught by the core's replay guards (source positions and
hand-over ids in `PersonState`). See docs/storage.md for the storage side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core.aggregates import AggregateState
from streams.core.codec import aggregates_from_parts, aggregates_meta
from streams.core.watermarks import WatermarkTracker

#: Keys of the partition's own records start with NUL, which no person id does in practice.
INTERNAL = "\0"


def checkpoint_key(partition: int) -> str:
    return f"{INTERNAL}checkpoint/{partition}"


def minute_key(partition: int, minute_ms: int) -> str:
    return f"{INTERNAL}minute/{partition}/{minute_ms}"


def is_internal_key(key: object) -> bool:
    return isinstance(key, str) and key.startswith(INTERNAL)


def internal_partition(key: str) -> int:
    return int(key.split("/")[1])


@dataclass(slots=True)
class JourneyPartition:
    """What a worker keeps for one journey partition it owns (rebuilt on assignment)."""

    partition: int
    tracker: WatermarkTracker
    aggregates: AggregateState
    #: Offset of the last journey message applied (-1: none yet).
    applied: int = -1
    #: Watermark at the last `advance` over the partition's persons.
    advanced_to: int = -(2**62)
    #: person -> smallest watermark at which `advance` changes its state.
    due: dict[str, int] = field(default_factory=dict)
    #: Stall report (wall clock): watermark last seen, since when, last warning.
    stall_wm: int = -(2**62)
    stall_since: float = 0.0
    stall_reported: float = 0.0
    #: Persons with an open session, and with an open checkout attempt (for the gauges).
    open_sessions: set[str] = field(default_factory=set)
    open_checkouts: set[str] = field(default_factory=set)
    #: (deadline, person) for every entry ever put in `due`; stale ones are skipped when popped.
    due_heap: list[tuple[int, str]] = field(default_factory=list)
    #: Persons changed since the last checkpoint.
    touched: set[str] = field(default_factory=set)
    #: Aggregate minutes flushed or forgotten since the last checkpoint.
    touched_minutes: set[int] = field(default_factory=set)
    #: Whether anything changed since the last checkpoint (offsets, aggregates, watermark).
    changed: bool = False
    #: The other journey partitions' input watermarks (streams/worker/journey_stage.py).
    peers: WatermarkTracker = field(default_factory=WatermarkTracker)
    #: This partition's input watermark as last broadcast, and when (wall clock).
    told_wm: int = -(2**62)
    told_at: float = 0.0
    #: Hand-overs waiting for this partition's watermark to reach the link's watermark:
    #: (watermark, offset and index of arrival, journey message as plain data), sorted.
    held: list[tuple[int, int, int, dict[str, Any]]] = field(default_factory=list)


def tracker_to_dict(tracker: WatermarkTracker) -> dict[str, Any]:
    return {
        "idle_after_s": tracker.idle_after_s,
        "current": tracker.current,
        "upstreams": {name: wm for name, (wm, _) in tracker.upstreams.items()},
    }


def tracker_from_dict(data: dict[str, Any], now_s: float) -> WatermarkTracker:
    """Restored upstreams count as just heard from: a restart is not silence, so it must not
    push the watermark to the wall clock before the upstreams had a chance to speak again."""
    return WatermarkTracker(
        idle_after_s=data["idle_after_s"],
        upstreams={name: (wm, now_s) for name, wm in data["upstreams"].items()},
        current=data["current"],
    )


def partition_to_dict(part: JourneyPartition) -> dict[str, Any]:
    """The checkpoint's own fields; the caller adds the touched persons and minutes."""
    return {
        "applied": part.applied,
        "advanced_to": part.advanced_to,
        "aggregates": aggregates_meta(part.aggregates),
        "tracker": tracker_to_dict(part.tracker),
        "peers": tracker_to_dict(part.peers),
        "held": part.held,
    }


def partition_from_dict(
    partition: int, data: dict[str, Any], minutes: dict[int, list[list[Any]]], now_s: float
) -> JourneyPartition:
    return JourneyPartition(
        partition=partition,
        tracker=tracker_from_dict(data["tracker"], now_s),
        aggregates=aggregates_from_parts(data["aggregates"], minutes),
        applied=data["applied"],
        advanced_to=data["advanced_to"],
        peers=tracker_from_dict(data["peers"], now_s) if "peers" in data else WatermarkTracker(),
        held=[(int(h[0]), int(h[1]), int(h[2]), h[3]) for h in data.get("held", [])],
    )
