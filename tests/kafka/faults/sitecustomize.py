"""Faults for the Kafka tests, loaded into a worker process by putting this directory on its
PYTHONPATH (Python imports `sitecustomize` at start) with `PARCOURS_TEST_FAULT` set.

Both make table recovery lose the first records of each changelog partition it reads, the
way Faust can around a rebalance (streams/worker/faust_internals.py), but on purpose and every
time, so that the repair is tested rather than hoped for:

- `faust-drops`: Faust's own filter drops them (the fetch is reported with the changelog
  partitions not active), after the Kafka client moved past them; the worker's
  `RewindingConsumer` must put them back.
- `client-loses`: they vanish between the Kafka client and Faust, which never sees them; only
  the recovery watch (streams/worker/recovery_watch.py) can notice, and only a loss that
  includes a partition's last record (one earlier looks like the gaps compaction leaves), so
  this fault drops a fetch only when it reaches the partition's end.

Each fault strikes once per changelog partition and says so on stderr (the worker's log).
"""

from __future__ import annotations

import os
import sys
from typing import Any

FAULT = os.environ.get("PARCOURS_TEST_FAULT", "")


def _say(what: str, tps: set[Any]) -> None:
    names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(tps))
    print(f"test fault {FAULT}: {what} {names}", file=sys.stderr, flush=True)


def _changelogs(records: Any, struck: set[Any]) -> set[Any]:
    return {tp for tp in records if tp.topic.endswith("-changelog") and tp not in struck}


def _faust_drops() -> None:
    from faust.transport.consumer import Consumer

    struck: set[Any] = set()
    fetch = Consumer._wait_next_records

    async def wait_next_records(self: Any, timeout: float) -> Any:
        records, active = await fetch(self, timeout)
        if records and active is not None and self.app.in_recovery:
            tps = _changelogs(records, struck)
            if tps:
                struck.update(tps)
                _say("Faust drops the fetched records of", tps)
                return records, set(active) - tps
        return records, active

    Consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]


def _client_loses() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    struck: set[Any] = set()
    fetch = AIOKafkaConsumerThread._fetch_records

    async def fetch_records(self: Any, consumer: Any, *args: Any, **kwargs: Any) -> Any:
        records = await fetch(self, consumer, *args, **kwargs)
        if records and self.app.in_recovery:
            ends = {tp for tp in _changelogs(records, struck) if _reaches_end(consumer, tp)}
            if ends:
                struck.update(ends)
                _say("records lost between the client and Faust:", ends)
                return {tp: rs for tp, rs in records.items() if tp not in ends}
        return records

    def _reaches_end(consumer: Any, tp: Any) -> bool:
        from aiokafka import TopicPartition

        end = consumer.highwater(TopicPartition(tp.topic, tp.partition))
        return (
            end is not None
            and consumer._subscription.subscription.assignment.state_value(
                TopicPartition(tp.topic, tp.partition)
            ).position
            >= end
        )

    AIOKafkaConsumerThread._fetch_records = fetch_records  # type: ignore[method-assign]


if FAULT == "faust-drops":
    _faust_drops()
elif FAULT == "client-loses":
    _client_loses()
elif FAULT:
    raise SystemExit(f"unknown PARCOURS_TEST_FAULT {FAULT!r}")
