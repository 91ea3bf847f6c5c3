"""Queries the report needs beyond the shipped KPIs: the data's period, a summary, conversion
over time. Same rules as streams/queries/kpi.py: distinct ids, sessions read `FINAL` and
deduplicated by id before summing, a session counted under every channel it touched."""

from __future__ import annotations

from datetime import datetime

from streams.queries.kpi import _range
from streams.queries.query import Query


def data_period() -> Query:
    """First and last event time, and how many events: the default period of the report."""
    return Query(
        "SELECT min(occurred_at) AS first, max(occurred_at) AS last, "
        "uniqExact(event_id) AS events FROM events"
    )


def summary(date_from: datetime, date_to: datetime) -> Query:
    """The headline figures: sessions, persons (resolved across devices), conversion, revenue,
    bounce rate (of closed sessions)."""
    return Query(
        f"""SELECT
    uniqExact(session_id) AS sessions,
    uniqExact(resolved_person_id) AS persons,
    uniqExactIf(session_id, converted) AS converted_sessions,
    round(converted_sessions / greatest(sessions, 1), 4) AS conversion_rate,
    round(sumIf(revenue, converted), 2) AS revenue,
    round(uniqExactIf(session_id, bounced AND NOT is_open) / greatest(sessions, 1), 4) AS bounce_rate
FROM
(
    SELECT session_id, resolved_person_id, converted, revenue, bounced, is_open
    FROM sessions_resolved
    WHERE {_range("started_at")}
    LIMIT 1 BY session_id
)""",
        {"date_from": date_from, "date_to": date_to},
    )


def conversion_over_time(date_from: datetime, date_to: datetime, bucket: str) -> Query:
    """Share of sessions with a purchase, per `bucket` (day or hour) of their start and channel."""
    start = {"day": "toStartOfDay(started_at)", "hour": "toStartOfHour(started_at)"}[bucket]
    return Query(
        f"""SELECT
    {start} AS bucket,
    channel,
    uniqExact(session_id) AS sessions,
    uniqExactIf(session_id, converted) AS converted_sessions,
    round(converted_sessions / sessions, 4) AS conversion_rate
FROM
(
    SELECT session_id, started_at, channels, converted
    FROM sessions FINAL
    WHERE {_range("started_at")}
    LIMIT 1 BY session_id
)
ARRAY JOIN channels AS channel
GROUP BY bucket, channel
ORDER BY bucket, channel""",
        {"date_from": date_from, "date_to": date_to},
    )
