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
            "Checkouts started on one channel, paid on another",
            "channel_switch signals: a checkout attempt completed by a purchase on another "
            "channel; minutes from the last checkout step to the purchase",
            table(
                data.channel_switches,
                ["checkout channel", "purchase channel", "switches", "median minutes"],
            ),
        )
    ]
    page = render(data, figures, tables, datetime.now(UTC))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return Written(out, len(page.encode()), tuple(c.name for c in figures), data.period.label())
