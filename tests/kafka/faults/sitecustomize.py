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

A third one is for the sink (tests/kafka/test_chaos.py):

- `clickhouse-down`: after `PARCOURS_TEST_FAULT_AFTER_INSERTS` successful inserts, every
  insert fails as a refused connection does over HTTP, for `PARCOURS_TEST_FAULT_OUTAGE_S`
  seconds of wall time (chDB runs inside the sink's process: it cannot be unplugged, so the
  client is). Each refused insert is logged with its table and row count, so a test can tell
  that the outage caught a full batch (`PARCOURS_SINK_BATCH_ROWS` rows) being written.
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


def _clickhouse_down() -> None:
    import time

    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.exceptions import OperationalError

    after = int(os.environ.get("PARCOURS_TEST_FAULT_AFTER_INSERTS", "0"))
    outage_s = float(os.environ.get("PARCOURS_TEST_FAULT_OUTAGE_S", "60"))
    insert = Client.insert
    state = {"inserts": 0, "down_until": None}

    def failing_insert(self: Any, table: Any = None, data: Any = None, **kwargs: Any) -> Any:
        now = time.time()
        if state["down_until"] is None and state["inserts"] >= after:
            state["down_until"] = now + outage_s
            print(
                f"test fault {FAULT}: down from {now:.3f} to {now + outage_s:.3f}",
                file=sys.stderr,
                flush=True,
            )
        if state["down_until"] is not None and now < state["down_until"]:
            rows = len(data[0]) if kwargs.get("column_oriented") and data else len(data or [])
            print(
                f"test fault {FAULT}: refused an insert of {rows} rows into {table}",
                file=sys.stderr,
                flush=True,
            )
            raise OperationalError(
                "Error HTTPConnectionPool(host='clickhouse', port=8123): Max retries exceeded "
                "(Caused by NewConnectionError: [Errno 111] Connection refused)"
            )
        state["inserts"] += 1
        return insert(self, table, data, **kwargs)

    Client.insert = failing_insert  # type: ignore[method-assign]


if FAULT == "faust-drops":
    _faust_drops()
elif FAULT == "client-loses":
    _client_loses()
elif FAULT == "clickhouse-down":
    _clickhouse_down()
elif FAULT:
    raise SystemExit(f"unknown PARCOURS_TEST_FAULT {FAULT!r}")
