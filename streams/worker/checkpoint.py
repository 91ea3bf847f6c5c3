"""Journey partition checkpoints: why a worker killed with SIGKILL changes no stored result,
and why each touched person reaches Kafka at most once per commit.

Intuition: Faust's at-least-once mode commits input offsets *after* the work, but a table's
changelog is written *during* it, so after a crash the restored state can be ahead of the
offsets that are replayed, and the outputs of the lost moment may be half sent. Three rules
close that gap for a journey partition:

1. Outputs first. A batch of journey messages is processed in memory (the partition's
   `JourneyPipeline`), its outputs (records, hand-overs) are sent and the producer is flushed
   (every output acknowledged) *before* any state of the batch is written to the changelog.
   State is therefore never ahead of outputs.
2. One atomic record per commit. The partition then writes one checkpoint record, keyed
   `\0checkpoint/<p>` in the same changelog partition, holding everything the commit changed:
   the offset of the last journey message applied, the watermark trackers, the held
   hand-overs, and the states of the persons and per-minute aggregate buckets touched since
   the previous commit (each serialised once, however often it changed: updates collapse in
   memory, as in Kafka Streams' record cache and quix-streams' checkpoints).
   A Kafka record is all or nothing and a partition keeps its order, so after a crash the
   changelog holds either nothing of the commit, or its checkpoint.
3. Skip what is applied. On restore, journey messages at or below the checkpoint's offset are
   skipped: their effects are in the restored state and their outputs were acknowledged.
   Messages after it are processed again; they only ever re-send outputs with the same ids
   (ClickHouse keeps one copy), because their effects are not in the restored state.

Once per commit: the checkpoint key is compacted, so a state that is only in an older
checkpoint would be lost. Each entry of checkpoint n is therefore written under its own key
(`<person>`, `\0minute/<p>/<minute>`) at commit n+1, *before* checkpoint n+1, unless commit
n+1 touched it again (then checkpoint n+1 carries it). Its value is the one checkpoint n
committed, so writing it early never puts state ahead; an entry is written once per commit
either way: in a checkpoint while it changes, once under its own key when it stops. On
restore the latest checkpoint's entries win over the own-key values (these are never newer).

Duplicates that cross stages (the identity stage re-sending an event after its own state was
lost, a hand-over sent twice) are caught by the core's replay guards (source positions and
hand-over ids in `PersonState`). See docs/storage.md for the storage side.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.core import wire
from streams.core.codec import aggregates_from_parts, aggregates_meta, minute_buckets
from streams.core.config import JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.core.watermarks import WatermarkTracker
from streams.worker import history_log
from streams.worker.history_log import Chunks

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
    """What a worker keeps for one journey partition it owns (rebuilt on assignment): the
    journey runtime itself (`logic`) and what the Faust driver adds around it."""

    partition: int
    tracker: WatermarkTracker
    logic: JourneyPipeline
    #: Offset of the last journey message applied (-1: none yet).
    applied: int = -1
    #: Stall report (wall clock): watermark last seen, since when, last warning.
    stall_wm: int = -(2**62)
    stall_since: float = 0.0
    stall_reported: float = 0.0
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
    #: The entries of the last checkpoint (key -> serialised value, None: deleted), written
    #: under their own keys at the next commit unless it carries them again (module doc).
    last_entries: dict[str, bytes | None] = field(default_factory=dict)
    #: Where each person's history is in the changelog (streams/worker/history_log.py).
    histories: dict[str, Chunks] = field(default_factory=dict)
    #: How many suppressed subjects the partition's state and changelog are clean of
    #: (streams/worker/erasure.py); kept in the checkpoint, so a restart does not redo it.
    suppressions: int = 0
    #: The runtime's duplicate and revision counts already reported to Prometheus.
    reported_duplicates: int = 0
    reported_revisions: dict[str, int] = field(default_factory=dict)


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


def commit(part: JourneyPartition) -> tuple[dict[str, bytes | None], bytes]:
    """What one commit of `part` writes: the previous checkpoint's entries that this one does
    not carry again (to their own keys, first), and the checkpoint record. Empties the set of
    touched persons and minutes."""
    logic, p = part.logic, part.partition
    entries: dict[str, bytes | None] = {}
    touched = logic.touched if logic.touched is not None else set()
    for key in touched:
        _person_entries(part, key, entries)
    aggregates = logic.aggregates
    for m in part.touched_minutes | aggregates.dirty.keys():
        rows = minute_buckets(aggregates, m)
        entries[minute_key(p, m)] = None if rows is None else wire.encode(rows)
    spill = {k: v for k, v in part.last_entries.items() if k not in entries}
    record = _record(part, entries)
    touched.clear()
    part.touched_minutes.clear()
    part.last_entries = entries
    part.changed = False
    return spill, record


def _person_entries(part: JourneyPartition, key: str, entries: dict[str, bytes | None]) -> None:
    """A touched person's head, and the chunks of their history this commit adds or drops."""
    p, state = part.partition, part.logic.persons.get(key)
    before = part.histories.pop(key, None)
    if state is None or state.history is None:
        entries.update(history_log.deletions(p, key, before))
        entries[key] = None if state is None else wire.person_to_bytes(state)
        return
    chunks, changes = history_log.write(p, key, state.history, before)
    entries.update(changes)
    entries[key] = wire.person_to_bytes(state, chunks.ref())
    part.histories[key] = chunks


