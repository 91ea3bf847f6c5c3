"""Issue 12, point 1 (streaming): a message with many rejected elements goes to the DLQ once and
to the records topic once, and the sink stores its bytes once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from schemas import Rejection, decode
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.identify_stage import Wiring, reject_message
from streams.worker.messages import outputs_from_bytes
from streams.worker.outbox import Outbox

pytestmark = pytest.mark.integration

VALUE = b"[" + b",".join([b"1"] * 20_000) + b"]"  # a 40 KB line of non-events


class Topic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


class Message:
    topic, partition, offset, key, timestamp, value = (
        "clickstream",
        1,
        77,
        b"k",
        1_800_000_000.0,
        VALUE,
    )


def _sent() -> tuple[Topic, Topic]:
    dlq, records = Topic(), Topic()
    wiring = Wiring(None, Topic(), records, dlq, 4, None, None)  # type: ignore[arg-type]
    rejections = [r for r in decode(VALUE, "clickstream") if isinstance(r, Rejection)]
    assert len(rejections) == 20_000

    async def run() -> None:
        outbox = Outbox()
        await reject_message(wiring, outbox, rejections, Message())
        await outbox.send()

    asyncio.run(run())
    return dlq, records


def test_the_dlq_gets_the_message_once_with_the_count_of_rejections() -> None:
    dlq, _ = _sent()
    assert len(dlq.sent) == 1 and dlq.sent[0]["value"] == VALUE
    headers = dict(dlq.sent[0]["headers"])
    assert headers["parcours.rejections"] == b"20000"
    assert headers["parcours.reason"] == b"not_an_object"
    assert headers["parcours.reason_counts"] == b'{"not_an_object":20000}'


def test_the_records_topic_carries_the_bytes_once_and_the_sink_stores_them_once(
    ch: Client,
) -> None:
    _, records = _sent()
    [pack] = [s["value"] for s in records.sent]
    assert len(pack) < 4 * len(VALUE) + 20_000 * 100  # not 20,000 copies (800 MB before)
    items = outputs_from_bytes(pack)
    assert len(items) == 20_000 and all(isinstance(i, RejectedInput) for i in items)
    assert len({id(i.rejection.raw) for i in items if isinstance(i, RejectedInput)}) == 1
    sink = ClickHouseSink(ch, flush_interval_s=None)
    sink.add_rejections(i for i in items if isinstance(i, RejectedInput))
    sink.flush()
    assert ch.query("SELECT count(), sum(length(raw)) FROM rejected_messages").result_rows == [
        (1, len(VALUE))
    ]
    assert ch.query(
        "SELECT count(), uniqExact(batch_index), any(source), any(position) FROM rejections"
    ).result_rows == [(20_000, 20_000, "kafka:clickstream/1", 77)]
