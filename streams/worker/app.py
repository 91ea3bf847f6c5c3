"""The Faust application: decode + identity by device, then journeys by person.

Intuition: two agents, each owning one kind of state, joined by a topic keyed for the next.

    clickstream, app-events, store-events  (keyed by device_id; customer_id without a device)
        -> identify   decode; rejections -> parcours-dlq + records; identity by device
                      (table `devices`, changelog-backed)
        -> parcours-journey  (partitioned by person)
        -> journey    sessions, checkout attempts, friction (table `persons`), aggregates
        -> parcours-records  -> the sink stage (streams/worker/sink_stage.py) -> ClickHouse

Cross-partition identity: when a device is linked, `identify` sends a LinkNotice keyed by the
*anonymous* person; whichever worker owns that person hands its open session over in a Handover
keyed by the *customer*, and the customer's owner merges it. No worker ever reads another
partition's state; the merge is two messages, and the surviving session is the one that started
first, so the answer does not depend on which message arrives first.

Watermarks (the rule; details in streams/worker/journey_stage.py): an input partition's
watermark is its newest event time minus the grace period, carried on every journey input and
broadcast by `identify` to every journey partition after each batch. A journey partition's
watermark is the minimum over the input partitions and over the other journey partitions'
broadcast input watermarks (so a Handover in flight is never overtaken). Idle partitions cannot
hold results back forever: a worker that has read all of an input partition and seen nothing
new for `idle_after_s` (PARCOURS_STREAM_IDLE_AFTER_S, 10 s) declares it idle, and its watermark
follows the wall clock; at the end of a finite input every session therefore closes. A pause
(a rebalance, a busy machine) is not idleness: nothing is declared while data waits. A timer
sends ticks to every journey partition so that quiet partitions still run and broadcast.

Messages are packed (streams/worker/outbox.py): a batch's journey inputs for one journey
partition, and its records for one records partition, travel as one JSON array.

Delivery: at-least-once (faust-streaming's exactly_once has open duplicate bugs), agents at
concurrency 1, and crash safety by construction (streams/worker/checkpoint.py): each agent
takes a batch, sends its outputs, waits until the producer has them acknowledged, and only then
writes state to the changelog: the identity stage device by device (its replays are caught by
each device's dedup memory and the core's source-position guard), the journey stage as one
checkpoint record per partition and batch. State is held as live objects in the tables'
in-memory stores and serialised only when checkpointed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import faust
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import generate_latest

from streams import metrics
from streams.core.config import JourneyConfig
from streams.privacy.setup import worker_privacy
from streams.settings import Settings, StreamSettings
from streams.worker.erasure import Erasure
from streams.worker.faust_internals import (
    RewindingConsumer,
    client_position,
    committed_offsets,
    handed_offsets,
    keep_stream_records_on_resume,
)
from streams.worker.identify_stage import IdentifyStage, Wiring
from streams.worker.input_ends import InputEnd
from streams.worker.journey_stage import JourneyStage
from streams.worker.recovery_watch import RecoveryWatch
from streams.worker.stalls import report_stalls
from streams.worker.suppression_topic import SuppressionReader
from streams.worker.topic_purge import PURGEABLE_CHANGELOG, TopicPurge

log = logging.getLogger(__name__)

#: Room for a checkpoint record (Kafka's default is 1 MB). A record holds the states of the
#: persons a batch touched and the held hand-overs. Before input alignment, waiting events
#: grew with a replayed backlog and a 200k-event backlog made an 8.6 MB record; with it, the
#: largest over a 1M-event backlog was 1.7 MB (tests/perf/kafka_e2e.py). The room is a margin.
MAX_RECORD_BYTES = 64 * 1024 * 1024


def stream_of(events: faust.StreamT[bytes]) -> faust.Stream[bytes]:
    """An agent's stream: a `faust.Stream`, whose `take_events` the `StreamT` type omits."""
    return cast(faust.Stream[bytes], events)


