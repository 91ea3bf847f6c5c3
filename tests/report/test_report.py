"""The HTML report: one self-contained file, every chart titled with its period, figures equal
to the shipped queries', data shown as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from streams.cli.main import app
from streams.queries.kpi import kpi_query
from streams.queries.paths import path_rows, paths_query
from streams.queries.query import run_query
from streams.queries.retention import retention_query
from streams.report.build import Written, write_report
from streams.report.charts import all_charts
from streams.report.data import collect, resolve_period
from streams.report.errors import ReportError
from streams.report.page import script_json
from tests.report.conftest import Simulated

pytestmark = pytest.mark.integration

#: "a few MB": Plotly's bundle is about 4.8 MB of it.
MAX_BYTES = 6_000_000
CHARTS = (
    "funnel",
    "journey_map",
    "conversion_over_time",
    "conversion_revenue",
    "friction_over_time",
    "bounce",
    "abandonment",
    "retention",
)


def test_one_self_contained_file_under_a_few_megabytes(report: Written) -> None:
    page = report.path.read_text()
    assert report.bytes == len(page.encode()) < MAX_BYTES
    # nothing is loaded from elsewhere: no script, stylesheet, image or font by URL
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page, re.IGNORECASE)
    assert "Plotly.newPlot" in page  # (the browser test checks that nothing is fetched)
    assert report.charts == CHARTS
    assert f'data-charts="{len(CHARTS)}"' in page


def test_every_chart_is_titled_with_its_period_and_definitions(simulated: Simulated) -> None:
    data = collect(simulated.client, resolve_period(simulated.client, None, None))
    first, last = simulated.client.query(
        "SELECT min(occurred_at), max(occurred_at) FROM events"
    ).result_rows[0]
    # whole hours, from the first stored event's to the last one's
    assert data.period.start == first.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
    assert data.period.end - timedelta(hours=1) <= last.replace(tzinfo=UTC) < data.period.end
    assert data.period.label().startswith("Mon 02 Nov 2026 00:00 – ")
    for chart in all_charts(data):
        title = chart.figure.layout.title.text
        headline, _, definition = title.partition("<br>")
        assert headline and data.period.label() in definition, chart.name
        assert len(definition) > len(data.period.label()) + 20, f"{chart.name}: no definition"
        assert chart.figure.data, f"{chart.name} has no trace"


def test_figures_are_those_of_the_shipped_queries(simulated: Simulated) -> None:
    """Conversion and revenue per channel in the report = `parcours kpi conversion`."""
    period = resolve_period(simulated.client, None, None)
    data = collect(simulated.client, period)
    expected = run_query(simulated.client, kpi_query("conversion", period.start, period.end))
    chart = next(c for c in all_charts(data) if c.name == "conversion_revenue")
    rates, revenue = chart.figure.data
    assert list(rates.x) == [r["channel"] for r in expected.records()]
    assert list(rates.y) == [r["conversion_rate_touching"] for r in expected.records()]
    assert list(revenue.y) == [r["revenue"] for r in expected.records()]
    assert data.summary["sessions"] == sum(
        1
        for _ in simulated.client.query(
            "SELECT DISTINCT session_id FROM sessions FINAL"
        ).result_rows
    )


def test_a_period_narrows_every_chart(simulated: Simulated) -> None:
    start, end = datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)
    data = collect(simulated.client, resolve_period(simulated.client, start, end))
    assert data.period.rate_bucket == "hour"
    days = {r["bucket"].date() for r in data.conversion_over_time.records()}
    assert days == {start.date()}
    assert {r["hour"].date() for r in data.friction_over_time.records()} == {start.date()}


def test_text_from_the_data_stays_text() -> None:
    hostile = "</script><script>window.pwned=1</script>"
    encoded = script_json({"label": hostile, "sep": "\u2028"})
    assert "<" not in encoded and ">" not in encoded and "\u2028" not in encoded


def test_an_empty_database_is_a_clear_error(ch: Client, tmp_path: object) -> None:
    with pytest.raises(ReportError, match="no events yet"):
        write_report(ch, tmp_path / "r.html")  # type: ignore[operator]


def test_a_period_without_sessions_is_a_clear_error(simulated: Simulated, tmp_path: object) -> None:
    empty = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    with pytest.raises(ReportError, match="no sessions started"):
        write_report(simulated.client, tmp_path / "r.html", *empty)  # type: ignore[operator]


def test_cli_writes_the_report_and_prints_its_path(simulated: Simulated, tmp_path: object) -> None:
    out = tmp_path / "nested" / "journeys.html"  # type: ignore[operator]
    result = CliRunner().invoke(
        app,
        ["report", "--database", simulated.database, "--out", str(out), "--from", "2026-11-02"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and f"{len(CHARTS)} charts" in result.output
    assert out.stat().st_size > 1_000_000


def test_cli_refuses_a_bad_date_and_an_unwritable_path(simulated: Simulated) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["report", "--database", simulated.database, "--from", "yesterday"])
    assert bad.exit_code == 2 and "not an ISO date" in bad.output
    unwritable = runner.invoke(
        app, ["report", "--database", simulated.database, "--out", "/proc/parcours/r.html"]
    )
    assert unwritable.exit_code == 1 and "cannot write the report" in unwritable.output


def test_cli_names_a_missing_database(simulated: Simulated) -> None:
    result = CliRunner().invoke(app, ["report", "--database", "no_such_db"])
    assert result.exit_code == 1 and "no database 'no_such_db'" in result.output


def test_friction_spikes_are_shaded_and_labelled(simulated: Simulated) -> None:
    """The payment outage (Tue 03 Nov 18:00-22:00) is a spike: a shaded, labelled region."""
    data = collect(simulated.client, resolve_period(simulated.client, None, None))
    spikes = data.spikes.records()
    assert spikes and all(s["started_at"].date().isoformat() == "2026-11-03" for s in spikes)
    chart = next(c for c in all_charts(data) if c.name == "friction_over_time")
    regions = chart.figure.layout.shapes
    assert len(regions) == len(spikes)
    labels = [a.text for a in chart.figure.layout.annotations]
    for spike in spikes:
        assert f"{spike['type']} spike ({spike['channel']}, ×" in " ".join(labels)
    assert f"shaded: {len(spikes)} friction spike" in chart.figure.layout.title.text


def test_journey_map_retention_and_touchpoints_are_the_analytics_queries(
    simulated: Simulated,
) -> None:
    """The Sankey diagram is `parcours paths` (first 4 touchpoints), the heatmap `parcours
    retention` by day (a short period), the tables `parcours touchpoints` with NPS, CSAT and CES."""
    period = resolve_period(simulated.client, None, None)
    data = collect(simulated.client, period)
    charts = {c.name: c for c in all_charts(data)}
    every = path_rows(simulated.client, paths_query(period.start, period.end, depth=4))
    expected = [r for r in every if len(r.path) > 1][:20]
    assert data.paths == expected and len(expected) == 20
    diagram = charts["journey_map"].figure.data[0]
    assert sum(diagram.link.value[i] for i, s in enumerate(diagram.link.source) if s == 0) <= (
        expected[0].sessions + sum(r.sessions for r in expected[1:])
    )
    first_steps = {r.path[0] for r in expected}
    assert {lbl.split(". ", 1)[1] for lbl in diagram.node.label if lbl.startswith("1. ")} == (
        first_steps
    )
    heatmap = charts["retention"].figure.data[0]
    unit = period.cohort_period
    assert unit == "day"  # a few days of traffic: one cohort per day, not a single week
    retention = run_query(
        simulated.client, retention_query(period.start, period.end, period=unit)
    ).records()
    assert heatmap.z[0][0] == retention[0]["retention_rate"] == 1.0
    cohorts = sorted({r["cohort"] for r in retention})
    assert len(heatmap.z) == len(cohorts) > 1
    assert heatmap.x[0] == "day 0"
    assert set(data.satisfaction.columns) >= {"nps", "csat_percent", "ces"}
    assert data.satisfaction.rows, "the simulated traffic has survey responses"
    assert data.touchpoints.rows
