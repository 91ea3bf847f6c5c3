"""`write_report`: from a ClickHouse client to an HTML file on disk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from streams.report import charts
from streams.report.data import collect, resolve_period
from streams.report.errors import ReportError
from streams.report.page import render, table


@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    charts: tuple[str, ...]
    period: str


def write_report(
    client: Client, out: Path, start: datetime | None = None, end: datetime | None = None
) -> Written:
    """Query the period (by default: all stored events) and write the report to `out`."""
    data = collect(client, resolve_period(client, start, end))
    figures = charts.all_charts(data)
    tables = [
        (
            "Touchpoints: visits, bounce, conversion, time spent, friction",
            "per page (web), screen (app), store or support medium with at least 5 sessions: the "
            "sessions through it, persons, share of those sessions that bounced and converted, "
            "median seconds to the next event, friction signals per 100 sessions "
            "(parcours touchpoints)",
            table(data.touchpoints),
        ),
        (
            "Satisfaction per touchpoint: NPS, CSAT, CES",
            "from survey_response events: NPS = % of 9-10 minus % of 0-6 (scale 0-10); CSAT = % "
            "of 4-5 (scale 1-5); CES = mean effort (scale 1-7, lower is easier); with the "
            "responses behind each; – where there is none",
            table(data.satisfaction),
        ),
        (
            "Checkouts started on one channel, paid on another",
            "channel_switch signals: a checkout attempt completed by a purchase on another "
            "channel; minutes from the last checkout step to the purchase",
            table(
                data.channel_switches,
                ["checkout channel", "purchase channel", "switches", "median minutes"],
            ),
        ),
    ]
    page = render(data, figures, tables, datetime.now(UTC))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return Written(out, len(page.encode()), tuple(c.name for c in figures), data.period.label())
