"""Issue 12, point 2 (sink side): permanent errors are quarantined, transient ones retried,
and a full batch during an outage loses nothing."""

from __future__ import annotations

from typing import Any, cast

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from schemas import Rejection, RejectReason
from streams.clickhouse.errors import SinkError
from streams.sinks.base import RejectedInput
from streams.sinks.clickhouse import ClickHouseSink, RetryPolicy
from streams.sinks.faults import is_permanent
from tests.storage.test_sink import records

pytestmark = pytest.mark.integration


class FaultyClient:
    """The real client, with faults: refuses rows holding `poison`, or is down for a while."""

    def __init__(self, client: Client, *, down_for: int = 0, poison: str | None = None) -> None:
        self.client, self.down_for, self.poison = client, down_for, poison
        self.calls = 0

    def insert(self, table: str, columns: list[list[Any]], **kwargs: Any) -> Any:
        self.calls += 1
        if self.down_for > 0:
            self.down_for -= 1
            raise OperationalError("Error HTTPConnectionPool: Connection refused")
        if (
            table == "events"
            and self.poison is not None
            and any(self.poison in map(str, col) for col in columns)
        ):
            raise DatabaseError(
                "HTTPDriver received ClickHouse error code 27\n Code: 27. DB::Exception: "
                "Cannot parse input: expected ',' before: 'poison'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)"
            )
        return self.client.insert(table, columns, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _sink(client: FaultyClient, sleeps: list[float], **kwargs: Any) -> ClickHouseSink:
    return ClickHouseSink(
        cast(Client, client),
        flush_interval_s=None,
        retry=RetryPolicy(attempts=4, first_delay_s=0.5),
        sleep=sleeps.append,
        **kwargs,
    )


def test_a_refused_row_is_quarantined_and_the_rest_is_written_without_retries(
    ch: Client,
) -> None:
    """A permanent error was retried 8 times (about 50 s), then the whole batch was lost."""
    batch = [r for r in records() if type(r).__name__ == "EventRow"]
    rows = [*batch]
    sleeps: list[float] = []
    client = FaultyClient(ch, poison=rows[1].event_id)
    sink = _sink(client, sleeps)
    sink.add(rows)
    sink.flush()
    assert sleeps == []  # never retried
    stored = {r[0] for r in ch.query("SELECT event_id FROM events").result_rows}
    assert stored == {r.event_id for r in rows} - {rows[1].event_id}
    [(table, row_id, error, row)] = ch.query(
        "SELECT target_table, row_id, error, row FROM quarantined_rows"
    ).result_rows
    assert table == "events" and row_id == rows[1].event_id
    assert "Code: 27" in error and "\n" not in error
    assert orjson.loads(row)["event_id"] == rows[1].event_id


def test_a_transient_error_is_retried_with_backoff_then_written(ch: Client) -> None:
    sleeps: list[float] = []
    sink = _sink(FaultyClient(ch, down_for=2), sleeps)
    sink.add(records())
    sink.flush()
    assert sleeps == [0.5, 1.0]
    assert ch.query("SELECT count() FROM quarantined_rows").result_rows == [(0,)]
    assert ch.query("SELECT count() FROM events").result_rows == [(2,)]


def test_an_outage_when_a_batch_is_full_keeps_every_row_for_the_next_flush(ch: Client) -> None:
    """`parcours sink` crashed when a batch reached PARCOURS_SINK_BATCH_ROWS during an outage
    (that flush ran outside the retry loop), and the records after the full one were lost."""
    sleeps: list[float] = []
    client = FaultyClient(ch, down_for=10**6)
    sink = _sink(client, sleeps, batch_rows=1)
    all_records = records()
    with pytest.raises(SinkError):
        sink.add(all_records)
    assert sink.buffered == len(all_records)  # handed over, kept
    client.down_for = 0
    sink.flush()
    assert sink.buffered == 0
    assert ch.query("SELECT count() FROM events").result_rows == [(2,)]
    assert ch.query("SELECT count() FROM sessions").result_rows == [(1,)]


def test_text_that_cannot_be_encoded_is_stored_not_retried(ch: Client) -> None:
    """A rejection's fields came from hostile input; a lone surrogate must not stop the sink."""
    sleeps: list[float] = []
    sink = _sink(FaultyClient(ch), sleeps)
    rejection = Rejection(
        RejectReason.INVALID_VALUE, "bad \udcff", "f\udcff", "clickstream", b"\xff\xfe", None, None
    )
    sink.add_rejections([RejectedInput(rejection, "file:\udcff", 1, 0)])
    sink.flush()
    assert sleeps == []
    [(message, raw)] = ch.query(
        "SELECT message, raw FROM rejections", query_formats={"String": "bytes"}
    ).result_rows
    assert raw == b"\xff\xfe" and message.startswith(b"bad ")


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (TypeError("expected bytes, str found"), True),
        (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), True),
        (DatabaseError("Code: 27. DB::Exception: Cannot parse input"), True),
        (DatabaseError("Code: 53. DB::Exception: Type mismatch"), True),
        (DatabaseError("Code: 241. DB::Exception: Memory limit exceeded"), False),
        (DatabaseError("Code: 252. DB::Exception: Too many parts"), False),
        (OperationalError("Connection refused"), False),
        (ConnectionRefusedError("unreachable"), False),
        (TimeoutError(), False),
        (RuntimeError("something unknown"), False),
    ],
)
def test_transient_and_permanent_failures_are_told_apart(
    exc: BaseException, permanent: bool
) -> None:
    assert is_permanent(exc) is permanent
