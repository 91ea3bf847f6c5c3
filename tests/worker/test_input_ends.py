"""The idle rule's facts (streams/worker/input_ends.py), without a broker: processed, not
fetched, is what counts; trailing transaction markers and stranded records."""

from __future__ import annotations

import pytest

from streams.worker.input_ends import TRAILING_MARKERS_MAX, InputEnd, InputEnds

pytestmark = pytest.mark.unit

P = "clickstream/3"


def test_processed_to_the_end_is_read_to_the_end() -> None:
    ends = InputEnds(idle_after_s=10)
    assert ends.read_to_end(P, 66, InputEnd(end=66, committed=0, fetched=66, handed=65), 0.0)


def test_committed_by_the_group_counts_after_a_restart() -> None:
    ends = InputEnds(idle_after_s=10)
    assert ends.read_to_end(P, 0, InputEnd(end=66, committed=66, fetched=66, handed=None), 0.0)


def test_fetched_to_the_end_but_not_processed_is_not_read() -> None:
    """A partition resumed after a long pause: fetched at once, processed later."""
    ends = InputEnds(idle_after_s=10)
    mark = InputEnd(end=5000, committed=1200, fetched=5000, handed=1300)
    assert not ends.read_to_end(P, 1301, mark, 0.0)
    assert not ends.read_to_end(P, 1301, mark, 1_000.0)


def test_stranded_records_are_read_again_once_per_position() -> None:
    ends = InputEnds(idle_after_s=10)
    mark = InputEnd(end=66, committed=45, fetched=66, handed=None)
    assert ends.stranded(P, 45, mark, paused=False) == 45
    assert ends.stranded(P, 45, mark, paused=False) is None  # tried at 45 already
    assert ends.stranded(P, 50, mark, paused=False) == 50  # progress: a new position
    assert ends.stranded(P, 66, mark, paused=False) is None  # nothing left
    assert InputEnds(10).stranded(P, 45, mark, paused=True) is None  # paused: not stranded


def test_trailing_transaction_markers_count_as_read_after_a_reread_and_the_idle_period() -> None:
    ends = InputEnds(idle_after_s=10)
    mark = InputEnd(end=101, committed=0, fetched=101, handed=99)  # offset 100: a marker
    assert not ends.read_to_end(P, 100, mark, 0.0)  # no re-read tried yet
    assert ends.stranded(P, 100, mark, paused=False) == 100
    assert not ends.read_to_end(P, 100, mark, 1.0)
    assert not ends.read_to_end(P, 100, mark, 10.5)
    assert ends.read_to_end(P, 100, mark, 11.0)


def test_more_than_a_few_missing_offsets_are_never_taken_for_markers() -> None:
    ends = InputEnds(idle_after_s=10)
    done = 100
    mark = InputEnd(end=done + TRAILING_MARKERS_MAX + 1, committed=0, fetched=200, handed=99)
    assert ends.stranded(P, done, mark, paused=False) == done
    assert not ends.read_to_end(P, done, mark, 0.0)
    assert not ends.read_to_end(P, done, mark, 1_000.0)


def test_a_reread_that_brings_a_record_is_progress_not_markers() -> None:
    ends = InputEnds(idle_after_s=10)
    mark = InputEnd(end=102, committed=0, fetched=102, handed=100)
    assert ends.stranded(P, 100, mark, paused=False) == 100
    assert not ends.read_to_end(P, 100, mark, 0.0)
    # the record at 100 came and was processed: 101 left, a new position to try once more
    assert not ends.read_to_end(P, 101, mark, 20.0)
    assert ends.stranded(P, 101, mark, paused=False) == 101
    assert not ends.read_to_end(P, 101, mark, 21.0)
    assert ends.read_to_end(P, 101, mark, 31.0)


def test_forget_drops_what_was_seen_and_tried() -> None:
    ends = InputEnds(idle_after_s=10)
    mark = InputEnd(end=66, committed=45, fetched=66, handed=None)
    ends.marks[P] = mark
    assert ends.stranded(P, 45, mark, paused=False) == 45
    ends.forget(P)
    assert ends.describe(P, 45, 3.0, False) is None
    assert ends.stranded(P, 45, mark, paused=False) == 45
