"""Runtime settings, read from `PARCOURS_*` environment variables (and a `.env` file).

With nothing set, Parcours runs embedded: an in-process bus instead of Kafka and an on-disk
chDB database under `.parcours/chdb`. Secrets (the ClickHouse DSN can carry a password) are
`SecretStr` so they never appear in logs or reprs. The journey's thresholds are elsewhere:
streams/journey_settings.py (`PARCOURS_JOURNEY_*` and `parcours.toml`). Only settings that
something reads are declared: one that nothing reads would let a user believe they changed
something.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an adapter needs to find its servers. Built once per process."""

    model_config = SettingsConfigDict(
        env_prefix="PARCOURS_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    #: Local state: the embedded chDB database (`chdb/`) and the worker's Faust directory
    #: (`faust/<app id>/`, empty with Parcours's in-memory tables, but Faust makes it).
    data_dir: Path = Path(".parcours")
    #: `chdb:///abs/path` (embedded) or `http(s)://user:pass@host:8123/db` (server).
    #: Unset: embedded chDB under `<data_dir>/chdb`.
    clickhouse_dsn: SecretStr | None = None
    #: The query commands' DSN (`parcours sql | funnel | kpi | friction`): a server user with
    #: the `parcours_analyst` role. Unset: the pipeline's DSN, read-only per query.
    analyst_dsn: SecretStr | None = None
    kafka_bootstrap: str | None = None
    sink_batch_rows: int = Field(default=50_000, gt=0)
    #: `parcours ingest` saves its journey state this often (wall clock) while reading, besides
    #: at the end: a run killed in between resumes from the last save.
    ingest_checkpoint_s: float = Field(default=60.0, gt=0)
    metrics_port: int | None = None

    def resolved_clickhouse_dsn(self) -> str:
        """The DSN to connect with: the configured one, or the embedded default."""
        if self.clickhouse_dsn is not None:
            return self.clickhouse_dsn.get_secret_value()
        return f"chdb://{(self.data_dir / 'chdb').resolve()}"


def load_settings() -> Settings:
    """Read settings from the environment (a function so tests can set env vars first)."""
    return Settings()


class StreamSettings(BaseSettings):
    """Kafka topics and worker behaviour (`PARCOURS_STREAM_*`)."""

    model_config = SettingsConfigDict(env_prefix="PARCOURS_STREAM_", extra="ignore")

    app_id: str = "parcours"
    clickstream_topic: str = "clickstream"
    app_events_topic: str = "app-events"
    store_events_topic: str = "store-events"
    #: Internal topics; the prefix keeps them apart from producers' topics.
    journey_topic: str = "parcours-journey"
    records_topic: str = "parcours-records"
    dlq_topic: str = "parcours-dlq"
    #: The suppression list (keyed hashes of erased subjects; compacted): `parcours forget`
    #: writes it, every worker and sink reads all of it.
    suppressions_topic: str = "parcours-suppressions"
    #: The journey topic's partitions (persons are placed by this number, so it cannot change
    #: under an existing journey topic), and the count for input topics `parcours worker`
    #: creates when none exists; existing input topics keep theirs (the device table follows).
    partitions: int = Field(default=4, gt=0)
    #: An input partition read to its end and silent this long (wall clock) is idle: its
    #: watermark follows the wall clock and no longer holds results back.
    idle_after_s: float = Field(default=10.0, gt=0)
    #: Watermark alignment: an input partition with unread data more than this far ahead of
    #: the slowest one, in event time, is paused until the slowest catches up. Replaying a
    #: backlog, this bounds the events that wait for the watermark (in state) to this much.
    align_skew_s: float = Field(default=120.0, gt=0)
    tick_interval_s: float = Field(default=1.0, gt=0)
    #: Table recovery: a changelog partition whose records the Kafka client handed out and
    #: recovery has not heard of for this long is read again (streams/worker/recovery_watch.py).
    recovery_stalled_after_s: float = Field(default=30.0, gt=0)
    #: Messages an agent takes at once: one producer flush and one checkpoint per batch.
    batch_max: int = Field(default=500, gt=0)
    #: How long an agent waits to fill a batch before processing what it has.
    batch_within_s: float = Field(default=0.2, gt=0)
    #: Persons per journey checkpoint record (bounds the record's size; see checkpoint.py).
    checkpoint_persons: int = Field(default=300, gt=0)

    def input_topics(self) -> dict[str, str]:
        """Configured topic name -> the contract's canonical topic name."""
        return {
            self.clickstream_topic: "clickstream",
            self.app_events_topic: "app-events",
            self.store_events_topic: "store-events",
        }
