"""A person's history as append-only chunks in the journey changelog
(streams/worker/history_log.py): restored exactly after any edit, nothing left behind, and
each event written once while the history only grows at its end and forgets its start."""

from __future__ import annotations

import pickle
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, decode
from streams.core import wire
from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.identity import DeviceIdentity, LinkNotice, Routed, identity_step
from streams.core.pipeline import JourneyPipeline
from streams.core.waiting import Waiting
from streams.core.watermarks import WatermarkTracker
from streams.simulate import SimulationConfig, generate
from streams.worker import history_log
from streams.worker.checkpoint import (
    JourneyPartition,
    checkpoint_key,
    commit,
    full_commit,
    restore_partition,
)

P, PERSON = 3, "c-lea"


def _event(ts: int, n: int) -> Waiting:
    return (
        ts,
        f"e{n:05}",
        "page_view",
        "web",
        "d1",
        None,
        1,
        0,
        ts,
        "clickstream/0",
        n,
        "page",
        "/",
    )


def _apply(log: dict[str, Any], entries: dict[str, bytes | None]) -> None:
    """What compaction keeps of a changelog partition: the newest value of each key."""
    for key, value in entries.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = value


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["append", "forget", "insert", "rewrite", "commit"]), st.integers(0, 4)
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_any_edits_restore_exactly_and_leave_no_chunk_behind(ops: list[tuple[str, int]]) -> None:
    history: list[Waiting] = []
    log: dict[str, Any] = {}
    chunks: history_log.Chunks | None = None
    n = 0
    for op, k in [*ops, ("commit", 0)]:
        if op == "append":
            for _ in range(k):
                n += 1
                history.append(_event(1000 * n, n))
        elif op == "forget":
            del history[:k]
        elif op == "insert" and history:
            n += 1
            at = min(k, len(history) - 1)
            history.insert(at, _event(history[at][0], n - 100_000))  # same time, earlier id
        elif op == "rewrite":
            history = [_event(w[0], int(w[1][1:]) + 7) for w in history[k:]]
        chunks, entries = history_log.write(P, PERSON, history, chunks)
        _apply(log, entries)
        decoded = {key: wire.decode(v) for key, v in log.items()}
        restored, again = history_log.restore(P, PERSON, chunks.ref(), decoded)
        assert restored == history
        assert again == chunks
        # every chunk kept is one the head refers to: compaction can drop all the others
        assert set(log) == {history_log.chunk_key(P, PERSON, s) for s, _ in chunks.layout}


def test_growing_and_forgetting_writes_each_event_once() -> None:
    history: list[Waiting] = []
    chunks, written = None, 0
    for n in range(1, 200):
        history.append(_event(1000 * n, n))
        if n % 3 == 0:
            del history[0]
        chunks, entries = history_log.write(P, PERSON, history, chunks)
        written += sum(len(wire.decode(v)) for v in entries.values() if v is not None)
    assert written == 199
    assert chunks is not None and sum(c[1] for c in chunks.layout) - chunks.skip == len(history)


class _Partition:
    """One journey partition fed as the worker's journey stage feeds it (`deliver` and
    `advance`, every person on this partition), identity resolved beside it."""

    def __init__(self) -> None:
        self.config = JourneyConfig()
        logic = JourneyPipeline(self.config, shard=f"journey-{P}")
        logic.touched = set()
        self.part = JourneyPartition(P, WatermarkTracker(), logic)
        self.devices: dict[str, DeviceIdentity] = {}
        self.newest = -(2**62)

    def feed(self, event: Event, position: int) -> None:
        logic = self.part.logic
        self.newest = max(self.newest, event.ts_ms)
        watermark = self.newest - self.config.grace_ms
        if watermark // MINUTE_MS > logic.watermark_ms // MINUTE_MS:
            logic.advance(watermark)
        key = event.device_id
        device, routed = identity_step(
            self.devices.get(key) if key else None,
            event,
            self.config,
            watermark_ms=logic.watermark_ms,
            received_at_ms=position,
            source="clickstream/0",
            position=position,
        )
        if key and device is not None:
            self.devices[key] = device
        queue: list[Any] = [m for m in routed if isinstance(m, Routed | LinkNotice)]
        while queue:
            _, onward = logic.deliver(queue.pop(0))
            queue[:0] = onward
        self.part.applied = position


def _simulated(n_events: int) -> list[Event]:
    out: list[Event] = []
    for msg in generate(SimulationConfig(customers=120, days=3, seed=8, malformed_rate=0.0)):
        if isinstance(msg.payload, bytes):
            continue
        out += [e for e in decode(orjson.dumps(msg.payload), msg.topic) if isinstance(e, Event)]
        if len(out) >= n_events:
            return out
    return out


def test_partition_restores_exactly_after_every_commit() -> None:
    """A journey partition committed every few events, its changelog compacted, restored at
    every commit: the same persons (histories included) as the live ones, and less written
    than whole persons would be."""
    fed = _Partition()
    part, logic = fed.part, fed.part.logic
    log: dict[str, Any] = {}
    written = whole = 0
    for i, event in enumerate(_simulated(4000)):
        fed.feed(event, i)
        if i % 7:
            continue
        whole += sum(
            len(wire.person_to_bytes(s))
            for key in logic.touched or ()
            if (s := logic.persons.get(key))
        )
        spill, record = commit(part)
        written += sum(len(v or b"") for v in spill.values()) + len(record)
        _apply(log, {**spill, checkpoint_key(P): record})
        if i % 140 == 0:
            restored = restore_partition(P, dict(log), lambda key: True, JourneyConfig(), [], 0.0)
            assert restored.logic.persons == logic.persons
            assert restored.histories == part.histories
    assert any(len(s.history or ()) > 3 for s in logic.persons.values())
    assert written < whole, (written, whole)
    print(f"delta form {written:,} B, whole persons {whole:,} B")


def test_erasure_writes_whole_persons_and_no_key_names_the_erased() -> None:
    fed = _Partition()
    part, logic = fed.part, fed.part.logic
    log: dict[str, Any] = {}
    for i, event in enumerate(_simulated(1500)):
        fed.feed(event, i)
        if i % 5 == 0:
            spill, record = commit(part)
            _apply(log, {**spill, checkpoint_key(P): record})
    erased = next(k for k, c in part.histories.items() if len(c.layout) > 1)
    keep = pickle.loads(pickle.dumps(logic.persons))
    del keep[erased]
    del logic.persons[erased]
    entries, record = full_commit(part, {erased})
    assert not any(erased in key for key in entries)
    # the older records are deleted after a full commit: what it wrote is the whole state
    restored = restore_partition(
        P, {**entries, checkpoint_key(P): record}, lambda key: True, JourneyConfig(), [], 0.0
    )
    assert restored.logic.persons == keep
