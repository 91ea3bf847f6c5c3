"""`parcours simulate --to kafka` against a real broker: what arrives is what was simulated.

The command runs as a subprocess (the real entry point, settings from the environment) into
per-test topics; the topics are then read back with confluent-kafka and compared with the same
simulation generated in this process (same config, same bytes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from streams.cli.main import app
from streams.cli.simulate_cmd import parse_duration
from streams.simulate import SimulationConfig, generate

pytestmark = [pytest.mark.kafka, pytest.mark.integration]
PARCOURS = [sys.executable, "-m", "streams.cli.main"]
CANONICAL = {
    "clickstream": "PARCOURS_STREAM_CLICKSTREAM_TOPIC",
    "app-events": "PARCOURS_STREAM_APP_EVENTS_TOPIC",
    "store-events": "PARCOURS_STREAM_STORE_EVENTS_TOPIC",
}
SUMMARY = re.compile(
    r"produced ([\d,]+) messages \(([\d,]+) events\) in ([\d.]+)s .*: "
    r"([\d,]+) delivered, ([\d,]+) failed"
)


@pytest.fixture
def produce_env(kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """Unique input topic names, so that each test reads only what it produced."""
    suffix = uuid.uuid4().hex[:8]
    env = {**os.environ, "PARCOURS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    for canonical, variable in CANONICAL.items():
        env[variable] = f"{canonical}-{suffix}"
    yield env


def configured(env: dict[str, str], simulated_topic: str) -> str:
    """Where a simulated message must land: the configured input topic, and the simulator's
    misrouted `<canonical>-legacy` messages next to it as `<configured>-legacy`."""
    if simulated_topic in CANONICAL:
        return env[CANONICAL[simulated_topic]]
    base, _, suffix = simulated_topic.rpartition("-")
    return f"{env[CANONICAL[base]]}-{suffix}"


def elements(value: bytes | object) -> list[object]:
    """A message value as its events: an array counts each element, anything else one
    (unparseable bytes stay bytes, so a truncated message compares by its exact bytes)."""
    if isinstance(value, bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return [value]
    return list(value) if isinstance(value, list) else [value]


def run_simulate(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [*PARCOURS, "simulate", "--to", "kafka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - started


def summary(stderr: str) -> tuple[int, int, float, int, int]:
    match = SUMMARY.search(stderr)
    assert match, stderr
    messages, events, elapsed, delivered, failed = match.groups()
    return (
        int(messages.replace(",", "")),
        int(events.replace(",", "")),
        float(elapsed),
        int(delivered.replace(",", "")),
        int(failed.replace(",", "")),
    )


def consume_all(
    bootstrap: str, topics: list[str], expected_events: int, timeout_s: float = 60
) -> list[tuple[str, int, bytes | None, bytes, int]]:
    """(topic, partition, key, value, timestamp ms) of every message, in partition order; stops
    once `expected_events` events are read and nothing more arrives for 2 s (so that extra
    messages would be seen, not ignored)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    out: list[tuple[str, int, bytes | None, bytes, int]] = []
    events = 0
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if events >= expected_events:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 2:
                        break
                continue
            quiet_since = None
            topic, partition, value = msg.topic(), msg.partition(), msg.value()
            assert topic is not None and partition is not None and value is not None
            out.append((topic, partition, msg.key(), value, msg.timestamp()[1]))
            events += len(elements(value))
    finally:
        consumer.close()
    return out


