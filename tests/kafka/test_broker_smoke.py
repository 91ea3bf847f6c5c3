"""The local broker is a real Kafka: confluent-kafka and aiokafka (Faust's client) both work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


def test_produce_and_consume_exactly_once_each(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory("smoke", partitions=4)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for i in range(1000):
        producer.produce(topic, key=f"k{i % 17}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 1000 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        assert msg.value() not in seen
        seen[msg.value()] = msg.key()
    consumer.close()
    assert len(seen) == 1000
    assert all(seen[f"v{i}".encode()] == f"k{i % 17}".encode() for i in range(1000))


def test_aiokafka_talks_to_the_broker(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = kafka_topic_factory("aio", partitions=1)

    async def roundtrip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, f"m{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=f"g-{topic}",
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            async with asyncio.timeout(30):
                while len(got) < 10:
                    batch = await consumer.getmany(timeout_ms=1000)
                    for messages in batch.values():
                        got.extend(m.value for m in messages)
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(roundtrip()) == [f"m{i}".encode() for i in range(10)]
