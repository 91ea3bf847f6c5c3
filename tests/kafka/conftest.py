"""A real Kafka broker for the tests: the one in PARCOURS_KAFKA_BOOTSTRAP, or one started here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streams.devkafka import LocalKafka


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("PARCOURS_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = LocalKafka()
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """Create a uniquely named topic (isolation between tests)."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def make(prefix: str = "t", partitions: int = 4, name: str | None = None) -> str:
        topic = name or f"{prefix}-{uuid.uuid4().hex[:10]}"
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
        for future in futures.values():
            future.result(30)
        return topic

    return make
