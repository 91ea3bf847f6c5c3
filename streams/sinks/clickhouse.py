"""The ClickHouse sink: buffers rows per table and writes them in deterministic batches.

Intuition: a batch is identified by the ids it contains, and that identity travels with the
insert as `insert_deduplication_token`. If a flush is retried after a timeout, or the same input
is replayed and cut into the same batches, ClickHouse drops the repeat. Batches are cut by size
and by time: every table is flushed when `flush_interval_s` has passed on the sink's clock since
the last flush. The clock is injectable: the embedded runner drives it with event time (the
journey watermark), so a replay of the same input is cut into exactly the same batches; with a
wall clock, a replay may be cut differently and ReplacingMergeTree collapses what the tokens
miss. Failed inserts are retried with exponential backoff; the buffer is
kept until the insert succeeds, so nothing is lost, and `SinkError` is raised after the last try.
Only transient failures are retried (streams/sinks/faults.py): a permanent one (rows ClickHouse
or the client refuses) is narrowed down by halving the batch, the refused rows go to
`quarantined_rows` with the error, and the rest is written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from streams import metrics
from streams.clickhouse.errors import SinkError, StorageError
from streams.core.records import (
    EventRow,
    FrictionSignal,
    FrictionSpike,
    IdentityLink,
    MinuteAggregate,
    Record,
    SessionMerge,
    SessionSummary,
)
from streams.sinks.base import FlushReport, RejectedInput
from streams.sinks.columns import COLUMNS, QUARANTINE_COLUMNS
from streams.sinks.faults import error_text, is_permanent, row_as_json
from streams.sinks.rejections import message_id, message_row, rejection_row

__all__ = ["COLUMNS", "QUARANTINE_COLUMNS", "ClickHouseSink", "RetryPolicy"]


def _row(record: Record) -> tuple[str, tuple[Any, ...], str]:
    """(table, row, id) of one record.

    Times go out as raw integers (epoch ms for DateTime64(3), epoch s for DateTime):
    clickhouse-connect writes ints as they are, which skips building a datetime per value and
    roughly doubles the insert rate.
    """
    if isinstance(record, EventRow):
        return (
            "events",
            (
                record.event_id,
                record.event_type,
                record.occurred_at_ms,
                record.received_at_ms,
                record.channel,
                record.device_id or "",
                record.device_type or "",
                record.customer_id or "",
                record.person_id,
                record.session_id,
                record.page or "",
                record.item_id or "",
                record.value,
                record.currency or "",
                orjson.dumps(record.properties).decode(),
                record.late,
                record.duplicate_transaction,
            ),
            record.event_id,
        )
    if isinstance(record, SessionSummary):
        return (
            "sessions",
            (
                record.session_id,
                record.person_id,
                record.started_at_ms,
                record.ended_at_ms,
                record.duration_s,
                record.events,
                record.views,
                list(record.channels),
                list(record.devices),
                record.landing_page or "",
                record.exit_page or "",
                record.engaged,
                record.bounced,
                record.converted,
                record.revenue,
                record.friction_count,
                record.is_open,
                record.version,
                int(record.is_deleted),
            ),
            # Rows of one session differ by version: each version is its own row for the
            # batch's dedup token (an open row and the closing one must both be written).
            f"{record.session_id}/{record.version}/{int(record.is_open)}",
        )
    if isinstance(record, FrictionSignal):
        return (
            "friction",
            (
                record.signal_id,
                record.occurred_at_ms,
                record.type,
                record.person_id,
                record.session_id,
                record.channel,
                record.device_id or "",
                record.device_type or "",
                orjson.dumps(record.details).decode(),
                record.version,
                int(record.is_deleted),
            ),
            f"{record.signal_id}/{record.version}",
        )
    if isinstance(record, IdentityLink):
        return (
            "identity_links",
            (record.device_id, record.customer_id, record.linked_at_ms, record.retro_window_ms),
            f"{record.device_id}/{record.customer_id}/{record.linked_at_ms}",
        )
    if isinstance(record, SessionMerge):
        return (
            "session_merges",
            (record.session_id, record.merged_into, record.person_id, record.merged_at_ms),
            f"{record.session_id}/{record.merged_into}",
        )
    if isinstance(record, MinuteAggregate):
        return (
            "minute_aggregates",
            (
                record.minute_ms // 1000,
                record.shard,
                record.channel,
                record.metric,
                record.key,
                record.count,
                record.amount,
                record.version,
            ),
            f"{record.minute_ms}/{record.shard}/{record.channel}/{record.metric}/{record.key}/{record.version}",
        )
    if isinstance(record, FrictionSpike):
        return (
            "friction_spikes",
            (
                record.spike_id,
                record.type,
                record.channel,
                record.device_type,
                record.started_at_ms,
                record.ended_at_ms,
                record.observed,
                record.expected,
                record.ratio,
                record.score,
                record.status,
                record.signals,
                record.expected_signals,
                record.denominator,
                record.version,
                int(record.is_deleted),
            ),
            f"{record.spike_id}/{record.version}",
        )
    raise TypeError(f"not a storable record: {type(record).__name__}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0

    def delays(self) -> Iterable[float]:
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


class ClickHouseSink:
    """Batching, deduplicating, retrying writer of core records into the public tables."""

    def __init__(
        self,
        client: Client,
        *,
        batch_rows: int = 50_000,
        flush_interval_s: float | None = 2.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float | None] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry = retry or RetryPolicy()
        self._clock, self._sleep = clock, sleep
        self._rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
        self._ids: dict[str, list[str]] = {t: [] for t in COLUMNS}
        #: Table -> the ClickHouse types of the columns written, read once: given them, the
        #: client does not ask the table's structure before every insert (a query each time,
        #: a third of a small insert's time on chDB).
        self._types: dict[str, list[str]] = {}
        # Set on the first clock reading (a clock may have no time yet: it returns None).
        self._last_flush: float | None = None

    @property
    def buffered(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def add(self, records: Iterable[Record]) -> None:
        """Buffer every record first, then flush the full tables: if a flush fails (ClickHouse
        unreachable after every retry), every record is still buffered and the caller may
        flush again later; nothing handed over is lost."""
        self._buffer(records)
        self._flush_full()

    def add_rejections(self, rejections: Iterable[RejectedInput]) -> None:
        """Buffer rejections; a message's bytes are buffered once, however many of its
        elements were rejected (the rejections of one message arrive together)."""
        self._buffer_rejections(rejections)
        self._flush_full()

    def add_batch(self, records: Iterable[Record], rejections: Iterable[RejectedInput]) -> None:
        """Buffer records and rejections read together, then flush the full tables.

        One call, not `add` then `add_rejections`: when ClickHouse is away, the full-batch
        flush of `add` raises before the rejections are buffered, and a caller that then
        flushes what is buffered and commits its input loses them (found by the chaos test)."""
        self._buffer(records)
        self._buffer_rejections(rejections)
        self._flush_full()

    def _buffer(self, records: Iterable[Record]) -> None:
        for record in records:
            table, row, rid = _row(record)
            self._rows[table].append(row)
            self._ids[table].append(rid)

    def _buffer_rejections(self, rejections: Iterable[RejectedInput]) -> None:
        last_raw: bytes | None = None
        mid = ""
        for item in rejections:
            raw = item.rejection.raw
            if raw is not last_raw:
                new_mid = message_id(item)
                if new_mid != mid:
                    self._rows["rejected_messages"].append(message_row(item, new_mid))
                    self._ids["rejected_messages"].append(new_mid)
                last_raw, mid = raw, new_mid
            row, rid = rejection_row(item, mid)
            self._rows["rejected_events"].append(row)
            self._ids["rejected_events"].append(rid)

    def _flush_full(self) -> None:
        """Write every full batch (exactly `batch_rows` rows each: the cut is deterministic)."""
        for table in COLUMNS:
            while len(self._rows[table]) >= self.batch_rows:
                self._flush_table(table, self.batch_rows)
        self._maybe_flush_on_time()

    def flush(self) -> FlushReport:
        report = FlushReport()
        for table in COLUMNS:
            written = self._flush_table(table)
            if written:
                report.rows[table] = written
        self._last_flush = self._clock()
        return report

    def close(self) -> None:
        self.flush()

    def _maybe_flush_on_time(self) -> None:
        """Flush every table once `flush_interval_s` has passed since the last flush (or since
        the clock's first reading)."""
        if self.flush_interval_s is None:
            return
        now = self._clock()
        if now is None:
            return
        if self._last_flush is None:
            self._last_flush = now
        elif now - self._last_flush >= self.flush_interval_s:
            self.flush()

    def _flush_table(self, table: str, limit: int | None = None) -> int:
        """Write the first `limit` buffered rows of `table` (all by default); they leave the
        buffer only once written, so a failure keeps them."""
        rows, ids = self._rows[table][:limit], self._ids[table][:limit]
        if not rows:
            return 0
        self._write(table, rows, ids)
        del self._rows[table][: len(rows)], self._ids[table][: len(rows)]
        return len(rows)

    def _write(self, table: str, rows: list[tuple[Any, ...]], ids: list[str]) -> None:
        """Insert `rows`; on a permanent failure halve the batch until the refused rows are
        found, quarantine them and write the rest. Transient failures are retried by
        `_insert`, which raises SinkError (rows still buffered) when they last."""
        token = hashlib.sha256("\x1f".join([table, *ids]).encode()).hexdigest()
        try:
            self._insert(table, rows, token)
        except _Refused as refused:
            if len(rows) == 1:
                self._quarantine(table, rows[0], ids[0], refused.cause)
                return
            half = len(rows) // 2
            self._write(table, rows[:half], ids[:half])
            self._write(table, rows[half:], ids[half:])

    def _quarantine(self, table: str, row: tuple[Any, ...], rid: str, cause: BaseException) -> None:
        entry = (table, rid, error_text(cause), row_as_json(row, COLUMNS[table]))
        token = hashlib.sha256(f"quarantine\x1f{table}\x1f{rid}".encode()).hexdigest()
        try:
            self._insert("quarantined_rows", [entry], token, QUARANTINE_COLUMNS)
        except _Refused as refused:  # cannot happen for JSON text; say so loudly, go on
            raise SinkError(f"quarantine of a {table} row refused: {refused.cause}") from None
        metrics.SINK_QUARANTINED.labels(table).inc()

    def _insert(
        self,
        table: str,
        rows: list[tuple[Any, ...]],
        token: str,
        column_names: list[str] | None = None,
    ) -> None:
        columns = [list(column) for column in zip(*rows, strict=True)]
        names = column_names or COLUMNS[table]
        delays = iter(self.retry.delays())
        while True:
            started = time.perf_counter()
            try:
                self.client.insert(
                    table,
                    columns,
                    column_names=names,
                    column_type_names=self._column_types(table, names),
                    column_oriented=True,
                    settings={"insert_deduplication_token": token},
                )
            except Exception as exc:
                metrics.SINK_ERRORS.labels(table).inc()
                if is_permanent(exc):
                    raise _Refused(exc) from exc
                delay = next(delays, None)
                if delay is None:
                    raise SinkError(
                        f"insert into {table} failed after {self.retry.attempts} attempts: {exc}"
                    ) from exc
                metrics.SINK_RETRIES.labels(table).inc()
                self._sleep(delay)
                continue
            metrics.SINK_INSERT_DURATION.labels(table).observe(time.perf_counter() - started)
            metrics.SINK_ROWS.labels(table).inc(len(rows))
            return

    def _column_types(self, table: str, names: list[str]) -> list[str]:
        """The types of `names` in `table`, asked once (a failure is the insert's: retried or
        refused alike)."""
        types = self._types.get(table)
        if types is None:
            described = {
                row[0]: row[1] for row in self.client.query(f"DESCRIBE TABLE {table}").result_rows
            }
            types = self._types[table] = [described[name] for name in names]
        return types


class _Refused(StorageError):
    """Internal: an insert failed permanently (caught within this module)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
