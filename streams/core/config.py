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

    - `session_gap_ms`: inactivity that ends a session (30 min, as GA4 and most tools).
    - `session_cap_ms`: hard cap on a session's length (24 h): a kiosk never has one
      endless session.
    - `grace_ms`: how far behind the newest event time an event may arrive and still land in its
      session as if on time (2 min). The stream watermark is `max event time - grace`.
    - `retro_window_ms`: how far back anonymous events of a device join its first
      customer (30 days).
    - `dedup_horizon_ms`: how long an event id is remembered per person to drop re-sent
      duplicates; storage deduplicates beyond that (see docs/storage.md).
    - `aggregate_retention_ms`: how long per-minute aggregates stay updatable by late input.
    - Checkout timeout and every friction threshold: on the rule objects in `rules`.
    - `max_links_per_device`: link history kept per device (a shared device re-links each login).
    """

    session_gap_ms: int = 30 * MINUTE_MS
    session_cap_ms: int = DAY_MS
    grace_ms: int = 2 * MINUTE_MS
    retro_window_ms: int = 30 * DAY_MS
    dedup_horizon_ms: int = 2 * HOUR_MS
    engaged_min_duration_ms: int = 10_000
    engaged_min_views: int = 2
    aggregate_retention_ms: int = DAY_MS + 2 * HOUR_MS
    max_links_per_device: int = 16
    recent_sessions_kept: int = 4
    rules: FrictionRules = field(default_factory=FrictionRules)

    def __post_init__(self) -> None:
        if self.session_gap_ms <= 0 or self.session_cap_ms <= 0:
            raise ValueError("session gap and session cap must be positive")
        if self.grace_ms < 0 or self.retro_window_ms < 0 or self.dedup_horizon_ms < 0:
            raise ValueError("grace, retro window and dedup horizon must not be negative")
