"""Faust's Kafka consumer, made to put back the records it fetches and then drops.

Faust fetches records in its consumer thread (the Kafka client's position moves past them)
and then, back in the event loop, hands over only some: none while its flow is stopped (a
rebalance), none after the consumer generation changed, none of a partition that is not
"active" when they arrive. aiokafka's own pause never loses a record this way (it drops
buffered records *without* moving the position); Faust's filters do, and the records are
skipped for good unless something seeks the partition back.

Around a rebalance this meets a second quirk (read in faust-streaming 0.15.3 and aiokafka
0.14): the consumer thread serves a fetch with the live set of active partitions, which Faust
empties while partitions move, and aiokafka reads an empty set as "every partition". A fetch
still under way then hands out records of every partition, changelogs included, and Faust
drops them. Faust seeks input partitions back to their committed offsets after a rebalance;
nothing seeks back a changelog partition that table recovery has just sought to its start, so
recovery waits for ever for the records handed out meanwhile (seen in CI, see
streams/worker/recovery_watch.py), or, if they were not the last, completes without them.

`RewindingConsumer` closes that hole where it opens: after each fetch it seeks every
partition whose records were not all handed over back to the first one that was not, unless
something has moved its position since (a recovery's seek, Faust's seek to committed
offsets): then that seek decides where reading goes on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers.aiokafka import Consumer

from streams import metrics
from streams.worker.client_state import rewind_if_unmoved

log = logging.getLogger(__name__)


class RewindingConsumer(Consumer):
    """Faust's aiokafka consumer; records fetched and not handed over are fetched again."""

    _last_fetch: Any = None

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active = await super()._wait_next_records(timeout)
        self._last_fetch = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[Any]:
        """Faust's `getmany`, counting what it hands over of each partition's records.

        Intuition: Faust hands over a partition's records in offset order and drops the
        rest of them together (a filter on the partition, or a stop of the whole batch), so
        the count handed over marks the first record dropped."""
        handed: dict[Any, int] = {}
        self._last_fetch = None
        try:
            async for tp, message in super().getmany(timeout):
                handed[tp] = handed.get(tp, 0) + 1
                yield tp, message
        finally:
            fetched, self._last_fetch = self._last_fetch, None
            if fetched:
                self._rewind(fetched, handed)

    def _rewind(self, fetched: Any, handed: dict[Any, int]) -> None:
        for tp, records in fetched.items():
            done = handed.get(tp, 0)
            if done >= len(records):
                continue
            first, last = records[done].offset, records[-1].offset
            try:
                rewound = rewind_if_unmoved(self, tp, first, last)
            except Exception as exc:  # a partition revoked meanwhile: its new owner reads it
                log.warning("could not put back %s from %d: %r", tp, first, exc)
                continue
            if rewound:
                metrics.RECORDS_PUT_BACK.labels(tp.topic).inc(len(records) - done)
                log.info(
                    "put back %d fetched records of %s/%d that Faust did not hand over "
                    "(reading from %d again)",
                    len(records) - done,
                    tp.topic,
                    tp.partition,
                    first,
                )


def keep_stream_records_on_resume(app: Any) -> None:
    """Make Faust's flow-control resume clear only the changelog queue, not the streams' queues.

    Faust clears every stream's queue when it resumes the flow after a rebalance, in the same
    step that follows its seek of the input partitions to their committed offsets. That seek
    asks the broker for each partition's committed offset in turn (a round trip each, 100-150
    ms for a worker's partitions here), and meanwhile the fetcher hands over records of the
    partitions already sought; they wait in the streams' queues, the clear drops them, and the
    client is past them: lost. If later records of the partition are processed, nothing shows
    the hole (seen in CI: events missing after a restart; when nothing followed, the idle rule
    found the partition fetched but not processed and read it again, the re-reads the README
    mentions). Keeping them costs at most records processed twice (read before a partition's
    seek and again after it), which the journey core's replay guards absorb, as they do after
    a crash. Queues are still cleared when partitions are revoked (`flow_control.clear()`).
    The changelog queue is cleared as before: recovery applies only offsets above the last it
    applied, so a stale record there would hide the ones before it."""
    flow = app.flow_control
    resume = type(flow).resume

    def resume_keeping_stream_records() -> None:
        flow.clear = app.tables.changelog_queue.clear  # what resume() clears, this once
        try:
            resume(flow)
        finally:
            del flow.clear  # the explicit clear (on revocation) clears every queue again

    flow.resume = resume_keeping_stream_records
