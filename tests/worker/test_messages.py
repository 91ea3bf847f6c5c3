"""Wire formats of the internal topics, without a broker: records and packed batches."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from schemas import Event, decode
from streams.core.codec import record_to_dict
from streams.core.pipeline import JourneyPipeline
from streams.simulate import SimulationConfig, write_ingest_file
from streams.worker.messages import outputs_from_bytes, record_to_bytes
from streams.worker.outbox import Outbox, pack

pytestmark = pytest.mark.unit


def simulated_records(tmp_path: Path) -> list[object]:
    traffic = tmp_path / "traffic.jsonl"
    write_ingest_file(SimulationConfig(customers=15, days=1, seed=5), traffic)
    pipeline = JourneyPipeline()
    records: list[object] = []
    for line in traffic.read_bytes().splitlines():
        doc = orjson.loads(line)
        for result in decode(orjson.dumps(doc["value"]), doc["topic"]):
            if isinstance(result, Event):
                records.extend(pipeline.process(result))
    records.extend(pipeline.finish())
    return records


def test_every_kind_of_record_round_trips_through_the_records_topic(tmp_path: Path) -> None:
    records = simulated_records(tmp_path)
    kinds = {type(r).__name__ for r in records}
    assert {"EventRow", "SessionSummary", "FrictionSignal", "IdentityLink"} <= kinds
    assert "MinuteAggregate" in kinds
    for record in records:
        raw = record_to_bytes(record)  # type: ignore[arg-type]
        assert orjson.loads(raw) == orjson.loads(orjson.dumps(record_to_dict(record)))
    packed = pack([record_to_bytes(r) for r in records])  # type: ignore[arg-type]
    assert outputs_from_bytes(packed) == records


class RecordingTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[int | None, bytes]] = []

    async def send(
        self, *, key: object = None, value: object = None, partition: int | None = None
    ) -> None:
        assert isinstance(value, bytes)
        self.sent.append((partition, value))


def test_outbox_keeps_each_partitions_order_and_splits_large_groups() -> None:
    topic = RecordingTopic()
    outbox = Outbox(max_items=3, max_bytes=1000)
    for i in range(7):
        outbox.add(topic, i % 2, orjson.dumps({"n": i}))
    assert asyncio.run(outbox.send()) == 3  # partition 0: 4 items -> 2 packs; partition 1: 3
    per_partition: dict[int, list[int]] = {}
    for partition, value in topic.sent:
        assert partition is not None
        per_partition.setdefault(partition, []).extend(d["n"] for d in orjson.loads(value))
    assert per_partition == {0: [0, 2, 4, 6], 1: [1, 3, 5]}
    assert asyncio.run(outbox.send()) == 0  # sent once, then empty


def test_journey_inputs_are_rebuilt_equal_to_the_validated_events(tmp_path: Path) -> None:
    from streams.core.codec import message_to_dict
    from streams.core.identity import Routed
    from streams.worker.messages import routed_from_dict

    traffic = tmp_path / "traffic.jsonl"
    write_ingest_file(SimulationConfig(customers=10, days=1, seed=6), traffic)
    checked = 0
    for line in traffic.read_bytes().splitlines():
        doc = orjson.loads(line)
        for result in decode(orjson.dumps(doc["value"]), doc["topic"]):
            if isinstance(result, Event):
                sent = Routed("p", result, 1, 2, "t/0", 3)
                wire = orjson.loads(orjson.dumps(message_to_dict(sent)))
                assert routed_from_dict(wire, 1) == sent
                checked += 1
    assert checked > 50
