"""Assembling the embedded pipeline's adapters from settings (the imperative shell)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import connect
from streams.clickhouse.migrations import apply_migrations
from streams.core.config import JourneyConfig
from streams.core.pipeline import END_OF_TIME_MS, JourneyPipeline
from streams.embedded.runner import EmbeddedRunner
from streams.embedded.state import JourneyStateStore
from streams.settings import Settings
from streams.sinks.clickhouse import ClickHouseSink
from streams.spike_settings import spike_settings

#: The embedded sink flushes every table at least once per day of *event time* (besides
#: flushing a table whenever it holds `sink_batch_rows` rows). Event time, not the wall clock:
#: the same input is then cut into the very same batches whatever the machine's speed, so their
#: dedup tokens make a second ingest of the same file a no-op (idempotent ingest), and a long
#: input with quiet tables (sessions, friction, links) still writes them as it goes. A day, not
#: an hour: each flush is one insert per table (10-30 ms each on chDB), and hourly flushes
#: doubled the time of a simulated week.
EMBEDDED_FLUSH_INTERVAL_S = 86_400.0


class WatermarkClock:
    """The journey pipeline's watermark (event time, seconds) as the sink's clock; None until
    the pipeline has seen an event."""

    def __init__(self) -> None:
        self.pipeline: JourneyPipeline | None = None

    def __call__(self) -> float | None:
        if self.pipeline is None or self.pipeline.watermark_ms <= -END_OF_TIME_MS:
            return None
        return self.pipeline.watermark_ms / 1000


def embedded_runner(
    client: Client,
    *,
    batch_rows: int,
    config: JourneyConfig | None = None,
    flush_interval_s: float | None = EMBEDDED_FLUSH_INTERVAL_S,
    resume: bool = True,
    checkpoint_every_s: float | None = None,
) -> EmbeddedRunner:
    """A runner over a batching sink flushed on size or on event time (see above), carrying on
    from the database's saved journey state (`resume`) and saving its own. The commands pass
    `config` from streams/journey_settings.py; None: the core's defaults (tests)."""
    clock = WatermarkClock()
    sink = ClickHouseSink(
        client, batch_rows=batch_rows, flush_interval_s=flush_interval_s, clock=clock
    )
    runner = EmbeddedRunner(
        sink,
        config,
        store=JourneyStateStore(client),
        resume=resume,
        checkpoint_every_s=checkpoint_every_s,
        spike_settings=spike_settings(),
    )
    clock.pipeline = runner.pipeline
    return runner


@contextmanager
def open_embedded_runner(
    settings: Settings,
    database: str | None = None,
    *,
    config: JourneyConfig,
    flush_interval_s: float | None = EMBEDDED_FLUSH_INTERVAL_S,
    resume: bool = True,
) -> Iterator[EmbeddedRunner]:
    """Connect to ClickHouse (chDB by default), migrate, and yield a runner whose sink flushes
    on size or every `flush_interval_s` of event time (None: size only). The runner carries on
    from the database's saved journey state unless `resume` is false."""
    client = connect(settings.resolved_clickhouse_dsn(), database)
    apply_migrations(client)
    runner = embedded_runner(
        client,
        batch_rows=settings.sink_batch_rows,
        config=config,
        flush_interval_s=flush_interval_s,
        resume=resume,
        checkpoint_every_s=settings.ingest_checkpoint_s,
    )
    try:
        yield runner
    finally:
        runner.sink.close()
