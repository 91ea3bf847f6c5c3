"""Thresholds of the journey core, in one immutable object.

All durations are milliseconds because the core computes on epoch-millisecond integers.
Friction thresholds live on the rule objects themselves (streams/core/friction.py) so that each
rule's definition and its numbers are read in one place; `JourneyConfig` just holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.core.friction import FrictionRules

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    """How sessions, identity and checkout attempts are cut. Defaults follow common practice.

    Users set these through streams/journey_settings.py (`PARCOURS_JOURNEY_*`, `parcours.toml`,
    `parcours config`), which every runner reads; the fields it does not expose
    (`max_links_per_device`, `recent_sessions_kept`, `aggregate_retention_ms`) bound the
    state's memory rather than change what is concluded.

    - `session_gap_ms`: inactivity that ends a session (30 min, as GA4 and most tools).
    - `session_cap_ms`: hard cap on a session's length (24 h): a kiosk never has one
      endless session.
    - `grace_ms`: how far behind the newest event time an event may arrive and still land in its
      session as if on time (2 min). The stream watermark is `max event time - grace`.
    - `retro_window_ms`: how far back anonymous events of a device join its first
      customer (30 days).
    - `dedup_horizon_ms`: how long (in event time, behind the watermark) an event id is
      remembered, per device or per person, to drop re-sent duplicates (24 h); so are replay
      positions per source, applied handovers, and each person's purchases' transaction ids (a
      purchase re-sent under a new event id counts once: `streams.core.transactions`). Within it a re-sent event is counted once.
      Beyond it the core has forgotten the id and processes the event again: it is counted
      twice in the per-minute aggregates and the core's counters, its event row is written
      again (storage collapses rows by event_id, docs/storage.md), and it opens a one-event,
      bounced session (a spurious `bounce`); if it was the first event of its session, that
      one-event session has the *same* session_id as the real one (ids are named after their
      first event) and storage keeps either summary. So keep the horizon above how far back
      consumers may re-read. The price is memory: each remembered id is a 16-byte record
      (`streams.core.dedup`) in its device's or person's state for the whole horizon, and a
      person's or device's state lives as long as it remembers anything
      (tests/perf/core_throughput.py prints both costs).
    - `late_horizon_ms`: how long a closed session stays known (as `(id, start, end)` only) so
      that a late event finds it and is flagged `late` (24 h). Beyond it a late event no longer
      finds its session: it opens a session of its own, as if it were a separate visit.
    - `aggregate_retention_ms`: how long per-minute aggregates stay updatable by late input.
    - `revision_horizon_ms`: how far behind the watermark (event time) a late event still
      revises its person's journey (48 h: a nightly batch of store receipts, a day's files
      loaded one after another): its session, the session's friction signals, a decided
      checkout attempt (`streams.core.revise`). Each person keeps the events of that long to
      replay them. Beyond it the event is stored and flagged `late` only.
    - `shared_device_types` and `shared_device_patterns`: which devices are shared by the
      public (a POS till, a kiosk): an event whose `properties.device_type` is one of the types
      (pos, kiosk), or whose device id matches one of the glob patterns (`fnmatch`, case
      sensitive, e.g. `till-*`), never links its device to a customer and never takes a person
      from the device (streams/core/identity.py, "Shared devices").
    - Checkout timeout and every friction threshold: on the rule objects in `rules`.
    - `max_links_per_device`: link history kept per device (a shared device re-links each login).
    """

    session_gap_ms: int = 30 * MINUTE_MS
    session_cap_ms: int = DAY_MS
    grace_ms: int = 2 * MINUTE_MS
    retro_window_ms: int = 30 * DAY_MS
    dedup_horizon_ms: int = DAY_MS
    late_horizon_ms: int = DAY_MS
    engaged_min_duration_ms: int = 10_000
    engaged_min_views: int = 2
    revision_horizon_ms: int = 2 * DAY_MS
    aggregate_retention_ms: int = DAY_MS + 2 * HOUR_MS
    shared_device_types: frozenset[str] = frozenset({"pos", "kiosk"})
    shared_device_patterns: tuple[str, ...] = ()
    max_links_per_device: int = 16
    recent_sessions_kept: int = 4
    rules: FrictionRules = field(default_factory=FrictionRules)

    def __post_init__(self) -> None:
        if self.session_gap_ms <= 0 or self.session_cap_ms <= 0:
            raise ValueError("session gap and session cap must be positive")
        if min(self.grace_ms, self.retro_window_ms, self.dedup_horizon_ms) < 0:
            raise ValueError("grace, retro window and dedup horizon must not be negative")
        if min(self.late_horizon_ms, self.revision_horizon_ms) < 0:
            raise ValueError("late and revision horizons must not be negative")
