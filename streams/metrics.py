"""Every Prometheus object of Parcours, in one registry and one place.

Names follow Prometheus conventions: `parcours_` prefix, `_total` for counters, base units
(`_seconds`), labels with bounded values only (topic, channel, event type, reason, table, signal
type, partition): never a person, device or event id.
"""

from __future__ import annotations

from collections import Counter as CollectionsCounter
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from schemas.event import TOPIC_CHANNELS
from schemas.properties import CANONICAL
from streams.core.records import EventRow, FrictionSignal, SessionSummary

#: The label value of anything outside a closed set: an unknown topic, a custom event type.
#: Label values come from input, and every distinct one is a time series held forever.
OTHER = "other"


def topic_label(topic: str) -> str:
    """`topic` when it is an input topic, else `other` (an ingest line may name any topic)."""
    return topic if topic in TOPIC_CHANNELS else OTHER


def event_type_label(event_type: str) -> str:
    """`event_type` when it is canonical, else `other` (custom types are unbounded)."""
    return event_type if event_type in CANONICAL else OTHER


REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

EVENTS_CONSUMED = Counter(
    "parcours_events_consumed_total",
    "Messages read from an input topic (a message may hold a batch of events).",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_PROCESSED = Counter(
    "parcours_events_processed_total",
    "Valid events processed by the journey core.",
    ["channel", "event_type"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "parcours_events_rejected_total",
    "Events rejected by the contract, sent to the dead-letter topic/table.",
    ["topic", "reason"],
    registry=REGISTRY,
)
EVENTS_DUPLICATE = Counter(
    "parcours_events_duplicate_total",
    "Re-sent events (same event_id) dropped by deduplication.",
    registry=REGISTRY,
)
PRIVACY_SUPPRESSED = Counter(
    "parcours_privacy_suppressed_total",
    "Inputs dropped because they name an erased customer or device (at decode; streaming: "
    "also journey inputs and records in flight).",
    registry=REGISTRY,
)
PRIVACY_REDACTIONS = Counter(
    "parcours_privacy_redactions_total",
    "Personal data redacted at decode (streams/privacy/scrub.py), by kind.",
    ["kind"],
    registry=REGISTRY,
)
REVISIONS = Counter(
    "parcours_revisions_total",
    "Rows a late event's revision replaced (`*_revised`) or withdrew (`*_withdrawn`), by kind: "
    "event, session or signal (streams/core/revise.py).",
    ["kind"],
    registry=REGISTRY,
)
DUPLICATE_TRANSACTIONS = Counter(
    "parcours_duplicate_transactions_total",
    "Purchases re-sent under a new event_id with a transaction_id the person already bought "
    "within the dedup horizon (kept, flagged duplicate_transaction, not counted again).",
    ["channel"],
    registry=REGISTRY,
)
EVENTS_LATE = Counter(
    "parcours_events_late_total",
    "Events that arrived after their session had closed (kept, flagged late).",
    registry=REGISTRY,
)
PROCESSING_LAG = Histogram(
    "parcours_processing_lag_seconds",
    "Wall-clock time when processed minus the event's occurred_at.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
END_TO_END_LATENCY = Histogram(
    "parcours_end_to_end_latency_seconds",
    "Kafka message timestamp to ClickHouse insert acknowledged.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SINK_ROWS = Counter(
    "parcours_sink_rows_total",
    "Rows written to ClickHouse, per table.",
    ["table"],
    registry=REGISTRY,
)
SINK_INSERT_DURATION = Histogram(
    "parcours_sink_insert_duration_seconds",
    "Duration of one ClickHouse insert of a batch.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
SINK_ERRORS = Counter(
    "parcours_sink_errors_total",
    "Failed ClickHouse inserts (each is retried).",
    ["table"],
    registry=REGISTRY,
)
SINK_QUARANTINED = Counter(
    "parcours_sink_quarantined_rows_total",
    "Rows ClickHouse refused for good, written to quarantined_rows with the error.",
    ["table"],
    registry=REGISTRY,
)
SINK_RETRIES = Counter(
    "parcours_sink_retries_total",
    "Retries of ClickHouse inserts after an error.",
    ["table"],
    registry=REGISTRY,
)
OPEN_SESSIONS = Gauge(
    "parcours_open_sessions",
    "Sessions currently open in this process.",
    registry=REGISTRY,
)
OPEN_CHECKOUTS = Gauge(
    "parcours_open_checkout_attempts",
    "Checkout attempts currently open in this process.",
    registry=REGISTRY,
)
FRICTION_SIGNALS = Counter(
    "parcours_friction_signals_total",
    "Friction signals raised, per type and channel.",
    ["type", "channel"],
    registry=REGISTRY,
)
#: Computed from event time by the spike detector (streams/core/spike_tracker.py): a replay, a
#: backlog caught up or doubled traffic at constant rates leaves them where they were.
FRICTION_SPIKE_ACTIVE = Gauge(
    "parcours_friction_spike_active",
    "1 while a friction spike is open for this type and channel (event time), else 0.",
    ["type", "channel"],
    registry=REGISTRY,
)
FRICTION_RATE_RATIO = Gauge(
    "parcours_friction_rate_ratio",
    "Friction rate over the last hour judged (event time) divided by its baseline.",
    ["type", "channel"],
    registry=REGISTRY,
)


def observe_spike_gauges(gauges: Iterable[tuple[str, str, bool, float]]) -> None:
    """Set the spike gauges from `SpikeTracker.gauges()`."""
    for signal_type, channel, active, ratio in gauges:
        FRICTION_SPIKE_ACTIVE.labels(signal_type, channel).set(1 if active else 0)
        FRICTION_RATE_RATIO.labels(signal_type, channel).set(round(ratio, 3))


SESSIONS_CLOSED = Counter(
    "parcours_sessions_closed_total",
    "Sessions closed, by whether they bounced.",
    ["bounced"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "parcours_consumer_lag_messages",
    "Messages of the partition not yet processed (end offset - next offset to process).",
    ["topic", "partition"],
    registry=REGISTRY,
)
DLQ_MESSAGES = Counter(
    "parcours_dlq_messages_total",
    "Messages written to the dead-letter topic.",
    ["topic", "reason"],
    registry=REGISTRY,
)
INPUT_PAUSED = Gauge(
    "parcours_input_partitions_paused",
    "Input partitions paused because they ran ahead of the slowest one in event time "
    "(watermark alignment; PARCOURS_STREAM_ALIGN_SKEW_S).",
    registry=REGISTRY,
)
INPUT_PAUSES = Counter(
    "parcours_input_partition_pauses_total",
    "Times an input partition was paused for running ahead of the slowest in event time.",
    registry=REGISTRY,
)
INPUT_REREADS = Counter(
    "parcours_input_partition_rereads_total",
    "Times a quiet input partition was read again from its processed position because the "
    "Kafka client had fetched records the worker never received.",
    registry=REGISTRY,
)
RECORDS_PUT_BACK = Counter(
    "parcours_fetched_records_put_back_total",
    "Records the Kafka client fetched and Faust did not hand over (a rebalance, a partition "
    "not active), sought back so that they are fetched again.",
    ["topic"],
    registry=REGISTRY,
)
CHANGELOG_REREADS = Counter(
    "parcours_table_recovery_rereads_total",
    "Times a changelog partition was read again during table recovery because the Kafka "
    "client had handed out records that recovery never received.",
    ["topic"],
    registry=REGISTRY,
)
SINK_LAST_COMMIT = Gauge(
    "parcours_sink_last_commit_timestamp_seconds",
    "When the sink stage last committed its input offsets (epoch seconds; its start before).",
    registry=REGISTRY,
)
SINK_BATCH_PENDING = Gauge(
    "parcours_sink_batch_pending",
    "1 while the sink stage holds a batch it has not yet written and committed (the consumer "
    "lag gauge does not move then: this one and the last commit time show a stuck sink).",
    registry=REGISTRY,
)
WATERMARK = Gauge(
    "parcours_watermark_timestamp_seconds",
    "Event-time watermark of this process: the lowest of its journey partitions', whose "
    "conclusions up to it are sent (epoch seconds).",
    registry=REGISTRY,
)


def serve_metrics(port: int, addr: str = "127.0.0.1") -> None:
    """Expose /metrics on `addr:port` from a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)


def observe_records(records: Iterable[object], now_s: float) -> None:
    """Count what the core emitted. Tallies per batch first: `labels()` per row is costly."""
    processed: CollectionsCounter[tuple[str, str]] = CollectionsCounter()
    signals: CollectionsCounter[tuple[str, str]] = CollectionsCounter()
    closed: CollectionsCounter[str] = CollectionsCounter()
    copies: CollectionsCounter[str] = CollectionsCounter()
    late = 0
    for record in records:
        if isinstance(record, EventRow):
            processed[(record.channel, event_type_label(record.event_type))] += 1
            late += record.late
            if record.duplicate_transaction:
                copies[record.channel] += 1
            PROCESSING_LAG.observe(max(0.0, now_s - record.occurred_at_ms / 1000))
        elif isinstance(record, FrictionSignal):
            signals[(record.type, record.channel)] += 1
        elif isinstance(record, SessionSummary) and not (record.is_open or record.is_deleted):
            closed["true" if record.bounced else "false"] += 1
    for (channel, event_type), n in processed.items():
        EVENTS_PROCESSED.labels(channel, event_type).inc(n)
    for (signal_type, channel), n in signals.items():
        FRICTION_SIGNALS.labels(signal_type, channel).inc(n)
    for bounced, n in closed.items():
        SESSIONS_CLOSED.labels(bounced).inc(n)
    if late:
        EVENTS_LATE.inc(late)
    for channel, n in copies.items():
        DUPLICATE_TRANSACTIONS.labels(channel).inc(n)
