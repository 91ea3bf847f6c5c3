"""The Faust application: decode + identity by device, then journeys by person.

Intuition: two agents, each owning one kind of state, joined by a topic keyed for the next.

    clickstream, app-events, store-events  (keyed by device_id; customer_id without a device)
        -> identify   decode; rejections -> parcours-dlq + records; identity by device
                      (table `devices`, changelog-backed)
        -> parcours-journey  (keyed by person)
        -> journey    sessions, checkout attempts, friction (table `persons`), aggregates
        -> parcours-records  -> the sink stage (streams/worker/sink_stage.py) -> ClickHouse

Cross-partition identity: when a device is linked, `identify` sends a LinkNotice keyed by the
*anonymous* person; whichever worker owns that person hands its open session over in a Handover
keyed by the *customer*, and the customer's owner merges it. No worker ever reads another
partition's state; the merge is two messages, and the surviving session is the one that started
first, so the answer does not depend on which message arrives first.

Watermarks: each input partition's watermark is its newest event time minus the grace period,
carried on every journey message; a journey partition's watermark is the minimum over the input
partitions it hears from, leaving out those silent for `idle_after_s` (see
streams/core/watermarks.py). A timer sends ticks to every journey partition so that idle time is
noticed and sessions close at the end of the input.

Delivery: at-least-once (faust-streaming's exactly_once has open duplicate bugs), agents at
concurrency 1. Replayed input regenerates the same ids; ClickHouse deduplicates (docs/storage.md).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import generate_latest

from schemas import Event, Rejection, RejectReason, decode
from streams import metrics
from streams.core.aggregates import AggregateState, aggregate_step, flush_aggregates
from streams.core.codec import (
    device_from_dict,
    device_to_dict,
    message_from_dict,
    message_to_dict,
    person_from_dict,
    person_to_dict,
)
from streams.core.config import MINUTE_MS, JourneyConfig
from streams.core.identity import Duplicate, LinkNotice, Routed, identity_step
from streams.core.journey import Handover, PersonState, advance, journey_step, next_deadline
from streams.core.records import IdentityLink
from streams.core.watermarks import WatermarkTracker
from streams.settings import Settings, StreamSettings
from streams.sinks.base import RejectedInput
from streams.worker.messages import dlq_headers, record_to_bytes, rejected_to_bytes


def create_app(
    settings: Settings, stream: StreamSettings, config: JourneyConfig, *, web_port: int = 6066
) -> faust.App:
    if not settings.kafka_bootstrap:
        raise ValueError("PARCOURS_KAFKA_BOOTSTRAP is not set: streaming mode needs a Kafka broker")
    n = stream.partitions
    app = faust.App(
        stream.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=n,
        topic_replication_factor=1,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=web_port,
        stream_wait_empty=False,
    )
    raw = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    topic_map = stream.input_topics()
    inputs = app.topic(*topic_map, partitions=n, **raw)
    journey_topic = app.topic(stream.journey_topic, partitions=n, internal=True, **raw)
    records_topic = app.topic(stream.records_topic, partitions=n, **raw)
    dlq_topic = app.topic(stream.dlq_topic, partitions=n, **raw)
    devices = app.Table("devices", default=None, partitions=n)
    persons = app.Table("persons", default=None, partitions=n)
    partitioner = DefaultPartitioner()

    def partition_of(key: str) -> int:
        return int(partitioner(key.encode(), list(range(n)), list(range(n))))

    async def send_journey(
        key: str, msg: Routed | LinkNotice | Handover, extra: dict[str, Any] | None = None
    ) -> None:
        body = message_to_dict(msg)
        if extra:
            body.update(extra)
        await journey_topic.send(key=key.encode(), value=orjson.dumps(body))

    async def reject(rejection: Rejection, message: Any, error: str = "") -> None:
        metrics.EVENTS_REJECTED.labels(message.topic, str(rejection.reason)).inc()
        metrics.DLQ_MESSAGES.labels(message.topic, str(rejection.reason)).inc()
        headers = dlq_headers(rejection, message.topic, message.partition, message.offset, error)
        await dlq_topic.send(key=message.key, value=message.value, headers=headers)
        item = RejectedInput(
            rejection,
            f"kafka:{message.topic}/{message.partition}",
            message.offset,
            int(message.timestamp * 1000),
        )
        await records_topic.send(key=b"rejected", value=rejected_to_bytes(item))

    newest: dict[str, int] = {}

    @app.agent(inputs, concurrency=1)
    async def identify(events: faust.StreamT[bytes]) -> None:
        async for event in events.events():
            message = event.message
            metrics.EVENTS_CONSUMED.labels(message.topic).inc()
            source = f"{message.topic}/{message.partition}"
            received_ms = int(message.timestamp * 1000)
            for result in decode(message.value, topic_map.get(message.topic, message.topic)):
                if isinstance(result, Rejection):
                    await reject(result, message)
                    continue
                try:
                    await _identify_one(result, source, received_ms)
                except Exception as exc:  # one bad event must never stop the stream
                    failure = Rejection(
                        RejectReason.INVALID_VALUE,
                        f"processing failed: {exc!r}",
                        None,
                        message.topic,
                        message.value,
                        None,
                        result.event_id,
                    )
                    await reject(failure, message, type(exc).__name__)

    async def _identify_one(ev: Event, source: str, received_ms: int) -> None:
        newest[source] = max(newest.get(source, ev.ts_ms), ev.ts_ms)
        watermark = newest[source] - config.grace_ms
        stored = devices.get(ev.device_id) if ev.device_id else None
        state = device_from_dict(stored) if stored else None
        state, outputs = identity_step(
            state, ev, config, watermark_ms=watermark, received_at_ms=received_ms
        )
        if ev.device_id and state is not None:
            devices[ev.device_id] = device_to_dict(state)
        for out in outputs:
            if isinstance(out, Routed):
                await send_journey(out.person_id, out, {"src": source, "wm": watermark})
            elif isinstance(out, LinkNotice):
                await send_journey(out.anon_person_id, out, {"src": source, "wm": watermark})
            elif isinstance(out, IdentityLink):
                await records_topic.send(key=out.device_id.encode(), value=record_to_bytes(out))
            elif isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()

    trackers: dict[int, WatermarkTracker] = {}
    aggregates: dict[int, AggregateState] = {}
    due: dict[int, dict[str, int]] = {}
    indexed: set[int] = set()
    advanced_to: dict[int, int] = {}

    def index_partition(p: int) -> None:
        """After a (re)start or rebalance, rebuild the deadlines of this partition's persons."""
        indexed.add(p)
        due.setdefault(p, {})
        for key, stored in persons.items():
            if stored and partition_of(key) == p:
                deadline = next_deadline(person_from_dict(stored), config)
                if deadline is not None:
                    due[p][key] = deadline

    async def emit(p: int, outputs: list[Any]) -> None:
        state = aggregates.setdefault(p, AggregateState(shard=f"journey-{p}"))
        for out in outputs:
            if isinstance(out, Handover):
                await send_journey(out.into_person, out)
                continue
            if isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()
                continue
            aggregate_step(state, out, config)
            await records_topic.send(key=None, value=record_to_bytes(out))
        metrics.observe_records(outputs, time.time())

    def store(p: int, key: str, state: PersonState | None) -> None:
        if state is None:
            persons.pop(key, None)
            due[p].pop(key, None)
            return
        persons[key] = person_to_dict(state)
        deadline = next_deadline(state, config)
        if deadline is None:
            due[p].pop(key, None)
        else:
            due[p][key] = deadline

    async def process_journey_message(
        p: int, tracker: WatermarkTracker, data: dict[str, Any], now: float
    ) -> None:
        if "src" in data:
            tracker.observe(data.pop("src"), data.pop("wm"), now)
        msg = message_from_dict(data)
        watermark = tracker.watermark(now)
        if isinstance(msg, Routed):
            msg = dataclasses.replace(msg, watermark_ms=watermark)
            key = msg.person_id
        elif isinstance(msg, LinkNotice):
            msg = dataclasses.replace(msg, watermark_ms=watermark)
            key = msg.anon_person_id
        else:
            key = msg.into_person
        stored = persons.get(key)
        state, outputs = journey_step(person_from_dict(stored) if stored else None, msg, config)
        store(p, key, state)
        await emit(p, outputs)

    @app.agent(journey_topic, concurrency=1)
    async def journey(messages: faust.StreamT[bytes]) -> None:
        async for event in messages.events():
            p = event.message.partition
            if p not in indexed:
                index_partition(p)
            tracker = trackers.get(p)
            if tracker is None:
                tracker = trackers[p] = WatermarkTracker(idle_after_s=stream.idle_after_s)
                tracker.expect([f"{t}/{i}" for t in topic_map for i in range(n)], time.time())
            data = orjson.loads(event.message.value)
            now = time.time()
            try:
                if data["kind"] != "tick":
                    await process_journey_message(p, tracker, data, now)
            except Exception as exc:  # one bad message must never stop the stream
                failure = Rejection(
                    RejectReason.INVALID_VALUE,
                    f"journey step failed: {exc!r}",
                    None,
                    event.message.topic,
                    event.message.value,
                    None,
                    None,
                )
                await reject(failure, event.message, type(exc).__name__)
            watermark = tracker.watermark(now)
            if watermark // MINUTE_MS > advanced_to.get(p, -(2**62)) // MINUTE_MS:
                advanced_to[p] = watermark
                await advance_partition(p, watermark)

    async def advance_partition(p: int, watermark: int) -> None:
        for key in [k for k, d in due[p].items() if d <= watermark]:
            stored = persons.get(key)
            if not stored:
                due[p].pop(key, None)
                continue
            state, outputs = advance(person_from_dict(stored), watermark, config)
            store(p, key, state)
            await emit(p, outputs)
        state = aggregates.setdefault(p, AggregateState(shard=f"journey-{p}"))
        _, rows = flush_aggregates(state, watermark, config)
        for row in rows:
            await records_topic.send(key=None, value=record_to_bytes(row))
        metrics.WATERMARK.set(watermark / 1000)
        metrics.OPEN_SESSIONS.set(sum(len(d) for d in due.values()))

    @app.timer(interval=stream.tick_interval_s)
    async def tick() -> None:
        for p in range(n):
            await journey_topic.send(key=None, value=b'{"kind": "tick"}', partition=p)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(metrics.REGISTRY), content_type="text/plain; version=0.0.4"
        )

    return app
