"""The sink stage's commit waits while the group coordinator is away (a broker restart) and
gives up on anything else. The consumer is a stand-in that fails as librdkafka does."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.worker.sink_stage import SinkStage
from tests.worker.test_sink_stage_faults import Message

pytestmark = pytest.mark.unit


class FailingConsumer:
    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.committed: list[Any] = []

    def commit(self, *, offsets: Any, asynchronous: bool) -> None:
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        self.committed.append(offsets)


def _stage(consumer: FailingConsumer, slept: list[float]) -> SinkStage:
    stage = SinkStage("127.0.0.1:1", "parcours-records", None, sleep=slept.append)  # type: ignore[arg-type]
    stage.consumer = consumer  # type: ignore[assignment]
    return stage


def test_a_loading_coordinator_is_waited_for() -> None:
    slept: list[float] = []
    consumer = FailingConsumer(
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR, KafkaError._TRANSPORT
    )
    _stage(consumer, slept)._commit([Message(b"[]", 41)])  # type: ignore[list-item]
    [[offset]] = consumer.committed
    assert offset.offset == 42
    assert slept == [1.0, 2.0, 4.0]


def test_a_rebalanced_group_is_not_retried() -> None:
    consumer = FailingConsumer(KafkaError.ILLEGAL_GENERATION)
    with pytest.raises(KafkaException):
        _stage(consumer, [])._commit([Message(b"[]", 0)])  # type: ignore[list-item]
    assert consumer.committed == []
