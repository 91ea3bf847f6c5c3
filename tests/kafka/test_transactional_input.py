"""Input written by a transactional producer (Kafka Streams, Flink or any exactly-once job
upstream): every committed transaction leaves a marker offset that no consumer ever sees, so
each input partition ends with one. The worker must still find the partitions read to their
end, declare them idle and close everything, with the embedded runner's results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from streams.settings import StreamSettings
from streams.simulate import SimulationConfig, write_ingest_file
from streams.worker.produce import KafkaEventProducer
from tests.kafka.harness import (
    assert_same_as_embedded,
    embedded_reference,
    replay_with_one_worker,
    stream_env,
)

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]


def _items(traffic: Path, topics: dict[str, str]) -> Iterator[tuple[str, object]]:
    """The lines the worker can see, as `parcours produce` sends them."""
    with traffic.open("rb") as fh:
        for line in fh:
            doc = orjson.loads(line)
            if doc["topic"] in topics:  # not the simulator's misrouted `<topic>-legacy` noise
                yield doc["topic"], doc["value"]


def test_partitions_ending_in_transaction_markers_go_idle(
    kafka_bootstrap: str, tmp_path: Path, ch: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = stream_env(kafka_bootstrap, tmp_path / "chdb")
    traffic = tmp_path / "traffic.jsonl"
    config = SimulationConfig(customers=40, days=1, seed=31, malformed_rate=0, late_rate=0)
    write_ingest_file(config, traffic)
    for name, value in env.items():
        if name.startswith("PARCOURS_STREAM_"):
            monkeypatch.setenv(name, value)
    topics = {canonical: name for name, canonical in StreamSettings().input_topics().items()}
    producer = KafkaEventProducer(
        kafka_bootstrap, topics, **{"transactional.id": f"parcours-test-{uuid.uuid4().hex}"}
    )
    client = producer.producer
    client.init_transactions(30)
    items = list(_items(traffic, topics))
    for start in range(0, len(items), 200):  # several transactions, each ending in a marker
        client.begin_transaction()
        producer.send_batched(items[start : start + 200])
        client.commit_transaction(30)
    assert producer.flush().failed == 0

    replay_with_one_worker(env, tmp_path)
    embedded_reference(ch, traffic)
    assert_same_as_embedded(env, ch)
