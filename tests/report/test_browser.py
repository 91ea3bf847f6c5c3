"""The report in a real browser: Debian's headless Chromium (installed by ensure_chromium when
missing) opens the file, and the test fails on any console error or exception, on any request
that leaves the file (it must open offline), and on a chart that did not draw."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.queries.query import QueryResult
from streams.report.build import Written
from streams.report.charts import all_charts
from streams.report.data import collect, resolve_period
from streams.report.page import render
from tests.report.cdp import Page, PageLog, open_page
from tests.report.conftest import Simulated

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Per chart: how many traces Plotly built, and how many marks (bars, lines, points, Sankey
#: nodes, heatmap images) it drew in SVG. Waits until every chart reports drawn marks.
RENDERED = """(() => Array.from(document.querySelectorAll('.parcours-chart')).map(el => ({
    name: el.dataset.chart,
    traces: (el._fullData || []).length,
    marks: el.querySelectorAll(
        '.main-svg .trace path, .main-svg .trace image, .main-svg .sankey-node, '
        + '.main-svg .hm image, .main-svg .point'
    ).length,
})))()"""


def _wait_for_charts(page: Page, expected: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        charts: list[dict[str, object]] = page.evaluate(RENDERED)
        drawn = [c for c in charts if c["marks"]]
        if len(drawn) == expected or time.monotonic() > deadline:
            return charts
        time.sleep(0.2)


def _offline(log: PageLog, url: str) -> list[str]:
    return [r for r in log.requests if r != url and not r.startswith("data:")]


def test_the_report_renders_every_chart_offline_without_errors(
    report: Written, tmp_path: Path
) -> None:
    url = report.path.resolve().as_uri()
    with open_page(url) as page:
        charts = _wait_for_charts(page, len(report.charts))
        shot = tmp_path / "report.png"
        page.screenshot(shot, width=1280)
        assert page.evaluate("document.body.dataset.charts") == str(len(report.charts))
        shaded = page.evaluate(
            "document.querySelectorAll('#chart-friction_over_time .shapelayer path').length"
        )
        log = page.log
    assert log.errors == [], log.errors
    assert _offline(log, url) == [], "the report fetched something: it must open offline"
    assert [c["name"] for c in charts] == list(report.charts)
    for chart in charts:
        assert chart["traces"], f"{chart['name']}: no trace"
        assert chart["marks"], f"{chart['name']}: nothing drawn"
    assert shaded >= 1, "the friction spike is not shaded"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a page of charts


def test_markup_in_the_data_is_shown_as_text(simulated: Simulated, tmp_path: Path) -> None:
    """A landing page named like an HTML element is a label, not an element."""
    data = collect(
        simulated.client,
        resolve_period(
            simulated.client, datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
        ),
    )
    hostile = "<img src=x onerror=window.pwned=1></script><b>bold</b>"
    bounce = QueryResult(
        ["landing_page", "channel", "sessions", "bounces", "bounce_rate"],
        [(hostile, "web", 9, 3, 0.3333)],
    )
    data = dataclasses.replace(data, bounce=bounce)
    out = tmp_path / "hostile.html"
    out.write_text(render(data, all_charts(data), [], datetime.now(UTC)))
    with open_page(out.resolve().as_uri()) as page:
        _wait_for_charts(page, len(all_charts(data)))
        labels = page.evaluate(
            "Array.from(document.querySelectorAll('#chart-bounce .ytick text')).map(t => t.textContent)"
        )
        pwned = page.evaluate("typeof window.pwned")
        log = page.log
    assert f"{hostile} (web)" in labels
    assert pwned == "undefined"
    assert log.errors == []


def test_the_browser_check_catches_errors(tmp_path: Path) -> None:
    """The check itself: a console error and an exception thrown are both reported."""
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<html><body><script>console.error('chart failed'); undefinedFunction();</script>"
        "</body></html>"
    )
    with open_page(page_file.resolve().as_uri()) as page:
        page.evaluate("1")
        log = page.log
    assert any("chart failed" in e for e in log.errors)
    assert any("undefinedFunction" in e for e in log.errors)
