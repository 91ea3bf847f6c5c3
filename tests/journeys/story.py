"""Journeys as data: a person's named story, and what Parcours must conclude from it.

A `Story` is a list of `Step`s (what happened, when, on which channel and device) plus an
`Expect` (the sessions, signals and identity links the pipeline must produce). Stories are pure
data so the same ones run through the core, the embedded runner on chDB and the Faust workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

BASE = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)
TOPIC_OF = {"web": "clickstream", "app": "app-events", "store": "store-events"}


@dataclass(frozen=True)
class Step:
    at: float  # seconds after BASE
    channel: str  # web | app | store
    type: str
    device: str | None = None
    customer: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class S:
    """An expected session: its person, size, channels and outcome."""

    person: str
    events: int
    channels: tuple[str, ...]
    bounced: bool = False
    converted: bool = False


@dataclass(frozen=True)
class Expect:
    sessions: list[S]
    #: Exact number of signals per type; any type not listed must not fire.
    signals: dict[str, int] = field(default_factory=dict)
    #: (device_id, customer_id) pairs in link order.
    links: list[tuple[str, str]] = field(default_factory=list)
    late: int = 0
    duplicates: int = 0
    #: Person of each event id at query time (after identity links), when the story checks it.
    resolved_persons: dict[str, str] = field(default_factory=dict)
    merges: int = 0
    #: Purchases flagged `duplicate_transaction` (a transaction already counted, re-sent).
    duplicate_transactions: int = 0
    #: When set: revenue and conversions in the per-minute aggregates, and revenue summed over
    #: the sessions (a late purchase counts in the former only).
    revenue: float | None = None
    conversions: int | None = None
    session_revenue: float | None = None


@dataclass(frozen=True)
class Story:
    name: str
    steps: list[Step]
    expect: Expect
    #: Arrival order as indexes into steps (default: the order of steps).
    arrival: list[int] | None = None

    def arrivals(self) -> Iterator[tuple[int, Step]]:
        order = self.arrival if self.arrival is not None else range(len(self.steps))
        for i in order:
            yield i, self.steps[i]

    def event_id(self, index: int) -> str:
        step = self.steps[index]
        return step.id or f"{self.name}-{index}"

    def event_json(self, index: int) -> dict[str, Any]:
        step = self.steps[index]
        doc: dict[str, Any] = {
            "event_id": self.event_id(index),
            "event_type": step.type,
            "occurred_at": (BASE + timedelta(seconds=step.at)).isoformat(timespec="milliseconds"),
            "properties": step.props,
        }
        if step.device is not None:
            doc["device_id"] = step.device
        if step.customer is not None:
            doc["customer_id"] = step.customer
        return doc

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(topic, Kafka message value) in arrival order."""
        for i, step in self.arrivals():
            yield TOPIC_OF[step.channel], orjson.dumps(self.event_json(i))

    def ingest_lines(self) -> bytes:
        """The story in the `parcours ingest` JSON-lines format."""
        return b"".join(
            orjson.dumps({"topic": topic, "value": orjson.loads(value)}) + b"\n"
            for topic, value in self.messages()
        )
