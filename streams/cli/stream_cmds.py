"""`parcours worker | sink | produce`: the streaming mode's processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from streams.cli.app import app
from streams.cli.config_cmd import journey_config_or_exit
from streams.cli.output import error_line
from streams.errors import ParcoursError
from streams.settings import StreamSettings, load_settings

err = Console(stderr=True)


def _bootstrap() -> str:
    settings = load_settings()
    if not settings.kafka_bootstrap:
        err.print(
            "[red]error:[/red] set PARCOURS_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092; `infra/kafka/local-kafka.sh start` prints one)"
        )
        raise typer.Exit(2)
    return settings.kafka_bootstrap


def _ensure_topics(bootstrap: str, stream: StreamSettings) -> int:
    """Create the topics before Faust subscribes, and return the input topics' partition count.

    Two workers starting together otherwise race Faust's own creation of its internal topics:
    the group forms while `parcours-journey` is missing, and its partitions stay unassigned
    until a metadata refresh minutes later. Input topics that exist keep their partition count
    (producers' topics are theirs): the device table is partitioned like them, and the journey
    topic has `PARCOURS_STREAM_PARTITIONS`. The three input topics must agree, because a
    device's state lives in the partition its events come from, whichever topic they are on.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    inputs = list(stream.input_topics())
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=30).topics
    # a missing input topic is created like the existing ones, so that all three agree
    like = [len(existing[name].partitions) for name in inputs if name in existing]
    wanted = {name: max(like, default=stream.partitions) for name in inputs}
    for name in (stream.journey_topic, stream.records_topic, stream.dlq_topic):
        wanted[name] = stream.partitions
    new = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    for future in (admin.create_topics(new) if new else {}).values():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    topics = existing
    for _ in range(60):  # a new topic's metadata may take a moment to show
        topics = admin.list_topics(timeout=30).topics
        if all(name in topics for name in wanted):
            break
        time.sleep(0.5)
    # state changelogs a worker can purge after an erasure; older ones were `compact` only
    from streams.privacy.errors import PrivacyUnavailable
    from streams.worker.topic_purge import TopicPurge

    try:
        TopicPurge(bootstrap).make_purgeable(
            [f"{stream.app_id}-{table}-changelog" for table in ("devices", "persons")]
        )
    except PrivacyUnavailable as exc:  # no right to alter topics: erasure still cleans state
        err.print(error_line("warning:", f"{exc} (an erasure cannot purge their old records)"))
    journey = len(topics[stream.journey_topic].partitions)
    if journey != stream.partitions:
        err.print(
            f"[red]error:[/red] {stream.journey_topic} has {journey} partitions and "
            f"PARCOURS_STREAM_PARTITIONS is {stream.partitions}: persons are placed by that "
            "number, so it cannot change under an existing journey topic (set it back, or use "
            "a new PARCOURS_STREAM_APP_ID and topics)"
        )
        raise typer.Exit(2)
    counts = {name: len(topics[name].partitions) for name in inputs}
    if len(set(counts.values())) != 1:
        shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
        err.print(
            "[red]error:[/red] the input topics must have the same number of partitions "
            f"(a device's state follows its events' partition); they have {shown}"
        )
        raise typer.Exit(2)
    return next(iter(counts.values()))


@app.command()
def worker(
    web_port: Annotated[
        int, typer.Option(help="Port of the worker's web server (/metrics).")
    ] = 6066,
    web_host: Annotated[
        str,
        typer.Option(
            envvar="PARCOURS_METRICS_ADDR",
            help="Address the web server (/metrics) listens on; 0.0.0.0 in a container.",
        ),
    ] = "127.0.0.1",
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "warning",
) -> None:
    """Run a journey worker (Faust). Start several, on any hosts: they share the partitions."""
    bootstrap = _bootstrap()
    journey = journey_config_or_exit()
    import faust

    from streams.worker.app import create_app

    settings, stream = load_settings(), StreamSettings()
    try:
        input_partitions = _ensure_topics(bootstrap, stream)
        faust_app = create_app(
            settings,
            stream,
            journey,
            web_port=web_port,
            web_host=web_host,
            input_partitions=input_partitions,
            read_suppressions=True,
        )
    except ParcoursError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None

    @faust_app.task
    async def honour_loglevel() -> None:
        """mode leaves the root logger at DEBUG and filters in its handler, so every debug call
        in aiokafka and Faust built a log record: about 7% of a busy worker's CPU."""
        import logging

        logging.getLogger().setLevel(loglevel.upper())

    faust.Worker(faust_app, loglevel=loglevel).execute_from_commandline()


