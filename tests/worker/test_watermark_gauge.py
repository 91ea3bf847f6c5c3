"""The worker's watermark gauge says how far *all* its journey partitions have concluded.

`parcours_watermark_timestamp_seconds` is what an operator, or a test, waits on before
trusting the records topic: when it reads T, every journey partition of the process has applied
T and what that concluded is sent. It was the watermark of whichever partition had just
entered a minute, set before that partition's records left, so the 10-hours-late store batch
test could stop the worker with another partition's conclusions unsent
(tests/kafka/test_late_store_batch.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from streams.metrics import REGISTRY
from tests.journeys.stories import STORIES
from tests.worker.inmemory import InMemoryWorker

pytestmark = pytest.mark.unit

GAUGE = "parcours_watermark_timestamp_seconds"


def _gauge() -> float | None:
    return REGISTRY.get_sample_value(GAUGE)


@pytest.mark.parametrize("story", STORIES[:12], ids=lambda s: s.name)
def test_the_gauge_is_the_lowest_partition_and_moves_only_after_its_outputs_left(
    story: Any,
) -> None:
    worker = InMemoryWorker()
    stage = worker.stage
    during: list[tuple[float | None, float | None]] = []  # (gauge before the batch, at a send)
    after: list[tuple[float | None, float]] = []  # (gauge, lowest partition) after a batch
    before: list[float | None] = [None]
    records_send = worker.records.send
    process = stage.process

    async def send(**kwargs: Any) -> None:
        during.append((before[0], _gauge()))
        await records_send(**kwargs)

    async def tracked(batch: Any) -> None:
        before[0] = _gauge()
        await process(batch)
        lowest = min(p.logic.watermark_ms for p in stage.parts.values()) / 1000
        after.append((_gauge(), lowest))

    worker.records.send = send  # type: ignore[method-assign]
    stage.process = tracked  # type: ignore[method-assign]
    worker.feed(story.messages())

    assert after and during, "the story concluded nothing through the journey stage"
    # within a batch, its records leave while the gauge still reads what it read before it
    assert all(at_send == gauge_before for gauge_before, at_send in during)
    # after a batch, the gauge is the lowest journey partition's watermark (the stage's
    # watermark for a partition that has heard of none yet is left out until it has)
    for gauge, lowest in after:
        if lowest > -(2**62) / 1000:
            assert gauge == lowest
