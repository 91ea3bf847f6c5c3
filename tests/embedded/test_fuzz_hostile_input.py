"""Fuzz: any bytes into `decode` and the embedded ingest; nothing escapes, nothing is lost.

Inputs are any bytes, mutated valid events, deep nesting, huge arrays, invalid UTF-8 inside
strings, lone surrogates, NUL bytes and odd timestamps. The invariants (issue 12, point 1):
no exception escapes; every element in is an event processed (or a duplicate dropped) or a
stored rejection; every stored rejection can be read back with the original bytes, exactly.

With `CI=true` each fuzz test runs at least 20,000 examples (hypothesis profile `fuzz-ci`);
locally a few hundred (`fuzz-local`). `tests/perf/fuzz_decode.py` runs a million.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import TOPIC_CHANNELS, Event, Rejection, RejectReason, decode
from streams.core.records import EventRow, Record
from streams.embedded.runner import EmbeddedRunner
from streams.sinks.base import FlushReport, RejectedInput
from streams.sinks.clickhouse import ClickHouseSink

pytestmark = pytest.mark.integration

settings.register_profile(
    "fuzz-ci",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-local",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz-ci" if os.environ.get("CI") == "true" else "fuzz-local")
NOW = datetime(2026, 11, 23, tzinfo=UTC)
NOW_S = NOW.timestamp()

ODD_TIMES = [
    "2026-11-02T10:00:00Z",
    "2026-11-02t10:00:00z",
    "2026-12-31T23:59:60Z",
    "2026-11-02T10:00:00.123456789123456789+02:00",
    "2026-11-02 10:00:00Z",
    "2026-02-30T10:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-11-02T10:00:00+23:59",
    "2026-11-02T10:00:00-00:00",
    "2026-11-02T24:00:00Z",
    "2026-11-02T10:00:00",
    "１２３４-11-02T10:00:00Z",
    "",
]
VALID = {
    "event_id": "e1",
    "event_type": "purchase",
    "occurred_at": "2026-11-02T10:00:00Z",
    "device_id": "d1",
    "customer_id": "c1",
    "properties": {"transaction_id": "t1", "value": 12.5, "currency": "EUR", "page": "/p"},
}


def _deep(depth: int) -> bytes:
    props = b'{"a":' * depth + b"1" + b"}" * depth
    return (
        b'{"event_id":"deep","event_type":"page_view","occurred_at":"2026-11-02T10:00:00Z",'
        b'"device_id":"d","properties":{"page":"/","x":' + props + b"}}"
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid event, then a few byte edits or a field replaced by something odd."""
    doc = dict(VALID)
    doc["event_id"] = draw(st.text(max_size=10)) or "e"
    field = draw(st.sampled_from(sorted(VALID)))
    doc[field] = draw(
        st.sampled_from(ODD_TIMES)
        | st.none()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False)
        | st.text(max_size=30)
        | st.just({"value": 1.7e308, "transaction_id": "t", "currency": "EUR"})
    )
    raw = bytearray(orjson.dumps(doc))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(raw)))
        edit = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\x00", b"\\ud800", b"", b"]"]))
        cut = draw(st.integers(0, 2))
        raw[at : at + cut] = edit
    return bytes(raw)


values = st.one_of(
    st.binary(max_size=400),
    mutated(),
    st.integers(1, 1100).map(_deep),
    st.integers(0, 3000).map(lambda n: b"[" + b",".join([b"1"] * n) + b"]"),
    st.lists(mutated(), min_size=1, max_size=5).map(lambda xs: b"[" + b",".join(xs) + b"]"),
    st.sampled_from(
        [
            "﻿{}".encode("utf-16"),
            b'{"event_id":"\xe9t\xe9"}',
            b'"\\ud800"',
            b'{"event_id":"a\\u0000b"}',
            b"\x00" * 50,
        ]
    ),
)
topics = st.sampled_from([*TOPIC_CHANNELS, "other", "ü/🙂", ""])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """An ingest line: the format wrapped around a hostile value, or hostile bytes alone."""
    value = draw(values)
    if draw(st.booleans()):
        topic = orjson.dumps(draw(topics))
        return b'{"topic":' + topic + b',"value":' + value + b"}"
    return value


