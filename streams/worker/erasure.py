"""Erasure in a running worker: a subject read from the suppression topic leaves its state.

Intuition: `parcours forget` cannot reach into a worker's memory or rewrite its changelogs, so
each worker does it for the partitions it owns, as soon as it reads new suppressed hashes
(streams/worker/suppression_topic.py). For each owned partition of each table:

1. clean the state in memory: every person and device that is hers or names her is dropped,
   and her links are taken off devices that stay (`forget_suppressed`, the same cleaning as the
   embedded runner's saved state);
2. write the partition's whole state again to its changelog, after everything already
   there, and wait until the broker has it (no deletion record for her keys: a Kafka
   deletion record keeps its key, which names her);
3. delete every older record of that changelog partition (`DeleteRecords`): her earlier
   values, and earlier checkpoints that carried her, are gone from Kafka, not merely shadowed
   until a compaction that may take days.

A restart therefore restores her nowhere. Should a worker die between 2 and 3, its next
start restores her from the older records, and erases her again (the mark below is older). Each partition remembers how many suppressed
subjects it is clean of (in the journey checkpoint; under an internal key of the device
table), so a restart redoes the work only when the list grew meanwhile (a worker that was down
during an erasure). Cost: one write of the owned state per batch of erasures read together.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from streams import metrics
from streams.core.codec import device_from_dict, device_to_dict, person_to_dict
from streams.core.identity import DeviceIdentity
from streams.privacy.errors import PrivacyUnavailable
from streams.privacy.policy import PrivacyFilter
from streams.privacy.suppression import forget_suppressed, item_suppressed
from streams.worker.checkpoint import JourneyPartition, checkpoint_key, full_commit
from streams.worker.suppression_topic import SuppressionReader
from streams.worker.topic_purge import TopicPurge

log = logging.getLogger(__name__)

#: The device table's key holding how many suppressed subjects partition p is clean of.
MARK = "\0suppressions/"


class Erasure:
    """The worker's suppression list (read from the topic) and the purge of its changelogs."""

    def __init__(
        self, privacy: PrivacyFilter, reader: SuppressionReader, purge: TopicPurge
    ) -> None:
        self.privacy = privacy
        self.reader = reader
        self.purge = purge

    @property
    def generation(self) -> int:
        """How many subjects are suppressed: a partition clean of fewer must be erased."""
        return len(self.privacy.suppressed)

    def poll(self) -> None:
        """Take the hashes added to the topic since the last poll (never waits)."""
        new = self.privacy.suppress(self.reader.poll())
        if new:
            log.warning("suppression list: %d subject(s) added, erasing them", len(new))

    def drop_item(self, data: Any) -> bool:
        """Whether a journey input names a suppressed subject (counted when it does)."""
        if item_suppressed(self.privacy, data):
            metrics.PRIVACY_SUPPRESSED.inc()
            return True
        return False

    async def erase_journey(self, part: JourneyPartition, persons: Any, topic: str) -> int:
        """Clean one journey partition and its changelog partition; returns entries removed."""
        gen = self.generation
        logic = part.logic
        plain = {pid: person_to_dict(s) for pid, s in logic.persons.items()}
        kept, _, removed = forget_suppressed(self.privacy, plain, {})
        gone = set(plain) - set(kept)
        for pid in gone:
            del logic.persons[pid]
        held = [h for h in part.held if not item_suppressed(self.privacy, h[3])]
        removed += len(part.held) - len(held)
        part.held = held
        logic.reschedule()
        p = part.partition
        _, start = await asyncio.to_thread(self.purge.bounds, topic, p)
        entries, record = full_commit(part, gone, kept)
        for key, value in entries.items():
            persons.send_changelog(p, key, value, None, "raw")
        persons.send_changelog(p, checkpoint_key(p), record, None, "raw")
        await persons.app.producer.flush()
        await asyncio.to_thread(self.purge.delete_before, topic, {p: start})
        # recorded by the next checkpoint: a crash before it only makes the next start redo it
        part.suppressions, part.changed = gen, True
        return removed

    async def erase_device_table(self, app: Any, devices: Any, topic_map: dict[str, str]) -> None:
        """The identify stage's side: read the topic, then clean the owned partitions of the
        device table (`erase_devices`). Skipped while the assignment changes, and when Kafka
        cannot be reached (transient): tried again at the next batch or tick."""
        self.poll()
        if not self.generation:
            return
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            return
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in topic_map}
        try:
            removed = await self.erase_devices(
                devices, owned, devices.changelog_topic.get_topic_name()
            )
        except PrivacyUnavailable as exc:
            log.warning("device state: erasure not done yet: %s", exc)
            return
        if removed is not None:
            log.warning(
                "device state: erased %d entries naming suppressed subjects; changelog "
                "partitions rewritten and purged",
                removed,
            )

    async def erase_devices(self, devices: Any, owned: set[int], topic: str) -> int | None:
        """Clean the device table's owned partitions and their changelog partitions; returns
        the entries removed, or None when every owned partition was clean already."""
        gen = self.generation
        todo = [p for p in sorted(owned) if _mark(devices.data.get(f"{MARK}{p}")) < gen]
        if not todo:
            return None
        removed = 0
        changelog = await asyncio.to_thread(self.purge.latest, topic, todo)
        for p, (latest, _) in changelog.items():
            live: dict[str, Any] = {}
            for raw_key, value in latest.items():
                key = _table_key(raw_key)
                if value is None or key.startswith("\0"):
                    continue
                stored = devices.data.get(key)
                if isinstance(stored, dict):
                    live[key] = stored
                elif isinstance(stored, DeviceIdentity):
                    live[key] = orjson.loads(orjson.dumps(device_to_dict(stored)))
                else:
                    live[key] = orjson.loads(value)
            _, kept, n = forget_suppressed(self.privacy, {}, live)
            removed += n
            for key in live:
                if key in kept:
                    devices.data[key] = device_from_dict(kept[key])
                    devices.send_changelog(p, key, orjson.dumps(kept[key]), value_serializer="raw")
                else:  # no deletion record: its key would name her; the purge removes it
                    devices.data.pop(key, None)
        await devices.app.producer.flush()
        starts = {p: start for p, (_, start) in changelog.items()}
        await asyncio.to_thread(self.purge.delete_before, topic, starts)
        # marked after the purge: a crash before the marks only makes the next start redo it
        for p in todo:
            devices.data[f"{MARK}{p}"] = gen
            devices.send_changelog(p, f"{MARK}{p}", str(gen).encode(), value_serializer="raw")
        return removed


def _table_key(raw: bytes) -> str:
    """A table key as the changelog holds it (Faust's default key codec is JSON)."""
    try:
        key = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
    return key if isinstance(key, str) else raw.decode("utf-8", "replace")


def _mark(value: Any) -> int:
    """An erasure mark as restored (the table decodes its JSON: an int), or 0."""
    if isinstance(value, bytes):
        value = orjson.loads(value)
    return value if isinstance(value, int) else 0
