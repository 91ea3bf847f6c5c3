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
concurrency 1, and crash safety by construction (streams/worker/checkpoint.py): each agent
takes a batch, sends its outputs, waits until the producer has them acknowledged, and only then
writes state to the changelog: the identity stage device by device (its replays are caught by
each device's dedup memory and the core's source-position guard), the journey stage as one
checkpoint record per partition and batch. State is held as live objects in the tables'
in-memory stores and serialised only when checkpointed.
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
from streams.core.identity import (
    DeviceIdentity,
    Duplicate,
    LinkNotice,
    Routed,
    identity_step,
    prune_device,
)
from streams.core.journey import Handover, PersonState, advance, journey_step, next_deadline
from streams.core.records import IdentityLink
from streams.core.watermarks import WatermarkTracker
from streams.settings import Settings, StreamSettings
from streams.sinks.base import RejectedInput
from streams.worker.checkpoint import (
    JourneyPartition,
    checkpoint_key,
    internal_partition,
    is_internal_key,
    minute_buckets,
    minute_key,
    partition_from_dict,
    partition_to_dict,
)
from streams.worker.messages import dlq_headers, record_to_bytes, rejected_to_bytes

#: Room for a checkpoint record of a few hundred persons (Kafka's default is 1 MB).
MAX_RECORD_BYTES = 8 * 1024 * 1024
#: Positions along an input partition: offset * 65536 + index in the message's JSON array.
ARRAY_SLOTS = 65536
NON_STR = orjson.OPT_NON_STR_KEYS


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
        producer_max_request_size=MAX_RECORD_BYTES,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=web_port,
        # A rebalance waits until the batch in progress is acknowledged: a revoked partition's
        # checkpoint is never written after its new owner has started restoring it.
        stream_wait_empty=True,
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
    big = {"max.message.bytes": str(MAX_RECORD_BYTES)}
    devices = app.Table("devices", default=None, partitions=n, extra_topic_configs=big)
    persons = app.Table("persons", default=None, partitions=n, extra_topic_configs=big)
    partitioner = DefaultPartitioner()

    def partition_of(key: str) -> int:
        """The journey partition of a person (the producer's partitioner, as Faust uses it)."""
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

    def failure(exc: Exception, message: Any, event_id: str | None) -> Rejection:
        return Rejection(
            RejectReason.INVALID_VALUE,
            f"processing failed: {exc!r}",
            None,
            message.topic,
            message.value,
            None,
            event_id,
        )

    # --- identify: decode and resolve identity, keyed by device ------------------------------

    newest: dict[str, int] = {}
    #: device -> the input partition whose changelog holds it (to forget it on revocation)
    device_partition: dict[str, int] = {}

    def device_state(device_id: str) -> DeviceIdentity | None:
        stored = devices.data.get(device_id)
        if isinstance(stored, dict):
            stored = device_from_dict(stored)
            devices.data[device_id] = stored
        return stored

    @app.agent(inputs, concurrency=1)
    async def identify(events: faust.StreamT[bytes]) -> None:
        async for batch in events.take_events(stream.batch_max, within=stream.batch_within_s):
            dirty: dict[str, tuple[int, str]] = {}
            for event in batch:
                message = event.message
                metrics.EVENTS_CONSUMED.labels(message.topic).inc()
                canonical = topic_map.get(message.topic, message.topic)
                for index, result in enumerate(decode(message.value, canonical)):
                    if isinstance(result, Rejection):
                        await reject(result, message)
                        continue
                    try:
                        await identify_one(result, message, index, dirty)
                    except Exception as exc:  # one bad event must never stop the stream
                        await reject(failure(exc, message, result.event_id), message, repr(exc))
            await app.producer.flush()  # outputs acknowledged before any state is written
            for device_id, (p, source) in dirty.items():
                state = device_state(device_id)
                watermark = newest[source] - config.grace_ms
                if state is not None and prune_device(state, watermark, config) is None:
                    state = None
                if state is None:
                    devices.data.pop(device_id, None)
                    device_partition.pop(device_id, None)
                    devices.send_changelog(p, device_id, None, value_serializer="raw")
                else:
                    raw_state = orjson.dumps(device_to_dict(state))
                    devices.send_changelog(p, device_id, raw_state, value_serializer="raw")

    async def identify_one(
        ev: Event, message: Any, index: int, dirty: dict[str, tuple[int, str]]
    ) -> None:
        source = f"{message.topic}/{message.partition}"
        newest[source] = max(newest.get(source, ev.ts_ms), ev.ts_ms)
        watermark = newest[source] - config.grace_ms
        state = device_state(ev.device_id) if ev.device_id else None
        state, outputs = identity_step(
            state,
            ev,
            config,
            watermark_ms=watermark,
            received_at_ms=int(message.timestamp * 1000),
            source=source,
            position=message.offset * ARRAY_SLOTS + index,
        )
        if ev.device_id and state is not None:
            devices.data[ev.device_id] = state
            dirty[ev.device_id] = (message.partition, source)
            device_partition[ev.device_id] = message.partition
        for out in outputs:
            if isinstance(out, Routed):
                await send_journey(out.person_id, out, {"src": source, "wm": watermark})
            elif isinstance(out, LinkNotice):
                await send_journey(out.anon_person_id, out, {"src": source, "wm": watermark})
            elif isinstance(out, IdentityLink):
                await records_topic.send(key=out.device_id.encode(), value=record_to_bytes(out))
            elif isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()

    # --- journey: sessions, checkout attempts, friction, keyed by person ---------------------

    parts: dict[int, JourneyPartition] = {}

    def person_state(key: str) -> PersonState | None:
        stored = persons.data.get(key)
        if isinstance(stored, dict):
            stored = person_from_dict(stored)
            persons.data[key] = stored
        return stored

    def restore_partition(p: int, now: float) -> JourneyPartition:
        """After a (re)start or rebalance: the last checkpoint wins over per-person writes."""
        saved = persons.data.get(checkpoint_key(p))
        if saved:
            prefix = minute_key(p, 0)[:-1]
            minutes = {
                int(k[len(prefix) :]): v
                for k, v in persons.data.items()
                if isinstance(k, str) and k.startswith(prefix)
            }
            for minute, rows in saved["minutes"].items():
                if rows is None:
                    minutes.pop(int(minute), None)
                else:
                    minutes[int(minute)] = rows
            part = partition_from_dict(p, saved, minutes, now)
            for key, value in saved["persons"].items():
                persons.data[key] = value  # a dict, or None: decoded lazily
                if value is None:
                    persons.data.pop(key, None)
            # re-written with the next checkpoint, in case their own writes were cut off
            part.touched.update(saved["persons"])
            part.touched_minutes.update(int(m) for m in saved["minutes"])
            part.changed = True
        else:
            tracker = WatermarkTracker(idle_after_s=stream.idle_after_s)
            tracker.expect([f"{t}/{i}" for t in topic_map for i in range(n)], now)
            part = JourneyPartition(p, tracker, AggregateState(shard=f"journey-{p}"))
        for key in list(persons.data.keys()):
            if is_internal_key(key) or partition_of(key) != p:
                continue
            state = person_state(key)
            deadline = next_deadline(state, config) if state is not None else None
            if deadline is not None:
                part.due[key] = deadline
        return part

    async def emit(part: JourneyPartition, outputs: list[Any]) -> None:
        for out in outputs:
            if isinstance(out, Handover):
                await send_journey(out.into_person, out)
                continue
            if isinstance(out, Duplicate):
                metrics.EVENTS_DUPLICATE.inc()
                continue
            aggregate_step(part.aggregates, out, config)
            await records_topic.send(key=None, value=record_to_bytes(out))
        metrics.observe_records(outputs, time.time())

    def store(part: JourneyPartition, key: str, state: PersonState | None) -> None:
        part.touched.add(key)
        if state is None:
            persons.data.pop(key, None)
            part.due.pop(key, None)
            return
        persons.data[key] = state
        deadline = next_deadline(state, config)
        if deadline is None:
            part.due.pop(key, None)
        else:
            part.due[key] = deadline

    async def apply_message(part: JourneyPartition, data: dict[str, Any], now: float) -> None:
        if "src" in data:
            part.tracker.observe(data.pop("src"), data.pop("wm"), now)
        msg = message_from_dict(data)
        watermark = part.tracker.watermark(now)
        if isinstance(msg, Routed | LinkNotice):
            msg = dataclasses.replace(msg, watermark_ms=watermark)
        key = (
            msg.person_id
            if isinstance(msg, Routed)
            else msg.anon_person_id
            if isinstance(msg, LinkNotice)
            else msg.into_person
        )
        state, outputs = journey_step(person_state(key), msg, config)
        store(part, key, state)
        await emit(part, outputs)

    async def advance_partition(part: JourneyPartition, watermark: int) -> None:
        for key in [k for k, d in part.due.items() if d <= watermark]:
            state = person_state(key)
            if state is None:
                part.due.pop(key, None)
                continue
            state, outputs = advance(state, watermark, config)
            store(part, key, state)
            await emit(part, outputs)
        minutes_before = set(part.aggregates.minutes)
        _, rows = flush_aggregates(part.aggregates, watermark, config)
        part.touched_minutes.update(minutes_before - set(part.aggregates.minutes))
        part.touched_minutes.update(row.minute_ms for row in rows)
        for row in rows:
            await records_topic.send(key=None, value=record_to_bytes(row))
        metrics.WATERMARK.set(watermark / 1000)
        metrics.OPEN_SESSIONS.set(sum(len(q.due) for q in parts.values()))

    async def checkpoint(dirty: list[JourneyPartition]) -> None:
        """Outputs acknowledged, then one atomic checkpoint record per partition, then persons."""
        await app.producer.flush()
        for part in dirty:
            states = {}
            for key in part.touched:
                state = persons.data.get(key)
                if isinstance(state, PersonState):
                    state = person_to_dict(state)
                states[key] = state
            p, aggregates = part.partition, part.aggregates
            minutes = {m: minute_buckets(aggregates, m) for m in part.touched_minutes}
            minutes.update({m: minute_buckets(aggregates, m) for m in aggregates.dirty})
            record = {**partition_to_dict(part), "persons": states, "minutes": minutes}
            persons.data[checkpoint_key(p)] = record
            persons.send_changelog(
                p, checkpoint_key(p), orjson.dumps(record, option=NON_STR), None, "raw"
            )
            writes = [*states.items(), *((minute_key(p, m), v) for m, v in minutes.items())]
            for key, state in writes:
                if key.startswith(minute_key(p, 0)[:-1]):
                    if state is None:
                        persons.data.pop(key, None)
                    else:
                        persons.data[key] = state
                value = None if state is None else orjson.dumps(state)
                persons.send_changelog(p, key, value, None, "raw")
            part.touched.clear()
            part.touched_minutes.clear()
            part.changed = False

    @app.agent(journey_topic, concurrency=1)
    async def journey(messages: faust.StreamT[bytes]) -> None:
        async for batch in messages.take_events(stream.batch_max, within=stream.batch_within_s):
            now = time.time()
            for event in batch:
                m = event.message
                part = parts.get(m.partition)
                if part is None:
                    part = parts[m.partition] = restore_partition(m.partition, now)
                if m.offset <= part.applied:
                    continue  # in the restored checkpoint: effects kept, outputs acknowledged
                part.applied, part.changed = m.offset, True
                data = orjson.loads(m.value)
                try:
                    if data["kind"] != "tick":
                        await apply_message(part, data, now)
                except Exception as exc:  # one bad message must never stop the stream
                    await reject(failure(exc, m, None), m, repr(exc))
                watermark = part.tracker.watermark(now)
                if watermark // MINUTE_MS > part.advanced_to // MINUTE_MS:
                    part.advanced_to = watermark
                    await advance_partition(part, watermark)
                if len(part.touched) >= stream.checkpoint_persons:
                    await checkpoint([part])
            await checkpoint([q for q in parts.values() if q.changed or q.touched])

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        """A revoked partition's state now belongs to its new owner: drop our copy, so that
        a later re-assignment restores it from the changelog instead of a stale memory."""
        for tp in revoked:
            if tp.topic == stream.journey_topic:
                parts.pop(tp.partition, None)
                for key in list(persons.data.keys()):
                    internal = is_internal_key(key)
                    if (internal and internal_partition(key) == tp.partition) or (
                        not internal and partition_of(key) == tp.partition
                    ):
                        persons.data.pop(key, None)
            elif tp.topic in topic_map:
                for device_id in [d for d, p in device_partition.items() if p == tp.partition]:
                    devices.data.pop(device_id, None)
                    device_partition.pop(device_id, None)

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
