"""Streaming mode against a real broker: Kafka -> Faust worker -> records -> sink -> chDB.

The same simulated input (with malformed and duplicated events) goes through the embedded
runner in this process and through the streaming processes; the stored results are compared.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from streams.embedded.runner import EmbeddedRunner
from streams.simulate import SimulationConfig, write_ingest_file
from streams.sinks.clickhouse import ClickHouseSink

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]
PARCOURS = [sys.executable, "-m", "streams.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parcours_") and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if re.match(re.escape(prefix) + r"(\{|$)", k))


@pytest.fixture
def stream_env(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "PARCOURS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PARCOURS_STREAM_APP_ID": f"parcours-{suffix}",
        "PARCOURS_STREAM_CLICKSTREAM_TOPIC": f"clickstream-{suffix}",
        "PARCOURS_STREAM_APP_EVENTS_TOPIC": f"app-events-{suffix}",
        "PARCOURS_STREAM_STORE_EVENTS_TOPIC": f"store-events-{suffix}",
        "PARCOURS_STREAM_JOURNEY_TOPIC": f"parcours-journey-{suffix}",
        "PARCOURS_STREAM_RECORDS_TOPIC": f"parcours-records-{suffix}",
        "PARCOURS_STREAM_DLQ_TOPIC": f"parcours-dlq-{suffix}",
        "PARCOURS_STREAM_IDLE_AFTER_S": "6",
        "PARCOURS_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'stream-chdb'}",
    }
    yield env


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARCOURS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def query(env: dict[str, str], sql: str) -> list[dict[str, object]]:
    result = run(env, "sql", sql, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_streaming_matches_the_embedded_runner(
    stream_env: dict[str, str], tmp_path: Path, ch: Client
) -> None:
    traffic = tmp_path / "traffic.jsonl"
    stats = write_ingest_file(
        SimulationConfig(customers=25, days=1, seed=8, malformed_rate=0.02, duplicate_rate=0.02),
        traffic,
    )
    assert stats.malformed > 0 and stats.duplicates > 0
    produced = run(stream_env, "produce", str(traffic))
    assert produced.returncode == 0, produced.stderr
    port = free_port()
    worker = subprocess.Popen(
        [*PARCOURS, "worker", "--web-port", str(port)],
        env=stream_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        metrics: dict[str, float] = {}
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                metrics = scrape(port)
            except OSError:
                continue
            consumed = total(metrics, "parcours_events_consumed_total")
            watermark = metrics.get("parcours_watermark_timestamp_seconds", 0)
            if consumed >= stats.lines and watermark > time.time() - 3600:
                time.sleep(4)  # let the last closes flush
                metrics = scrape(port)
                break
        else:
            pytest.fail(f"the worker did not finish: {metrics}")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    sink = run(stream_env, "sink", "--idle-exit", "6", timeout=180)
    assert sink.returncode == 0, sink.stderr

    # the same input through the embedded runner, in this process
    runner = EmbeddedRunner(ClickHouseSink(ch, flush_interval_s=None))
    with traffic.open("rb") as fh:
        runner.feed_lines(fh, source="file:traffic.jsonl")
    embedded_stats = runner.finish()

    def both(sql: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        streamed = [tuple(r.values()) for r in query(stream_env, sql)]
        embedded = [tuple(r) for r in ch.query(sql).result_rows]
        return [tuple(map(_plain, r)) for r in embedded], [tuple(map(_plain, r)) for r in streamed]

    # every valid event once, with the same person once identity is resolved
    emb, stm = both(
        "SELECT event_id, event_type, resolved_person_id, late FROM events_resolved ORDER BY event_id"
    )
    assert len(emb) == runner.pipeline.counters.events - embedded_stats.duplicates
    assert emb == stm
    stored_events = len(stm)
    # identity links and rejections: identical
    assert (
        both(
            "SELECT device_id, customer_id, toUnixTimestamp64Milli(linked_at) FROM identity_links ORDER BY ALL"
        )[0]
        == both(
            "SELECT device_id, customer_id, toUnixTimestamp64Milli(linked_at) FROM identity_links ORDER BY ALL"
        )[1]
    )
    assert (
        both("SELECT reason, count() FROM rejected_events GROUP BY reason ORDER BY reason")[0]
        == both("SELECT reason, count() FROM rejected_events GROUP BY reason ORDER BY reason")[1]
    )
    # friction: the same signals per type and channel
    emb, stm = both(
        "SELECT type, channel, count() FROM friction GROUP BY type, channel ORDER BY ALL"
    )
    assert emb == stm
    # sessions: per resolved person, the same events, views, conversions and revenue
    emb, stm = both(
        "SELECT resolved_person_id, sum(events), sum(views), sum(converted), round(sum(revenue), 2) "
        "FROM sessions_resolved GROUP BY resolved_person_id ORDER BY ALL"
    )
    assert emb == stm

    # DLQ: every malformed input, with its reason and original bytes; counts in = valid + rejected
    consumer = Consumer(
        {
            "bootstrap.servers": stream_env["PARCOURS_KAFKA_BOOTSTRAP"],
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([stream_env["PARCOURS_STREAM_DLQ_TOPIC"]])
    dead: list[tuple[bytes, dict[str, bytes]]] = []
    end = time.monotonic() + 30
    expected_dead = sum(embedded_stats.rejected.values())
    while len(dead) < expected_dead and time.monotonic() < end:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            dead.append((msg.value(), dict(msg.headers() or [])))
    consumer.close()
    assert Counter(h["parcours.reason"].decode() for _, h in dead) == Counter(
        embedded_stats.rejected
    )
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
    events_in = stats.events
    assert events_in == stored_events + embedded_stats.duplicates + expected_dead

    # metrics scraped during the run match what ClickHouse holds
    assert total(metrics, "parcours_events_consumed_total") == stats.lines
    friction_rows = query(stream_env, "SELECT count() AS n FROM friction")[0]["n"]
    assert total(metrics, "parcours_friction_signals_total") == friction_rows
    assert total(metrics, "parcours_events_rejected_total") == expected_dead


def _plain(value: object) -> object:
    return str(value) if not isinstance(value, int | float | str | bool) else value
