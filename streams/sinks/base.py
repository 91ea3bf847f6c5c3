"""The contract every sink meets.

Borrowed from quix-streams' sink contract: records are *added* (cheap, buffered) and *flushed*
(the expensive write); a flush either writes everything buffered or raises, and writing the same
batch twice must not duplicate anything (sinks are idempotent on retry). Callers commit their
input position only after a successful flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from schemas import Rejection
from streams.core.records import Record


@dataclass(frozen=True, slots=True)
class RejectedInput:
    """A rejection with where it came from: the position makes its stored id stable."""

    rejection: Rejection
    source: str
    position: int
    received_at_ms: int


@dataclass
class FlushReport:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class Sink(Protocol):
    def add(self, records: Iterable[Record]) -> None:
        """Buffer records; may flush when a buffer is full or the flush interval has passed."""

    def add_rejections(self, rejections: Iterable[RejectedInput]) -> None:
        """Buffer rejected inputs for the dead-letter table."""

    def flush(self) -> FlushReport:
        """Write everything buffered, or raise; idempotent if the same batch is written again."""

    def close(self) -> None:
        """Flush and release resources."""