def full_commit(
    part: JourneyPartition, erased: set[str], persons: dict[str, Any] | None = None
) -> tuple[dict[str, bytes | None], bytes]:
    """Every live entry of `part` under its own key and a checkpoint carrying no entries:
    written in that order, they are the partition's whole state, so every older record of
    its changelog partition can be deleted (an erasure, streams/worker/erasure.py). The
    `erased` persons get no deletion record (nor do their history chunks): its key would name them; the older records
    are deleted instead, and if that does not happen (a crash), the next start erases
    them again. `persons`: the persons as plain data (`codec.person_to_dict`) when the caller
    has them, possibly cleaned (they are what is written). Empties the touched sets, like
    `commit`."""
    logic, p = part.logic, part.partition
    # deletions not written under their own keys yet, in case the older records stay after all
    gone = set(logic.touched or ()) | set(part.last_entries)
    gone |= {minute_key(p, m) for m in part.touched_minutes}
    # persons are written whole here (their history inline): their chunks are not needed
    for key, chunks in part.histories.items():
        gone.update(history_log.deletions(p, key, chunks))
    part.histories = {}
    chunk_prefix = history_log.chunk_prefix(p)
    entries: dict[str, bytes | None] = {
        key: None
        for key in sorted(gone)
        if (history_log.person_of(p, key) if key.startswith(chunk_prefix) else key) not in erased
    }
    for key, state in logic.persons.items():
        plain = persons.get(key) if persons is not None else None
        written = state if plain is None else wire.person_from_plain(plain)
        entries[key] = wire.person_to_bytes(written)
    for m in logic.aggregates.minutes:
        rows = minute_buckets(logic.aggregates, m)
        if rows is not None:
            entries[minute_key(p, m)] = wire.encode(rows)
    if logic.touched is not None:
        logic.touched.clear()
    part.touched_minutes.clear()
    part.last_entries = {}
    part.changed = False
    return entries, _record(part, {})


def _record(part: JourneyPartition, entries: dict[str, bytes | None]) -> bytes:
    """The checkpoint record of `part` carrying `entries` (MessagePack, each entry embedded
    as the bytes it was encoded to, so it is serialised once)."""
    logic = part.logic
    record = {
        "applied": part.applied,
        "advanced_to": logic.watermark_ms,
        "aggregates": aggregates_meta(logic.aggregates),
        "tracker": tracker_to_dict(part.tracker),
        "peers": tracker_to_dict(part.peers),
        "held": part.held,
        "suppressions": part.suppressions,
        "entries": {k: None if v is None else msgspec.Raw(v) for k, v in entries.items()},
    }
    return wire.encode(record)


def restore_partition(
    p: int,
    data: MutableMapping[Any, Any],
    owns: Callable[[str], bool],
    config: JourneyConfig,
    input_sources: list[str],
    now_s: float,
) -> JourneyPartition:
    """Partition `p`'s state from what the changelog restored into `data` (the Faust table's
    store): the latest checkpoint's entries over the own-key values. Takes p's keys out of
    `data`: from here on the runtime holds them."""
    saved = data.pop(checkpoint_key(p), None)
    if isinstance(saved, bytes):  # MessagePack, or the JSON of earlier versions
        saved = wire.decode(saved)
    prefix = minute_key(p, 0)[:-1]
    chunk_prefix = history_log.chunk_prefix(p)
    values: dict[str, Any] = {}
    for key in list(data.keys()):
        if not isinstance(key, str):
            continue
        internal = is_internal_key(key)
        if (internal and key.startswith((prefix, chunk_prefix))) or (not internal and owns(key)):
            values[key] = data.pop(key)
    logic = JourneyPipeline(config, shard=f"journey-{p}")
    logic.touched = set()
    if not saved:
        tracker = WatermarkTracker(idle_after_s=None)
        tracker.expect(input_sources, now_s)
        return JourneyPartition(p, tracker, logic)
    entries: dict[str, Any] = dict(saved.get("entries", {}))
    # checkpoints written before entries were collapsed (one field per kind)
    entries.update(saved.get("persons", {}))
    entries.update({minute_key(p, int(m)): v for m, v in saved.get("minutes", {}).items()})
    values.update(entries)
    minutes: dict[int, Any] = {}
    chunks: dict[str, Any] = {}
    heads: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bytes):
            value = wire.decode(value)
        if value is None:
            continue
        if key.startswith(prefix):
            minutes[int(key[len(prefix) :])] = value
        elif key.startswith(chunk_prefix):
            chunks[key] = value
        else:
            heads[key] = value
    histories: dict[str, Chunks] = {}
    for key, value in heads.items():
        state = logic.persons[key] = wire.person_from_plain(value)
        ref = wire.history_ref(value)
        if ref is not None:
            state.history, histories[key] = history_log.restore(p, key, ref, chunks)
    logic.aggregates = aggregates_from_parts(saved["aggregates"], minutes)
    logic.watermark_ms = saved["advanced_to"]
    logic.reschedule()
    part = JourneyPartition(
        partition=p,
        tracker=tracker_from_dict(saved["tracker"], now_s),
        logic=logic,
        applied=saved["applied"],
        peers=tracker_from_dict(saved["peers"], now_s) if "peers" in saved else WatermarkTracker(),
        held=[(int(h[0]), int(h[1]), int(h[2]), h[3]) for h in saved.get("held", [])],
        suppressions=int(saved.get("suppressions", 0)),
        histories=histories,
    )
    # the checkpoint's entries may not be under their own keys yet: written at the next commit
    part.last_entries = {
        k: None if v is None else _entry_bytes(k, v, prefix) for k, v in entries.items()
    }
    part.changed = True
    return part


def _entry_bytes(key: str, value: Any, minute_prefix: str) -> bytes:
    """A restored checkpoint entry as the bytes to write under its own key (in this version's
    form, whichever form the checkpoint held it in)."""
    if isinstance(value, bytes):
        value = wire.decode(value)
    if key.startswith(minute_prefix) or isinstance(value, list):  # rows, chunk, person array
        return wire.encode(value)
    return wire.person_to_bytes(wire.person_from_plain(value))  # a person dict (JSON)