def test_simulated_traffic_arrives_keyed_batched_and_complete(
    produce_env: dict[str, str],
) -> None:
    config = SimulationConfig(
        customers=30, days=1, seed=5, malformed_rate=0.05, duplicate_rate=0.05
    )
    result, _ = run_simulate(
        produce_env,
        *("--customers", "30", "--days", "1", "--seed", "5"),
        *("--malformed-rate", "0.05", "--duplicate-rate", "0.05", "--batch", "5"),
    )
    assert result.returncode == 0, result.stderr
    messages, events, _, delivered, failed = summary(result.stderr)

    # the same simulation, here: per (topic, key), the events in the order they were simulated
    expected: dict[tuple[str, bytes | None], list[object]] = defaultdict(list)
    simulated_events = malformed = 0
    for msg in generate(config):
        topic = configured(produce_env, msg.topic)
        expected[(topic, msg.key)].extend(elements(msg.payload))
        simulated_events += len(msg.payload) if isinstance(msg.payload, list) else 1
        malformed += msg.malformed
    assert malformed > 0, "the check must cover malformed input too"
    assert events == simulated_events and delivered == messages and failed == 0

    topics = sorted({topic for topic, _ in expected})
    consumed = consume_all(produce_env["PARCOURS_KAFKA_BOOTSTRAP"], topics, events)
    assert len(consumed) == messages
    assert sum(len(elements(value)) for _, _, _, value, _ in consumed) == events

    # per key, exactly the simulated events in the simulated order (batching keeps the order,
    # malformed messages arrive byte for byte, nothing is lost or doubled)
    received: dict[tuple[str, bytes | None], list[object]] = defaultdict(list)
    partitions: dict[tuple[str, bytes | None], set[int]] = defaultdict(set)
    for topic, partition, key, value, _ in consumed:
        received[(topic, key)].extend(elements(value))
        partitions[(topic, key)].add(partition)
    assert received == expected
    assert all(len(p) == 1 for p in partitions.values()), "a key must stay on one partition"

    # keys: device_id, or customer_id for device-less (store) events
    deviceless = 0
    for _, _, key, value, _ in consumed:
        for event in elements(value):
            if isinstance(event, dict) and (event.get("device_id") or event.get("customer_id")):
                assert key == (event.get("device_id") or event["customer_id"]).encode()
                deviceless += "device_id" not in event
    assert deviceless > 0, "store events without a device must be keyed by customer_id"

    # --batch 5: arrays of at most 5 events of one key, and packing really happened
    sizes = [len(elements(value)) for _, _, _, value, _ in consumed]
    assert max(sizes) == 5
    assert messages < events / 2


def test_rate_and_duration_are_honoured(produce_env: dict[str, str]) -> None:
    rate, duration = 150, 2.0
    # a week of 2,000 customers is ~100k events: far more than 2 s at 150/s can send
    result, wall = run_simulate(
        produce_env, "--customers", "2000", "--rate", str(rate), "--duration", "2s"
    )
    assert result.returncode == 0, result.stderr
    assert "stopped by --duration" in result.stderr
    messages, events, elapsed, delivered, failed = summary(result.stderr)
    assert failed == 0 and delivered == messages
    assert duration - 0.05 <= elapsed <= duration + 0.5
    assert 0.8 * rate * duration <= events <= rate * duration + 5
    assert wall < 30, "the command must stop soon after --duration"

    topics = [produce_env[v] for v in CANONICAL.values()]
    consumed = consume_all(produce_env["PARCOURS_KAFKA_BOOTSTRAP"], topics, events)
    # legacy-topic noise is not read here, so allow for those few messages
    assert sum(len(elements(value)) for _, _, _, value, _ in consumed) <= events
    assert sum(len(elements(value)) for _, _, _, value, _ in consumed) >= events - 5
    # the broker's timestamps (set when each message was produced) show the pacing
    stamps = sorted((ts, len(elements(value))) for _, _, _, value, ts in consumed)
    first, last = stamps[0][0], stamps[-1][0]
    assert 1.5 <= (last - first) / 1000 <= duration + 0.3
    in_first_second = sum(n for ts, n in stamps if ts < first + 1000)
    assert in_first_second <= rate + 5


def test_bad_options_give_clear_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--to", "kafka", "--duration", "5 minutes"])
    assert result.exit_code == 2
    assert "'5 minutes' is not a duration" in result.output
    result = runner.invoke(app, ["simulate", "--rate", "10"])
    assert result.exit_code == 2 and "only with --to kafka" in result.output
    result = runner.invoke(app, ["simulate", "--to", "kafka", "--rate", "0"])
    assert result.exit_code == 2 and "positive" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("2.5", 2.5), (" 2S ", 2)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "0s", "-3", "inf", "nan", "5 m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
