"""A person's revision history in the journey changelog as append-only chunks.

Intuition: a person keeps the events of the last 48 h of event time (`PersonState.history`,
for revisions), about three quarters of their bytes, and nearly every commit that touches
them only appends the events applied since the last one and forgets the oldest. Writing the
whole person at each such commit rewrites every kept event again and again. So the journey
stage writes a person as a small *head* (everything else, with a reference where the events
would be) and the events as *chunks* under keys of their own, each chunk written once:

- the events appended since the last commit become one new chunk (`\\0h/<p>/<seq>/<person>`);
- forgotten events are dropped by a count (`skip`) in the head, and a chunk whose events are
  all forgotten is deleted (a tombstone, so compaction removes it);
- any other change (a late event put in its place, a revision rewriting the history) writes
  the whole history as one new chunk and deletes the older ones.

Restoring concatenates the head's chunks and drops the first `skip` events: the history
again, exactly (tests/worker/test_history_log.py checks it over arbitrary edits). The head
and the chunks of one commit travel in the same checkpoint record
(streams/worker/checkpoint.py), so a crash keeps all of a commit or none of it.

To tell an append from any other change, the stage remembers the events it last wrote for
each person (`Chunks.written`, a tuple of the same event tuples: a pointer per event).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.core import wire
from streams.core.waiting import Waiting, waiting_order


@dataclass(frozen=True, slots=True)
class Chunks:
    """Where a person's history is in the changelog: its chunks (sequence number, events),
    oldest first, the events of the first ones already forgotten, the next sequence number,
    and the events these hold (after `skip`)."""

    layout: tuple[tuple[int, int], ...]
    skip: int
    next_seq: int
    written: tuple[Waiting, ...]

    def ref(self) -> dict[str, Any]:
        """What the head holds in place of the events."""
        return {"chunks": [list(c) for c in self.layout], "skip": self.skip, "next": self.next_seq}


def chunk_prefix(partition: int) -> str:
    return f"\0h/{partition}/"


def chunk_key(partition: int, person: str, seq: int) -> str:
    return f"{chunk_prefix(partition)}{seq}/{person}"


def person_of(partition: int, key: str) -> str:
    """The person a chunk key belongs to."""
    return key[len(chunk_prefix(partition)) :].split("/", 1)[1]


def deletions(partition: int, person: str, chunks: Chunks | None) -> dict[str, bytes | None]:
    """Tombstones for every chunk of `person` (the person is gone, or written whole)."""
    if chunks is None:
        return {}
    return {chunk_key(partition, person, seq): None for seq, _ in chunks.layout}


def write(
    partition: int, person: str, history: list[Waiting], before: Chunks | None
) -> tuple[Chunks, dict[str, bytes | None]]:
    """The chunks after a commit whose person has `history`, and the changelog entries that
    get there from `before` (new chunk, tombstones)."""
    written = before.written if before is not None else ()
    kept = _kept(written, history)
    out: dict[str, bytes | None] = {}
    if before is None:
        layout: list[tuple[int, int]] = []
        skip = next_seq = 0
    else:
        layout, skip, next_seq = list(before.layout), before.skip, before.next_seq
    if kept is None:  # not an append: the whole history again, in one chunk
        out.update(deletions(partition, person, before))
        layout, skip, new = [], 0, history
    else:
        skip += len(written) - kept
        while layout and layout[0][1] <= skip:
            seq, n = layout.pop(0)
            skip -= n
            out[chunk_key(partition, person, seq)] = None
        new = history[kept:]
    if new:
        out[chunk_key(partition, person, next_seq)] = wire.encode(new)
        layout.append((next_seq, len(new)))
        next_seq += 1
    return Chunks(tuple(layout), skip, next_seq, tuple(history)), out


def _kept(written: tuple[Waiting, ...], history: list[Waiting]) -> int | None:
    """How many of the events written last are still at the start of `history` (the ones
    before them were forgotten, the ones after them are new); None when `history` is not
    "the written events minus a forgotten front, plus new ones at the end"."""
    if not written or not history:
        return 0
    forgotten = bisect_left(written, waiting_order(history[0]), key=waiting_order)
    kept = len(written) - forgotten
    if kept == 0:  # every written event is before the first one kept now: all forgotten
        return 0
    if len(history) < kept or history[:kept] != list(written[forgotten:]):
        return None
    return kept


def restore(
    partition: int, person: str, ref: Mapping[str, Any], chunks: Mapping[str, Any]
) -> tuple[list[Waiting], Chunks]:
    """A person's history from its head's reference and the chunks restored (decoded)."""
    layout = tuple((int(seq), int(n)) for seq, n in ref["chunks"])
    events: list[Any] = []
    for seq, n in layout:
        chunk = chunks.get(chunk_key(partition, person, seq))
        if not isinstance(chunk, list) or len(chunk) != n:
            raise wire.WireFormatError(
                f"journey partition {partition}: chunk {seq} of a person's history is "
                f"missing or damaged in the changelog"
            )
        events += chunk
    skip = int(ref["skip"])
    history = wire.waiting_list(events[skip:])
    return history, Chunks(layout, skip, int(ref["next"]), tuple(history))
