"""Everything the report shows, read from ClickHouse in one pass (the imperative shell).

The report draws only what the shipped queries compute (streams/queries and this package's
queries.py): a figure in the report is the figure `parcours kpi`, `parcours funnel` or
`parcours friction` prints for the same period, never a second definition of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.queries.funnel import FunnelSpec, FunnelStepRow, Step, funnel_query, funnel_rows
from streams.queries.kpi import friction_query, kpi_query
from streams.queries.paths import PathRow, path_rows, paths_query
from streams.queries.query import QueryResult, run_query
from streams.queries.retention import retention_query
from streams.queries.spikes import spikes_query
from streams.queries.touchpoints import satisfaction_query, touchpoints_query
from streams.report import queries
from streams.report.errors import ReportError

#: The purchase funnel every product team starts with; one hour from the first step.
FUNNEL_STEPS = ("view_item", "add_to_cart", "begin_checkout", "purchase")
FUNNEL_WINDOW_S = 3600
#: Up to this long friction is drawn per hour (a week of hours is readable, and an incident of
#: a few hours shows); beyond, per day.
HOURLY_UP_TO = timedelta(days=8)
#: Conversion rates per hour are mostly noise (a handful of store sessions at night): per day
#: unless the period is this short.
HOURLY_RATES_UP_TO = timedelta(days=2)
#: The journey map: the first touchpoints of a session, the most frequent paths that go
#: somewhere (two touchpoints or more: a one-page visit is a node without a band, and those
#: would fill the diagram).
PATH_DEPTH = 4
TOP_PATHS = 20
#: Retention cohorts by day up to three weeks (a week's report is a heatmap of its days, not
#: one cohort), by week up to half a year, by month beyond.
DAILY_COHORTS_UP_TO = timedelta(days=21)
WEEKLY_COHORTS_UP_TO = timedelta(days=183)


@dataclass(frozen=True)
class Period:
    """The half-open range [start, end) every chart of one report covers."""

    start: datetime
    end: datetime

    @property
    def bucket(self) -> str:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"

    @property
    def cohort_period(self) -> str:
        if self.end - self.start <= DAILY_COHORTS_UP_TO:
            return "day"
        return "week" if self.end - self.start <= WEEKLY_COHORTS_UP_TO else "month"

    @property
    def rate_bucket(self) -> str:
        return "hour" if self.end - self.start <= HOURLY_RATES_UP_TO else "day"

    def label(self) -> str:
        last = self.end - timedelta(milliseconds=1)
        return f"{self.start:%a %d %b %Y %H:%M} – {last:%a %d %b %Y %H:%M} UTC"


@dataclass(frozen=True)
class ReportData:
    period: Period
    summary: dict[str, Any]
    funnel: list[FunnelStepRow]
    conversion_over_time: QueryResult
    conversion_by_channel: QueryResult
    friction_over_time: QueryResult
    spikes: QueryResult
    bounce: QueryResult
    abandonment: QueryResult
    channel_switches: QueryResult
    paths: list[PathRow]
    retention: QueryResult
    touchpoints: QueryResult
    satisfaction: QueryResult


def default_period(client: Client) -> Period:
    """From the hour of the first stored event to the end of the hour of the last one."""
    first, last, events = run_query(client, queries.data_period()).rows[0]
    if not events:
        raise ReportError(
            "the database holds no events yet: run `parcours ingest FILE` or `parcours demo` first"
        )
    start = _utc(first).replace(minute=0, second=0, microsecond=0)
    end = _utc(last).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return Period(start, end)


def resolve_period(client: Client, start: datetime | None, end: datetime | None) -> Period:
    """The period asked for; what is not given comes from the stored events."""
    if start is None or end is None:
        found = default_period(client)
        start, end = start or found.start, end or found.end
    if start >= end:
        raise ReportError(f"the period starts ({start:%Y-%m-%d %H:%M}) after it ends")
    return Period(start, end)


def collect(client: Client, period: Period) -> ReportData:
    """Run every query of the report over `period`."""
    start, end = period.start, period.end
    spec = FunnelSpec(
        tuple(Step(t) for t in FUNNEL_STEPS), FUNNEL_WINDOW_S, start, end, breakdown="channel"
    )
    summary = run_query(client, queries.summary(start, end)).records()[0]
    if not summary["sessions"]:
        raise ReportError(f"no sessions started between {period.label()}: nothing to report")
    return ReportData(
        period=period,
        summary=summary,
        funnel=funnel_rows(spec, run_query(client, funnel_query(spec))),
        conversion_over_time=run_query(
            client, queries.conversion_over_time(start, end, period.rate_bucket)
        ),
        conversion_by_channel=run_query(client, kpi_query("conversion", start, end)),
        friction_over_time=run_query(client, friction_query(start, end, period.bucket)),
        spikes=run_query(client, spikes_query(start, end, device_type="")),
        bounce=run_query(client, kpi_query("bounce", start, end, limit=12, min_sessions=5)),
        abandonment=run_query(client, kpi_query("abandonment", start, end)),
        channel_switches=run_query(client, kpi_query("channel_switch", start, end)),
        paths=[
            r
            for r in path_rows(client, paths_query(start, end, depth=PATH_DEPTH))
            if len(r.path) > 1
        ][:TOP_PATHS],
        retention=run_query(client, retention_query(start, end, period=period.cohort_period)),
        touchpoints=run_query(client, touchpoints_query(start, end, limit=15, min_visits=5)),
        satisfaction=run_query(client, satisfaction_query(start, end)),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
