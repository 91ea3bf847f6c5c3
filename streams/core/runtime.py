"""The journey as one named, stateful contract: what a runner drives, and nothing else.

Intuition (after bytewax's `StatefulBatchLogic`: on_batch / notify_at / on_notify / snapshot):
a runner owns input, output and time; the journey owns every decision. A runner hands over
inputs in arrival order (`process`), asks when the journey next needs the watermark to move
(`next_deadline`), moves it (`advance`), asks for what is known but not yet decided
(`provisional`, at the end of a run that another will continue), and stores and restores the
whole state between runs (`snapshot` / `restore`). Everything the journey concludes comes out
of those calls as records, so two runners that feed the same inputs and watermarks get the same
records.

`streams.core.pipeline.JourneyPipeline` implements it for the embedded runner (one process:
identity, journey and aggregates composed in memory); tests/core/test_runtime.py checks that
it does. The Faust worker runs identity in a stage of its own, keyed by device
(streams/worker/identify_stage.py), and drives one `JourneyPipeline` per journey partition
with the journey inputs it routes (`deliver`) and its own watermarks (`advance`)
(streams/worker/journey_stage.py): one implementation of route -> step -> schedule -> advance.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

from schemas import Event
from streams.core.config import JourneyConfig
from streams.core.records import Record


class JourneyLogic(Protocol):
    """The journey runtime's contract (see the module docstring)."""

    watermark_ms: int

    def process(self, event: Event, received_at_ms: int | None = None) -> list[Record]:
        """One event in arrival order; may also close what the watermark has passed."""
        ...

    def next_deadline(self) -> int | None:
        """The earliest watermark at which `advance` has something to do (None: nothing)."""
        ...

    def advance(self, watermark_ms: int) -> list[Record]:
        """Move the watermark (never backwards) and close everything it has passed."""
        ...

    def provisional(self) -> list[Record]:
        """Rows for what is still open, each replaced later by its final row."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data."""
        ...

    @classmethod
    def restore(cls, data: dict[str, Any], config: JourneyConfig | None = None) -> Self:
        """A runtime carrying on from `snapshot()`'s data, with this run's configuration."""
        ...
