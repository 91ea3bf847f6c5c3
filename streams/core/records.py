"""What the journey core emits: plain, immutable rows that any sink can store.

Every record is a frozen, slotted dataclass of primitives (str, int, float, bool, tuples and
JSON-able dicts). Times are epoch milliseconds in UTC. Ids are deterministic: the same input
gives the same ids, which is what lets sinks deduplicate replays (see docs/storage.md).

The records map one to one onto the public ClickHouse tables:
`EventRow` -> events, `SessionSummary` -> sessions, `FrictionSignal` -> friction,
`IdentityLink` -> identity_links, `SessionMerge` -> session_merges,
`MinuteAggregate` -> minute_aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EventRow:
    """A valid event as processed: who it belongs to and in which session it landed.

    `person_id` is the person known *at processing time*: an anonymous device that logs in
    later is re-attributed at query time through `identity_links`. `late` marks an event that
    arrived after its session had been closed: it is kept and attributed to the best session,
    but did not change that session's summary. `duplicate_transaction` marks a purchase whose
    `transaction_id` this person's purchases already counted within the dedup horizon (a
    receipt re-sent under a new event id, `streams.core.transactions`): kept, but not counted
    again in revenue, conversions or funnels.
    """

    event_id: str
    event_type: str
    occurred_at_ms: int
    received_at_ms: int
    channel: str
    device_id: str | None
    device_type: str | None
    customer_id: str | None
    person_id: str
    session_id: str
    page: str | None
    item_id: str | None
    value: float | None
    currency: str | None
    properties: dict[str, Any]
    late: bool
    duplicate_transaction: bool = False


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session of one person, across every device and channel it touched.

    A session is written when it closes; it may also be written earlier, while it is still open
    (`is_open`: the input so far ends within the inactivity gap of its last event), and again
    when it changes. Rows of one session replace each other by `version` (the newest wins,
    `session_version`), and `is_deleted` withdraws a session that no longer exists (absorbed
    by another after a login). An open session is not judged yet: `bounced` is false and its
    friction decided at close is not raised. `device_type` is the type of the device it was
    last on, the one its signals decided at close carry (so both sides of a per-session
    friction rate split by device type the same way); not stored in `sessions`.
    """

    session_id: str
    person_id: str
    started_at_ms: int
    ended_at_ms: int
    duration_s: float
    events: int
    views: int
    channels: tuple[str, ...]
    devices: tuple[str, ...]
    landing_page: str | None
    exit_page: str | None
    engaged: bool
    bounced: bool
    converted: bool
    revenue: float
    friction_count: int
    is_open: bool = False
    version: int = 1
    is_deleted: bool = False
    device_type: str | None = None


@dataclass(frozen=True, slots=True)
class FrictionSignal:
    """A moment where a person got stuck. `signal_id` is deterministic (for deduplication)."""

    signal_id: str
    type: str
    person_id: str
    session_id: str
    channel: str
    device_id: str | None
    device_type: str | None
    occurred_at_ms: int
    details: dict[str, Any] = field(default_factory=dict)
    #: Rows of one signal replace each other by version; `is_deleted`: withdrawn by a revision
    #: (a late event showed it did not happen: a bounce that was not one).
    version: int = 1
    is_deleted: bool = False


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """`device_id` belongs to `customer_id` from `linked_at_ms` on (until a newer link).

    Anonymous events of the device up to the retro-attribution window (30 days by default)
    before its *first* link belong to that first customer; queries resolve this through the
    `identity_links` table, so rows stored before the link need no rewrite.
    """

    device_id: str
    customer_id: str
    linked_at_ms: int
    retro_window_ms: int


@dataclass(frozen=True, slots=True)
class SessionMerge:
    """An anonymous session that was still open when its device was linked joined a customer's
    session: rows stored under `session_id` belong to `merged_into` (one session, not two)."""

    session_id: str
    merged_into: str
    person_id: str
    merged_at_ms: int


@dataclass(frozen=True, slots=True)
class MinuteAggregate:
    """A per-minute count for one (channel, metric, key), complete for `shard`.

    metric is one of: `events` (key = event_type), `sessions_started`, `sessions_ended`,
    `conversions`, `revenue` (in `amount`), `friction` (key = signal type), `late_events`;
    split by device type for the friction rates (`streams.core.aggregates`, "by device"):
    `friction_by_device`, `events_by_device` (key = `<type>@<device type>`),
    `sessions_started_by_device` (key = device type). `version` grows when late input updates an already emitted minute; the newest version
    replaces older ones. Rows of different shards (stream partitions) add up.
    """

    minute_ms: int
    channel: str
    metric: str
    key: str
    count: int
    amount: float
    shard: str
    version: int


@dataclass(frozen=True, slots=True)
class FrictionSpike:
    """A period in which one friction type's rate on one channel (or one of its device types)
    was abnormally high (`streams.core.spikes`). `observed` and `expected` are rates (signals per thing they can
    happen to), `ratio` their quotient, `score` the evidence (nats of log-likelihood ratio);
    `status` is `open` until the rate is back. Rows of one spike replace each other by
    `version`; `is_deleted` withdraws a spike that late data showed was not one (or that moved:
    its id is named after its start). `device_type` is `''` for the channel's every device
    together, else the one device type the series is about (streams.core.spike_tracker)."""

    spike_id: str
    type: str
    channel: str
    device_type: str
    started_at_ms: int
    ended_at_ms: int
    observed: float
    expected: float
    ratio: float
    score: float
    status: str
    signals: int
    expected_signals: float
    denominator: int
    version: int = 1
    is_deleted: bool = False


Record = (
    EventRow
    | SessionSummary
    | FrictionSignal
    | IdentityLink
    | SessionMerge
    | MinuteAggregate
    | FrictionSpike
)