def test_decode_is_total_over_hostile_input() -> None:
    @FUZZ
    @given(values, topics)
    def check(raw: bytes, topic: str) -> None:
        results = decode(raw, topic, now=NOW)
        assert results
        for result in results:
            if isinstance(result, Rejection):
                assert isinstance(result.reason, RejectReason)
                assert result.raw == raw and result.message
            else:
                assert isinstance(result, Event)
                assert orjson.dumps(result.properties)  # storable

    check()


class _Tally:
    """A sink in front of the real one: counts what each example hands over."""

    def __init__(self, inner: ClickHouseSink) -> None:
        self.inner = inner
        self.events = 0
        self.rejections: list[RejectedInput] = []

    def add(self, records: Iterable[Record]) -> None:
        batch = list(records)
        self.events += sum(isinstance(r, EventRow) for r in batch)
        self.inner.add(batch)

    def add_rejections(self, rejections: Iterable[RejectedInput]) -> None:
        batch = list(rejections)
        self.rejections.extend(batch)
        self.inner.add_rejections(batch)

    def flush(self) -> FlushReport:
        return FlushReport()  # the shared sink flushes by size; the test flushes at the end

    def close(self) -> None:
        return None


def test_embedded_ingest_stores_every_input_as_events_or_rejections(ch: Client) -> None:
    sink = ClickHouseSink(ch, batch_rows=5_000, flush_interval_s=None)
    expected_raw: dict[tuple[str, int], bytes] = {}
    examples = iter(range(10**9))

    @FUZZ
    @given(st.lists(lines(), min_size=1, max_size=4), st.booleans(), topics)
    def check(batch: list[bytes], bare: bool, topic: str) -> None:
        source = f"fuzz:{next(examples)}"
        tally = _Tally(sink)
        runner = EmbeddedRunner(tally, clock=lambda: NOW_S)  # type: ignore[arg-type]
        elements = 0
        for position, line in enumerate(batch, 1):
            before = len(tally.rejections)
            if bare:
                topic_ = topic if topic in TOPIC_CHANNELS else "clickstream"
                runner.feed_event_line(line, topic_, source, position)
                if line.rstrip(b"\r\n").strip():
                    elements += len(decode(line.rstrip(b"\r\n").strip(), topic_, now=NOW))
            else:
                runner.feed_ingest_line(line, source, position)
                elements += _ingest_elements(line)
            if len(tally.rejections) > before:
                expected_raw[(source, position)] = line.rstrip(b"\r\n")
        stats = runner.finish()
        assert stats.rejected_total == len(tally.rejections)
        # events counts the duplicates it dropped; each other event is one stored row
        assert stats.events + stats.rejected_total == elements
        assert tally.events == stats.events - stats.duplicates

    check()
    sink.flush()
    stored = ch.query(
        "SELECT source, position, raw FROM rejections WHERE startsWith(source, 'fuzz:')",
        query_formats={"String": "bytes"},
    ).result_rows
    assert {(s.decode(), p): r for s, p, r in stored} == expected_raw
    # every stored row reads back (text columns included)
    for table in ("events", "sessions", "rejected_events", "rejected_messages"):
        ch.query(f"SELECT * FROM {table}").result_rows  # noqa: B018
    [(quarantined,)] = ch.query("SELECT count() FROM quarantined_rows").result_rows
    assert quarantined == 0


def _ingest_elements(line: bytes) -> int:
    """How many elements the ingest format makes of `line` (a line rejected whole is one)."""
    original = line.rstrip(b"\r\n")
    if not original.strip():
        return 0
    try:
        doc = orjson.loads(original.strip())
    except orjson.JSONDecodeError:
        return 1
    if not isinstance(doc, dict) or not isinstance(doc.get("topic"), str) or "value" not in doc:
        return 1
    value = doc["value"]
    if isinstance(value, list) and value and doc["topic"] in TOPIC_CHANNELS:
        return len(value)
    return 1
