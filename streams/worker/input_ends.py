"""When is an input partition read to its end? The facts behind the idle rule.

Intuition: an input partition may be declared idle (its watermark then follows the wall clock,
streams/worker/identify_stage.py) only once everything in it is processed. Three positions
look alike and are not:
- *processed*: the stage has applied the record (or the group had, before a restart:
  the committed offset);
- *handed*: Faust gave the record to the agent (it may still wait in the agent's batch);
- *fetched*: the Kafka client returned it to Faust, which may still hold it in its buffers.
Only the first counts. A partition resumed after a long pause is fetched to its end well
before it is processed; taken for idle then, its watermark jumped to the wall clock for good.

Two cases need more than "processed reaches the end":
- Transaction markers: every transaction a producer commits leaves an offset no consumer
  sees, so a transactional producer's partition ends with one. A few such trailing offsets
  count as read once the client is past them, a re-read from the processed position brought
  nothing, and that has held for the idle period. (Faust's own "read offset" cannot tell:
  after a seek it means the next offset to read, after a delivery the last one delivered;
  it is shown in stall reports only.)
- Stranded records: seen after a restart, the client's position was past records Faust never
  handed over, and the partition stayed quiet, so they would never come. A quiet partition
  whose client is ahead of what was processed is read again from the processed position,
  once per position (`stranded`); duplicates are harmless (replay guards).
Plain data and decisions, no Kafka client: unit-tested in tests/worker/test_input_ends.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Offsets at the end of a partition that may be transaction markers (one per transaction a
#: producer commits after its last record; a few producers, a few).
TRAILING_MARKERS_MAX = 4


@dataclass(frozen=True, slots=True)
class InputEnd:
    """How far an input partition is written and read, as a tick sees it."""

    end: int  # the end offset (next offset to be written)
    committed: int  # the group's committed offset (next to read); survives restarts
    fetched: int  # the Kafka client's position: past everything it has returned
    handed: int | None  # Faust's read offset (shown in reports; ambiguous, see above)


@dataclass(slots=True)
class InputEnds:
    """Per input partition: what the last tick saw and what was tried, to decide idleness."""

    idle_after_s: float
    #: partition -> the last tick's view (for stall reports)
    marks: dict[str, InputEnd] = field(default_factory=dict)
    #: partition -> (processed position, since when) only markers may be left
    marker_wait: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: partition -> the position it was last read again from
    reread: dict[str, int] = field(default_factory=dict)

    def stranded(self, source: str, processed: int, mark: InputEnd, paused: bool) -> int | None:
        """The position to read a quiet partition again from, or None. Once per position."""
        done = max(processed, mark.committed)
        if done >= mark.end or mark.fetched <= done or paused:
            return None
        if self.reread.get(source) == done:
            return None  # tried: what is left can only be transaction markers
        self.reread[source] = done
        return done

    def read_to_end(self, source: str, processed: int, mark: InputEnd, now: float) -> bool:
        """Everything in the partition processed, by this worker or by the group before it
        (trailing transaction markers aside: see the module docstring)."""
        done = max(processed, mark.committed)
        if done >= mark.end:
            self.marker_wait.pop(source, None)
            return True
        if not (
            mark.fetched >= mark.end
            and mark.end - done <= TRAILING_MARKERS_MAX
            and self.reread.get(source) == done
        ):
            self.marker_wait.pop(source, None)
            return False
        since = self.marker_wait.get(source)
        if since is None or since[0] != done:
            self.marker_wait[source] = since = (done, now)
        return now - since[1] >= self.idle_after_s

    def describe(self, source: str, processed: int, quiet_s: float, paused: bool) -> str | None:
        mark = self.marks.get(source)
        if mark is None:
            return None
        return (
            f"end {mark.end}, processed to {processed} ({quiet_s:.0f} s ago), "
            f"committed {mark.committed}, fetched {mark.fetched}, handed {mark.handed}, "
            f"{'paused' if paused else 'not paused'}"
        )

    def forget(self, source: str) -> None:
        self.marks.pop(source, None)
        self.marker_wait.pop(source, None)
        self.reread.pop(source, None)
