"""Issue 11 §1: every journey story through the worker's stages, driven in-process without a
broker (tests/worker/inmemory.py), gives the tables of the embedded runner's core."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.records import EventRow, MinuteAggregate
from tests.journeys.core_runner import current, outcome_from_records, run_core
from tests.journeys.outcome import check
from tests.journeys.stories import STORIES
from tests.journeys.story import Story
from tests.worker.inmemory import InMemoryWorker

pytestmark = pytest.mark.unit


def tables(records: list[object]) -> tuple[list[object], dict[tuple[object, ...], float]]:
    """What storage shows: the current rows, and the per-minute totals summed over shards (the
    worker counts per journey partition, the embedded runner in one shard)."""
    # arrival times are each runner's own (a file has none, Kafka has the broker's)
    rows = [
        replace(r, received_at_ms=0) if isinstance(r, EventRow) else r for r in current(records)
    ]
    newest: dict[tuple[object, ...], MinuteAggregate] = {}
    for r in rows:  # each row's newest version, as storage keeps it
        if isinstance(r, MinuteAggregate):
            row_key = (r.minute_ms, r.channel, r.metric, r.key, r.shard)
            if row_key not in newest or newest[row_key].version < r.version:
                newest[row_key] = r
    totals: dict[tuple[object, ...], float] = {}
    for r in newest.values():
        key = (r.minute_ms, r.channel, r.metric, r.key)
        totals[key] = totals.get(key, 0) + r.count + r.amount
    others = sorted((r for r in rows if not isinstance(r, MinuteAggregate)), key=repr)
    return others, {k: v for k, v in totals.items() if v}


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_story_through_the_worker_stages(story: Story) -> None:
    worker = InMemoryWorker()
    worker.feed(story.messages())
    records = [r for r in worker.outputs() if not hasattr(r, "rejection")]
    embedded_outcome, embedded_records = run_core(story)
    outcome = outcome_from_records(records, embedded_outcome.duplicates)
    check(story, outcome)
    assert tables(records) == tables(embedded_records)


@pytest.mark.parametrize("lose", [0, 2], ids=lambda n: f"lose-{n}-writes")
@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_story_through_a_worker_killed_after_every_input(story: Story, lose: int) -> None:
    """Killed (SIGKILL) after every input message and restored from the changelog, losing the
    last state writes of each journey partition: the same tables (streams/worker/checkpoint.py:
    outputs first, one checkpoint record per commit, each entry under its own key later)."""
    steps = len(list(story.messages()))
    worker = InMemoryWorker()
    worker.feed(story.messages(), kill_after=range(steps), lose=lose)
    records = [r for r in worker.outputs() if not hasattr(r, "rejection")]
    _, embedded_records = run_core(story)
    # as distinct contents: a replay may send an identical row twice (at-least-once), which
    # storage keeps once (tests/kafka/harness.py compares the same way)
    rows, totals = tables(records)
    embedded_rows, embedded_totals = tables(embedded_records)
    assert set(map(repr, rows)) == set(map(repr, embedded_rows))
    assert totals == embedded_totals
