"""Several runs over consecutive pieces of an input read as one run over the whole input.

The journey state a run ends in (people, devices, open sessions and checkout attempts, events
waiting for the watermark, dedup memory, per-minute totals, the watermark) is saved and the next
run restored from it, so where an input is cut makes no difference: not inside a session, not
inside an open checkout attempt, not between two events that arrive out of order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.embedded.runner import EmbeddedRunner
from streams.simulate import SimulationConfig, generate
from tests.journeys.stories import STORIES
from tests.journeys.story import Story
from tests.runs.memory import MemorySink, MemoryStore, tables

#: A fixed wall clock (decode's "not in the future" check, received_at).
NOW_S = 1_800_000_000.0

Message = tuple[str, bytes]


def run_in_pieces(messages: Sequence[Message], cuts: Sequence[int], *, close: bool) -> MemorySink:
    """Feed `messages` cut at `cuts`, one runner per piece restored from the previous one's
    saved state; the last run closes everything when `close`."""
    sink, store = MemorySink(), MemoryStore()
    bounds = [0, *sorted(cuts), len(messages)]
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        runner = EmbeddedRunner(sink, clock=lambda: NOW_S, store=store)  # type: ignore[arg-type]
        assert runner.restored == (i > 0)
        for position in range(start, end):
            topic, value = messages[position]
            runner.feed_message(topic, value, "input", position + 1)
        last = i == len(bounds) - 2
        runner.finish(close=close and last)
    return sink


def story_messages(story: Story) -> list[Message]:
    return list(story.messages())


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_a_story_cut_at_any_line_reads_as_one_run(story: Story) -> None:
    messages = story_messages(story)
    whole = tables(run_in_pieces(messages, [], close=True).records)
    for cut in range(1, len(messages)):
        pieces = tables(run_in_pieces(messages, [cut], close=True).records)
        assert pieces == whole, f"cut after line {cut}"


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_after_each_run_open_sessions_show_what_is_known(story: Story) -> None:
    """Runs that leave the end open read like one run that leaves it open: the sessions still
    going on are shown (`is_open`), then replaced by their final rows."""
    messages = story_messages(story)
    whole = tables(run_in_pieces(messages, [], close=False).records)
    for cut in range(1, len(messages)):
        assert tables(run_in_pieces(messages, [cut], close=False).records) == whole


def test_open_sessions_are_marked_open_and_replaced_when_they_close() -> None:
    story = next(s for s in STORIES if len(s.steps) >= 3)
    messages = story_messages(story)
    sink = run_in_pieces(messages, [], close=False)
    shown = tables(sink.records)["sessions"]
    still_open = {sid for sid, row in shown.items() if row[-1]}
    assert still_open  # the input ends within the gap of the last session: it is open
    closed = tables(run_in_pieces(messages, [], close=True).records)["sessions"]
    assert set(closed) >= set(shown) and not any(row[-1] for row in closed.values())
    # an open row is replaced by its final one, never shown beside it
    assert all(closed[sid][3] >= shown[sid][3] for sid in still_open)


_SIMULATED: list[Message] = []


def simulated() -> list[Message]:
    """A small simulated population: logins, shared devices, store receipts, duplicates."""
    if not _SIMULATED:
        config = SimulationConfig(customers=60, days=1, seed=5)
        for msg in generate(config):
            value = msg.payload if isinstance(msg.payload, bytes) else orjson.dumps(msg.payload)
            _SIMULATED.append((msg.topic, value))
    return _SIMULATED


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_simulated_traffic_cut_anywhere_reads_as_one_run(data: st.DataObject) -> None:
    messages = simulated()
    cuts = data.draw(
        st.lists(st.integers(1, len(messages) - 1), min_size=1, max_size=4, unique=True)
    )
    close = data.draw(st.booleans())
    whole = tables(run_in_pieces(messages, [], close=close).records)
    assert tables(run_in_pieces(messages, cuts, close=close).records) == whole


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_after_each_run_every_event_read_is_shown(story: Story) -> None:
    """Events still within the grace period at the end of a run (waiting for the watermark) are
    applied before the run ends: today's last minutes are in the tables today, and the next
    run's earlier events revise them into place."""
    messages = story_messages(story)
    for cut in range(1, len(messages) + 1):
        shown = tables(run_in_pieces(messages[:cut], [], close=False).records)["events"]
        for _, value in messages[:cut]:
            event_id = orjson.loads(value)["event_id"] if value.startswith(b"{") else None
            if event_id is not None and not event_id.startswith("bad"):
                assert event_id in shown, (cut, event_id)
