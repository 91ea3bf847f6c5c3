"""Issue 12, point 2 (sink stage): a malformed record goes to the DLQ with its reason and the
stage goes on; a batch over PARCOURS_SINK_BATCH_ROWS during an outage neither crashes the stage
nor loses a row. No broker needed: messages are stand-ins, the DLQ a list."""

from __future__ import annotations

from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client

from schemas import Rejection, decode
from streams.core.records import Record
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink, RetryPolicy
from streams.worker.messages import record_to_bytes, rejected_message_to_bytes
from streams.worker.sink_stage import SinkStage, split_outputs
from tests.storage.test_sink import records
from tests.storage.test_sink_faults import FaultyClient

pytestmark = pytest.mark.integration


class Message:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "parcours-records"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


def _packed(items: list[Record]) -> bytes:
    return b"[" + b",".join(record_to_bytes(r) for r in items) + b"]"


BAD = [b"\xff\xfe", b'{"kind": "NoSuchRecord"}', b"[1, 2]", b'{"kind": "RejectedInput"}']


def test_malformed_records_are_told_apart_from_the_good_ones_beside_them() -> None:
    good = records()
    messages = [Message(_packed(good[:3]), 0)]
    messages += [Message(v, i + 1) for i, v in enumerate(BAD)]
    messages += [Message(_packed(good[3:]), 9)]
    got, rejected, malformed = split_outputs(messages)
    assert got == good and rejected == []
    assert [m.value() for m, _ in malformed] == BAD
    assert all(reason for _, reason in malformed)


def test_the_stage_sends_malformed_records_to_the_dlq_and_writes_the_rest(ch: Client) -> None:
    """A malformed message on parcours-records made the sink exit, re-read it and exit again."""
    dead: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    sink = ClickHouseSink(ch, flush_interval_s=None)
    stage = SinkStage(
        "127.0.0.1:1", "parcours-records", sink, dead_letter=lambda v, h: dead.append((v, h))
    )
    good = records()
    stage._write([Message(_packed(good), 0), *(Message(v, i + 1) for i, v in enumerate(BAD))])
    assert [v for v, _ in dead] == BAD
    headers = dict(dead[0][1])
    assert headers["parcours.reason"] == b"malformed_record"
    assert headers["__connect.errors.offset"] == b"1"
    assert headers["__connect.errors.exception.message"]
    assert stage.stats.malformed == len(BAD)
    assert ch.query("SELECT count() FROM events").result_rows == [(2,)]


def test_a_full_batch_during_an_outage_neither_crashes_the_stage_nor_loses_rows(
    ch: Client,
) -> None:
    client = FaultyClient(ch, down_for=7)  # more failures than one flush's attempts
    waits: list[float] = []
    sink = ClickHouseSink(
        cast(Client, client),
        batch_rows=1,  # every record fills a batch: the flush inside `add` meets the outage
        flush_interval_s=None,
        retry=RetryPolicy(attempts=2, first_delay_s=0.01),
        sleep=lambda s: None,
    )
    stage = SinkStage(
        "127.0.0.1:1",
        "parcours-records",
        sink,
        outage_delays_s=(0.1, 0.4),
        sleep=waits.append,
        dead_letter=lambda v, h: None,
    )
    good = records()
    stage._write([Message(_packed(good), 0)])
    assert waits  # it waited for ClickHouse instead of crashing
    assert sink.buffered == 0
    counts: dict[str, Any] = {
        t: ch.query(f"SELECT count() FROM {t}").result_rows[0][0]
        for t in ("events", "sessions", "friction", "minute_aggregates")
    }
    assert counts == {"events": 2, "sessions": 1, "friction": 1, "minute_aggregates": 1}


def test_an_outage_during_a_full_batch_keeps_the_rejections_read_with_it(ch: Client) -> None:
    """Found by the chaos test (tests/kafka/test_chaos.py): records over `batch_rows` and a
    rejected message in one read batch, and ClickHouse away. The stage handed the records to
    the sink, whose full-batch write raised before the stage handed over the rejections; once
    ClickHouse was back it wrote what was buffered and committed: the rejections were lost."""
    client = FaultyClient(ch, down_for=7)
    sink = ClickHouseSink(
        cast(Client, client),
        batch_rows=1,
        flush_interval_s=None,
        retry=RetryPolicy(attempts=2, first_delay_s=0.01),
        sleep=lambda s: None,
    )
    stage = SinkStage(
        "127.0.0.1:1",
        "parcours-records",
        sink,
        outage_delays_s=(0.1, 0.4),
        sleep=lambda s: None,
        dead_letter=lambda v, h: None,
    )
    rejections = [
        RejectedInput(r, "kafka:clickstream/0", 7, 0)
        for r in decode(b"[1, 2, 3]", "clickstream")
        if isinstance(r, Rejection)
    ]
    stage._write(
        [Message(_packed(records()), 0), Message(rejected_message_to_bytes(rejections), 1)]
    )
    assert stage.stats.rejected == 3 and sink.buffered == 0
    assert ch.query("SELECT count() FROM rejected_events").result_rows == [(3,)]
    assert ch.query("SELECT count() FROM rejected_messages").result_rows == [(1,)]
