"""Issue 12, point 1: any bytes in, the embedded pipeline goes on and keeps the bytes exactly.

Each test is one defect of the issue, as a new user met it on main before the fix.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from schemas import TOPIC_CHANNELS
from streams import metrics
from streams.cli.main import app
from streams.clickhouse.client import connect
from streams.embedded.runner import EmbeddedRunner
from streams.settings import load_settings
from streams.sinks.clickhouse import ClickHouseSink, RetryPolicy

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0  # 2027-01-15


def ingest(ch: Client, data: bytes, source: str = "file:x.jsonl") -> EmbeddedRunner:
    # Two quick attempts: a permanent error must not be retried at all, so this is never slow.
    sink = ClickHouseSink(ch, flush_interval_s=None, retry=RetryPolicy(attempts=2))
    runner = EmbeddedRunner(sink, clock=lambda: NOW)
    runner.feed_lines(io.BytesIO(data), source=source)
    runner.finish()
    return runner


def stored_raw(ch: Client) -> list[tuple[int, str, bytes]]:
    return [
        (p, r.decode() if isinstance(r, bytes) else r, raw)
        for p, r, raw in ch.query(
            "SELECT position, reason, raw FROM rejections ORDER BY position, batch_index",
            query_formats={"String": "bytes"},
        ).result_rows
    ]


def test_a_line_that_is_not_utf8_is_stored_with_its_exact_bytes(ch: Client) -> None:
    """`printf '\\xff\\n' > x.jsonl; parcours ingest x.jsonl` aborted after ~50 s of retries."""
    ingest(ch, b"\xff\n" + b'{"topic": "clickstream", "value": {"event_id": "\xc3\x28"}}\n')
    assert stored_raw(ch) == [
        (1, "invalid_json", b"\xff"),
        (2, "invalid_json", b'{"topic": "clickstream", "value": {"event_id": "\xc3\x28"}}'),
    ]
    # stored as bytes: the hex of what is on disk is the hex of the input
    [(hexed,)] = ch.query("SELECT hex(raw) FROM rejected_messages WHERE position = 1").result_rows
    assert hexed == "FF"


def test_binary_utf16_and_latin1_files_are_ingested_as_rejections(tmp_path: Path) -> None:
    good = b'{"topic": "clickstream", "value": {"event_id": "ok-latin", "event_type": "page_view", "occurred_at": "2026-11-02T10:00:00Z", "device_id": "d", "properties": {"page": "/"}}}'
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(
        good + b"\n" + '{"topic": "clickstream", "value": "été"}\n'.encode("latin-1")
    )
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(good.decode().encode("utf-16") + b"\n")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    # --final: a complete input, so the one good event is written (not held for the next run)
    result = CliRunner().invoke(app, ["ingest", "--final", str(latin1), str(utf16), str(binary)])
    assert result.exit_code == 0, result.output
    client = connect(load_settings().resolved_clickhouse_dsn())
    stored = client.query(
        "SELECT source, position, raw FROM rejections WHERE source IN "
        "('file:latin1.jsonl', 'file:utf16.jsonl', 'file:binary.jsonl') ORDER BY source, position",
        query_formats={"String": "bytes"},
    ).result_rows
    lines = {
        ("file:latin1.jsonl", 2): '{"topic": "clickstream", "value": "été"}'.encode("latin-1"),
        ("file:utf16.jsonl", 1): good.decode().encode("utf-16"),
    }
    for number, line in enumerate(io.BytesIO(binary.read_bytes()), 1):
        if line.rstrip(b"\r\n").strip():
            lines[("file:binary.jsonl", number)] = line.rstrip(b"\r\n")
    assert {(s.decode(), p): raw for s, p, raw in stored} == lines
    assert client.query("SELECT count() FROM events WHERE event_id = 'ok-latin'").result_rows == [
        (1,)
    ]


def test_an_array_of_non_events_is_stored_once_not_once_per_element(ch: Client) -> None:
    """A 40 KB `[1,1,…]` line stored 800 MB (a copy of the line per element)."""
    value = b"[" + b",".join([b"1"] * 20_000) + b"]"
    line = b'{"topic": "clickstream", "value": ' + value + b"}"
    ingest(ch, line + b"\n")
    [(rejections, inline_bytes)] = ch.query(
        "SELECT count(), sum(length(raw)) FROM rejected_events"
    ).result_rows
    [(messages, message_bytes)] = ch.query(
        "SELECT count(), sum(length(raw)) FROM rejected_messages"
    ).result_rows
    assert rejections == 20_000 and inline_bytes == 0
    assert messages == 1 and message_bytes == len(line)
    # each element still reads back with the whole message
    [(distinct_raw, read_bytes)] = ch.query(
        "SELECT uniqExact(raw), any(length(raw)) FROM rejections"
    ).result_rows
    assert distinct_raw == 1 and read_bytes == len(line)


def _deep_event(event_id: str, depth: int) -> bytes:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    return (
        b'{"event_id":"' + event_id.encode() + b'","event_type":"page_view",'
        b'"occurred_at":"2026-11-02T10:00:00Z","device_id":"d",'
        b'"properties":{"page":"/","x":' + nested + b"}}"
    )


@pytest.mark.parametrize("depth", [300, 1000])
def test_deep_nesting_is_too_deep_and_the_events_beside_it_go_through(
    ch: Client, depth: int
) -> None:
    """Properties 254 to 1,022 levels deep crashed the ingest (a 2 KB line)."""
    valid = _deep_event("shallow", 3)
    line = b'{"topic":"clickstream","value":[' + valid + b"," + _deep_event("deep", depth) + b"]}"
    bare = _deep_event("bare-deep", depth)
    ingest(ch, line + b"\n" + b'{"topic":"clickstream","value":' + bare + b"}\n")
    assert ch.query("SELECT event_id FROM events").result_rows == [("shallow",)]
    assert ch.query(
        "SELECT position, batch_index, reason, event_id FROM rejected_events ORDER BY position"
    ).result_rows == [(1, 1, "too_deep", "deep"), (2, None, "too_deep", "bare-deep")]


def test_absurd_amounts_are_rejected_and_revenue_stays_finite(ch: Client) -> None:
    """Two purchases of `value: 1.7e308` made a session's revenue `inf`."""
    lines = []
    for i, value in enumerate([1.7e308, 1.7e308, 1e12, 99.5]):
        event = {
            "event_id": f"p{i}",
            "event_type": "purchase",
            "occurred_at": f"2026-11-02T10:00:0{i}Z",
            "device_id": "d",
            "properties": {"transaction_id": f"t{i}", "value": value, "currency": "EUR"},
        }
        lines.append(orjson.dumps({"topic": "clickstream", "value": event}))
    ingest(ch, b"\n".join(lines) + b"\n")
    assert (
        ch.query("SELECT reason, field FROM rejected_events ORDER BY position").result_rows
        == [("invalid_value", "properties.value")] * 2
    )
    [(revenue,)] = ch.query("SELECT sum(revenue) FROM sessions").result_rows
    assert math.isfinite(revenue) and revenue == 1e12 + 99.5


def _label_values(name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and label in sample.labels
    }


def test_metric_labels_come_from_a_closed_set(ch: Client) -> None:
    """An ingest line's `topic` became a label value: 200k distinct topics cost 314 MB."""
    lines = [
        orjson.dumps({"topic": f"topic-{i}", "value": {"event_id": str(i)}}) for i in range(200)
    ]
    lines += [
        orjson.dumps(
            {
                "topic": "clickstream",
                "value": {
                    "event_id": f"c{i}",
                    "event_type": f"custom_kind_{i}",
                    "occurred_at": "2026-11-02T10:00:00Z",
                    "device_id": "d",
                },
            }
        )
        for i in range(50)
    ]
    ingest(ch, b"\n".join(lines) + b"\n")
    allowed = {*TOPIC_CHANNELS, "other"}
    assert _label_values("parcours_events_consumed_total", "topic") <= allowed
    assert _label_values("parcours_events_rejected_total", "topic") <= allowed
    event_types = _label_values("parcours_events_processed_total", "event_type")
    assert "other" in event_types and not any(t.startswith("custom_kind_") for t in event_types)
