"""Issue 11 §3 through Kafka: the store's nightly POS batch, 10 hours of event time behind the
web and the app, revises what the worker concluded, and the tables end as the embedded runner's.

The story at scale: a simulated day ending an hour ago. The web, the app and the store's
receipts up to 10 hours before the end are produced first, and the worker closes everything
(its inputs go quiet, so its watermark follows the wall clock past the whole day). Then the
store's last 10 hours arrive, as a POS system's nightly export does: every one of them is late
(within the 48 h revision horizon), so sessions are revised, abandonments become channel
switches, bounces are withdrawn, through the journey and records topics. The embedded runner
reads the same lines in the same order. The comparison is of every public table's contents
(tests/kafka/harness.py), late flags included.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from streams.simulate import SimulationConfig, write_ingest_file
from tests.kafka.harness import (
    assert_same_as_embedded,
    drained,
    embedded_reference,
    free_port,
    misrouted_lines,
    run,
    sink_all,
    start_worker,
    stop,
    stream_env,
    total,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]

LAG = timedelta(hours=10)
GRACE = timedelta(minutes=2)


def _time_of(line: bytes) -> tuple[str | None, datetime | None]:
    """(topic, event time of the line's first event) or (None, None) for a line that is not
    the ingest format (malformed noise: it goes first, with the rest)."""
    try:
        doc = orjson.loads(line)
        value = doc["value"]
        first = value[0] if isinstance(value, list) else value
        return doc["topic"], datetime.fromisoformat(first["occurred_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
        return None, None


def test_a_store_batch_ten_hours_late_revises_to_the_embedded_runners_tables(
    kafka_bootstrap: str, tmp_path: Path, ch: Client
) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=25)).replace(second=0, microsecond=0)
    day = tmp_path / "day.jsonl"
    write_ingest_file(SimulationConfig(customers=200, days=1, seed=21, start=start), day)
    lines = day.read_bytes().splitlines(keepends=True)
    # the simulator's clock-skew noise can be ahead of the wall clock: the day ends in the past
    timed = [
        (line, topic, t)
        for line in lines
        for topic, t in [_time_of(line)]
        if t is None or t <= now - timedelta(minutes=30)
    ]
    newest = max(t for _, _, t in timed if t is not None)
    cutoff = newest - LAG
    on_time = [
        line for line, topic, t in timed if topic != "store-events" or t is None or t < cutoff
    ]
    # the nightly batch; a receipt in the last grace period before the newest event already
    # read would be on time for the embedded runner (its watermark stops there) but late for
    # the worker (whose watermark follows the wall clock): left out
    read_to = max(
        t for _, topic, t in timed if t is not None and (topic != "store-events" or t < cutoff)
    )
    nightly = [
        line
        for line, topic, t in timed
        if topic == "store-events" and t is not None and cutoff <= t < read_to - GRACE
    ]
    assert len(nightly) > 20, "the simulated store has too few receipts in the last 10 hours"
    first, second = tmp_path / "web-app-and-early-store.jsonl", tmp_path / "nightly-store.jsonl"
    first.write_bytes(b"".join(on_time))
    second.write_bytes(b"".join(nightly))
    both = tmp_path / "in-arrival-order.jsonl"
    both.write_bytes(b"".join(on_time + nightly))

    env = stream_env(kafka_bootstrap, tmp_path / "stream-chdb")
    port = free_port()
    worker = start_worker(env, port)
    log = tmp_path / f"worker-{port}.log"  # where start_worker writes it
    read_first = len(on_time) - misrouted_lines(first)  # no worker reads `<topic>-legacy`
    try:
        assert run(env, "produce", str(first)).returncode == 0
        wait_for(
            port,
            lambda m: total(m, "parcours_events_consumed_total") >= read_first and drained(m),
            timeout=240,
            log=log,
        )
        assert run(env, "produce", str(second)).returncode == 0
        metrics = wait_for(
            port,
            lambda m: (
                total(m, "parcours_events_consumed_total") >= read_first + len(nightly)
                and total(m, "parcours_revisions_total") > 0
                and drained(m)
            ),
            timeout=240,
            log=log,
        )
        # a late receipt of a person the worker had not seen opens a visit whose gap has
        # already passed: it is closed when the watermark next enters a new minute, as every
        # conclusion is (the embedded runner closes it at the end of its input)
        caught_up = metrics["parcours_watermark_timestamp_seconds"]
        next_minute = (caught_up // 60 + 1) * 60
        wait_for(
            port,
            lambda m: m.get("parcours_watermark_timestamp_seconds", 0) >= next_minute,
            timeout=120,
            log=log,
        )
        time.sleep(2)  # the records of that advance leave with the next commit
    finally:
        stop(worker)
    sink_all(env)

    # revisions flowed through Kafka: late receipts changed what was concluded
    assert total(metrics, "parcours_revisions_total") > 0
    embedded_reference(ch, both)
    assert_same_as_embedded(env, ch)
