"""Assembling the embedded pipeline's adapters from settings (the imperative shell)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.settings import Settings
from streams.sinks.clickhouse import ClickHouseSink


@contextmanager
def open_embedded_sink(settings: Settings, database: str | None = None) -> Iterator[ClickHouseSink]:
    """Connect to ClickHouse (chDB by default), migrate, and yield a batching sink.

    Batches are cut by size only: a finite input replayed is then cut into the very same
    batches, whose dedup tokens make the second run a no-op (idempotent ingest).
    """
    client = connect(settings.resolved_clickhouse_dsn(), database)
    apply_migrations(client)
    sink = ClickHouseSink(client, batch_rows=settings.sink_batch_rows, flush_interval_s=None)
    try:
        yield sink
    finally:
        sink.close()