def create_app(
    settings: Settings,
    stream: StreamSettings,
    config: JourneyConfig,
    *,
    web_port: int = 6066,
    web_host: str = "127.0.0.1",
    input_partitions: int | None = None,
    read_suppressions: bool = False,
) -> faust.App:
    """The worker's Faust app. `input_partitions`: the input topics' partition count, when
    they exist already (the device table is partitioned like them); else the journey's.
    `read_suppressions`: read the suppression topic to its end here (before any input), then
    follow it while the worker runs (streams/worker/erasure.py); raises `PrivacyUnavailable`
    when it cannot be read."""
    if not settings.kafka_bootstrap:
        raise ValueError("PARCOURS_KAFKA_BOOTSTRAP is not set: streaming mode needs a Kafka broker")
    n = stream.partitions
    k = input_partitions or n
    # Faust makes a `<app id>-data` directory in the working directory by default (even with
    # in-memory tables); it belongs with the rest of Parcours's local state. Faust creates
    # only the last level of it.
    datadir = settings.data_dir / "faust" / stream.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        stream.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(datadir),
        topic_partitions=n,
        topic_replication_factor=1,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=MAX_RECORD_BYTES,
        # zstd (through cramjam, like lz4 before it): on the worker's batches (JSON records,
        # MessagePack checkpoints) it wrote 1.1-1.3x fewer bytes than lz4, and compressed
        # faster, on batches of simulated persons; consumers and table recovery decompress it
        producer_compression_type="zstd",
        web_enabled=True,
        web_host=web_host,  # 0.0.0.0 in a container, or Prometheus cannot scrape /metrics
        web_port=web_port,
        # A rebalance waits until the batch in progress is acknowledged: a revoked partition's
        # checkpoint is never written after its new owner has started restoring it.
        stream_wait_empty=True,
    )
    # before anything makes the consumer: records Faust fetches and drops are fetched again
    app.transport.Consumer = RewindingConsumer  # type: ignore[misc]
    app.add_dependency(RecoveryWatch(app, stream.recovery_stalled_after_s))
    keep_stream_records_on_resume(app)

    def raw_topic(*names: str, partitions: int, internal: bool = False) -> faust.TopicT:
        """A topic of raw bytes: the stages (de)serialise what they send themselves."""
        return app.topic(
            *names,
            partitions=partitions,
            internal=internal,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    topic_map = stream.input_topics()
    inputs = raw_topic(*topic_map, partitions=k)
    journey_topic = raw_topic(stream.journey_topic, partitions=n, internal=True)
    records_topic = raw_topic(stream.records_topic, partitions=n)
    dlq_topic = raw_topic(stream.dlq_topic, partitions=n)
    # changelogs a worker can purge after an erasure (streams/worker/topic_purge.py)
    big = {"max.message.bytes": str(MAX_RECORD_BYTES), **PURGEABLE_CHANGELOG}
    devices = app.Table("devices", default=None, partitions=k, extra_topic_configs=big)
    # values of raw bytes: the journey stage writes MessagePack (streams/core/wire.py) and
    # decodes what it restores itself, including the JSON of earlier versions
    persons = app.Table(
        "persons", default=None, partitions=n, value_type=bytes, extra_topic_configs=big
    )
    partitioner = DefaultPartitioner()

    def partition_of(key: str) -> int:
        """The partition of a person or device key (the producer's partitioner, as Faust's)."""
        return int(partitioner(key.encode(), list(range(n)), list(range(n))))

    privacy = worker_privacy(settings.data_dir, config)
    erasure = None
    if read_suppressions:
        suppressions = SuppressionReader(settings.kafka_bootstrap, stream.suppressions_topic)
        privacy.suppress(suppressions.catch_up())
        erasure = Erasure(privacy, suppressions, TopicPurge(settings.kafka_bootstrap))
    wiring = Wiring(
        app,
        journey_topic,
        records_topic,
        dlq_topic,
        n,
        config,
        partition_of,
        privacy=privacy,
        erasure=erasure,
    )
    identify_stage = IdentifyStage(
        wiring, devices, topic_map, stream.idle_after_s, stream.align_skew_s
    )
    journey_stage = JourneyStage(
        wiring,
        persons,
        input_sources=[f"{t}/{i}" for t in topic_map for i in range(k)],
        checkpoint_persons=stream.checkpoint_persons,
    )

    @app.agent(inputs, concurrency=1)
    async def identify(events: faust.StreamT[bytes]) -> None:
        async for batch in stream_of(events).take_events(
            stream.batch_max, within=stream.batch_within_s
        ):
            await identify_stage.process(batch)

    @app.agent(journey_topic, concurrency=1)
    async def journey(messages: faust.StreamT[bytes]) -> None:
        async for batch in stream_of(messages).take_events(
            stream.batch_max, within=stream.batch_within_s
        ):
            await journey_stage.process(batch)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any = None, **_: Any) -> None:
        """A revoked partition's state now belongs to its new owner: forget our copy.
        Faust sends the revoked partitions as the signal's first argument."""
        for tp in args[0]:
            if tp.topic == stream.journey_topic:
                journey_stage.forget(tp.partition)
            elif tp.topic in topic_map:
                identify_stage.forget(tp.partition)

    async def tick() -> None:
        """Idle input partitions declare it (streams/worker/identify_stage.py); every journey
        partition gets a tick, so that it runs a batch (and broadcasts) even when quiet."""
        try:
            owned = [tp for tp in app.consumer.assignment() if tp.topic in topic_map]
            if owned:
                ends = await asyncio.wait_for(app.consumer.highwaters(*owned), timeout=5)
                # Faust keeps the group's committed offsets (next to read) and the last offset
                # it handed to the agents, privately
                committed = committed_offsets(app.consumer)
                handed = handed_offsets(app.consumer)
                read: dict[tuple[str, int], InputEnd] = {}
                for tp, end in ends.items():
                    fetched = client_position(app.consumer, tp)
                    done = identify_stage.position.get(f"{tp.topic}/{tp.partition}", (0, 0.0))[0]
                    mark = InputEnd(end, committed.get(tp) or 0, fetched or 0, handed.get(tp))
                    read[(tp.topic, tp.partition)] = mark
                    behind = end - max(done, mark.committed)
                    metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, behind))
                await identify_stage.declare_idle(read, time.time())
        except Exception as exc:  # a rebalance in progress: try again at the next tick
            log.warning("idle check skipped: %r", exc)
        try:
            await identify_stage.erase_when_idle()
        except Exception as exc:  # Kafka unreachable: the erasure is tried again
            log.warning("erasure of suppressed subjects not done yet: %r", exc)
        for p in range(n):
            await journey_topic.send(key=None, value=b'{"kind": "tick"}', partition=p)
        journey_stage.gauges()
        report_stalls(journey_stage, time.time(), log, describe=identify_stage.describe)

    app.timer(interval=stream.tick_interval_s)(tick)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(metrics.REGISTRY), content_type="text/plain; version=0.0.4"
        )

    return app
