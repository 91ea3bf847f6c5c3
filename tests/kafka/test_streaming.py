"""Streaming mode against a real broker: Kafka -> Faust worker -> records -> sink -> chDB.

The same simulated input (with malformed and duplicated events) goes through the embedded
runner in this process and through the streaming processes; the stored results are compared.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from streams.simulate import SimulationConfig, write_ingest_file
from tests.kafka.harness import (
    assert_same_as_embedded,
    drained,
    embedded_reference,
    free_port,
    query,
    run,
    scrape,
    sink_all,
    start_worker,
    stop,
    stream_env,
    total,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]


def test_streaming_matches_the_embedded_runner(
    kafka_bootstrap: str, tmp_path: Path, ch: Client
) -> None:
    env = stream_env(kafka_bootstrap, tmp_path / "stream-chdb")
    traffic = tmp_path / "traffic.jsonl"
    stats = write_ingest_file(
        SimulationConfig(customers=25, days=1, seed=8, malformed_rate=0.02, duplicate_rate=0.02),
        traffic,
    )
    assert stats.malformed > 0 and stats.duplicates > 0
    produced = run(env, "produce", str(traffic))
    assert produced.returncode == 0, produced.stderr
    port = free_port()
    worker = start_worker(env, port)
    try:
        # scraped while the worker runs: every input line consumed and event time at the end
        metrics = wait_for(
            port,
            lambda m: total(m, "parcours_events_consumed_total") >= stats.lines and drained(m),
            timeout=150,
        )
        time.sleep(4)  # let the last closes flush
        metrics = scrape(port)
    finally:
        stop(worker)
    sink_all(env)

    # the same input through the embedded runner, in this process: identical tables
    runner = embedded_reference(ch, traffic)
    embedded_stats = runner.stats
    streamed = assert_same_as_embedded(env, ch)
    stored_events = len(streamed["events"])
    assert stored_events == runner.pipeline.counters.events - embedded_stats.duplicates

    # DLQ: every malformed input, with its reason and original bytes; counts in = valid + rejected
    consumer = Consumer(
        {
            "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([env["PARCOURS_STREAM_DLQ_TOPIC"]])
    dead: list[tuple[bytes, dict[str, bytes]]] = []
    end = time.monotonic() + 30
    expected_dead = sum(embedded_stats.rejected.values())
    # one DLQ message per rejected message, however many of its elements were rejected
    reasons: Counter[str] = Counter()
    while reasons.total() < expected_dead and time.monotonic() < end:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            headers = dict(msg.headers() or [])
            dead.append((msg.value(), headers))
            reasons.update(orjson.loads(headers["parcours.reason_counts"]))
    consumer.close()
    assert reasons == Counter(embedded_stats.rejected)
    raw_lines = set(traffic.read_bytes().splitlines())
    for value, headers in dead:
        assert {
            "__connect.errors.topic",
            "__connect.errors.partition",
            "__connect.errors.offset",
            "__connect.errors.exception.message",
        } <= set(headers)
        if headers["parcours.reason"] != b"unknown_topic":
            assert any(value in line for line in raw_lines)
    assert stats.events == stored_events + embedded_stats.duplicates + expected_dead

    # metrics scraped during the run match what ClickHouse holds
    assert total(metrics, "parcours_events_consumed_total") == stats.lines
    [(friction_rows,)] = query(env, "SELECT uniqExact(signal_id) FROM friction")
    assert total(metrics, "parcours_friction_signals_total") == friction_rows
    assert total(metrics, "parcours_events_rejected_total") == expected_dead
    # read to the end, everything closed: no lag on any input partition, nothing left open
    lags = {k: v for k, v in metrics.items() if k.startswith("parcours_consumer_lag_messages{")}
    assert len(lags) == 3 * 4 and not any(lags.values()), lags
    assert metrics["parcours_open_sessions"] == 0
    assert metrics["parcours_open_checkout_attempts"] == 0
