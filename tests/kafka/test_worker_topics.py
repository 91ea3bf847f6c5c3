"""`parcours worker` and the topics it finds: producers' input topics keep their partition
count, and what cannot work is refused with a clear error before Faust starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.kafka.harness import create_topics, run, stream_env

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


def _partitions(bootstrap: str, name: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.list_topics(name, timeout=30).topics[name].partitions)


def test_input_topics_with_different_partition_counts_are_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = stream_env(kafka_bootstrap, tmp_path / "chdb")
    create_topics(
        kafka_bootstrap,
        {env["PARCOURS_STREAM_CLICKSTREAM_TOPIC"]: 3, env["PARCOURS_STREAM_APP_EVENTS_TOPIC"]: 2},
    )
    result = run(env, "worker", timeout=120)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "the input topics must have the same number of partitions" in message
    assert f"{env['PARCOURS_STREAM_CLICKSTREAM_TOPIC']}: 3" in message
    assert f"{env['PARCOURS_STREAM_APP_EVENTS_TOPIC']}: 2" in message
    # the missing one was created like the first existing one, not with the journey's count
    assert _partitions(kafka_bootstrap, env["PARCOURS_STREAM_STORE_EVENTS_TOPIC"]) == 3


def test_a_journey_topic_with_another_partition_count_is_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = stream_env(kafka_bootstrap, tmp_path / "chdb", PARCOURS_STREAM_PARTITIONS="2")
    create_topics(kafka_bootstrap, {env["PARCOURS_STREAM_JOURNEY_TOPIC"]: 3})
    result = run(env, "worker", timeout=120)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"{env['PARCOURS_STREAM_JOURNEY_TOPIC']} has 3 partitions" in message
    assert "PARCOURS_STREAM_PARTITIONS is 2" in message