def _migrated_or_exit(client: Any) -> None:
    """Apply migrations; a sink user with the `parcours_writer` role may not (no DDL), and
    then the schema must already be up to date (an administrator ran `parcours migrate`)."""
    from streams.clickhouse.migrations import apply_migrations, load_migrations

    try:
        apply_migrations(client)
        return
    except Exception as exc:
        denied = exc
    try:
        done = {
            int(r[0]) for r in client.query("SELECT version FROM schema_migrations").result_rows
        }
    except Exception:
        done = set()
    pending = [m.name for m in load_migrations() if m.version not in done]
    if pending:
        first = str(denied).strip().splitlines()[0] if str(denied).strip() else repr(denied)
        err.print(
            f"cannot apply migrations {', '.join(pending)} with this DSN ({first}); "
            "run `parcours migrate` with an administrator's DSN first",
            markup=False,
        )
        raise typer.Exit(1)


@app.command()
def sink(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds without records.")
    ] = None,
    metrics_addr: Annotated[
        str,
        typer.Option(
            envvar="PARCOURS_METRICS_ADDR",
            help="Address /metrics listens on; 0.0.0.0 in a container.",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run the sink stage: parcours-records -> ClickHouse, offsets committed after each insert."""
    bootstrap = _bootstrap()
    from streams.clickhouse.client import connect
    from streams.metrics import serve_metrics
    from streams.sinks.clickhouse import ClickHouseSink
    from streams.worker.sink_stage import SinkStage

    settings = load_settings()
    if metrics_port is not None:
        serve_metrics(metrics_port, metrics_addr)
    client = connect(settings.resolved_clickhouse_dsn())
    _migrated_or_exit(client)
    stream = StreamSettings()
    try:
        privacy, suppressions = _sink_privacy(bootstrap, client, stream)
    except ParcoursError as exc:
        err.print(error_line("error:", exc))
        raise typer.Exit(1) from None
    stage = SinkStage(
        bootstrap,
        stream.records_topic,
        ClickHouseSink(client, batch_rows=settings.sink_batch_rows, flush_interval_s=None),
        dlq_topic=stream.dlq_topic,
        privacy=privacy,
        suppressions=suppressions,
    )
    stats = stage.run(idle_exit_s=idle_exit)
    suppressed = f", {stats.suppressed:,} dropped (erased subjects)" if stats.suppressed else ""
    err.print(
        f"sink stopped: {stats.records:,} records and {stats.rejected:,} rejections in {stats.batches:,} batches{suppressed}"
    )


def _sink_privacy(bootstrap: str, client: Any, stream: StreamSettings) -> tuple[Any, Any]:
    """The sink's suppression list: the database's and the topic's, the topic followed."""
    from streams.privacy.erase import suppression_list
    from streams.privacy.policy import PrivacyFilter
    from streams.privacy.settings import PrivacySettings, load_key
    from streams.worker.suppression_topic import SuppressionReader

    key = load_key(PrivacySettings(), load_settings().data_dir)
    reader = SuppressionReader(bootstrap, stream.suppressions_topic)
    privacy = PrivacyFilter(key, suppressed=suppression_list(client) | reader.catch_up())
    return privacy, reader


@app.command()
def produce(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
    batch: Annotated[int, typer.Option(help="Pack up to N events of one device per message.")] = 1,
) -> None:
    """Send ingest-format JSON-lines files to Kafka (keyed by device, idempotent producer)."""
    from streams.worker.produce import KafkaEventProducer

    stream = StreamSettings()
    topics = {canonical: name for name, canonical in stream.input_topics().items()}
    producer = KafkaEventProducer(_bootstrap(), topics)

    def items() -> object:
        for path in files:
            with path.open("rb") as fh:
                for line in fh:
                    try:
                        doc = orjson.loads(line)
                        yield doc["topic"], doc["value"]
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        # Not the ingest format: send the line as is so that the DLQ shows it.
                        yield topics.get("clickstream", "clickstream"), line.rstrip(b"\n")

    producer.send_batched(items(), batch=batch)  # type: ignore[arg-type]
    stats = producer.flush()
    err.print(
        f"produced {stats.messages:,} messages ({stats.events:,} events): {stats.delivered:,} delivered, {stats.failed:,} failed"
    )
    if stats.failed:
        sys.exit(1)
