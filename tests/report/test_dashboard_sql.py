"""Every panel of the Journeys dashboard runs on chDB with the dashboard's variables
substituted as Grafana does, and answers what the CLI's query answers for the same range."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.queries.funnel import FunnelSpec, Step, funnel_query
from streams.queries.kpi import kpi_query
from streams.queries.query import run_query
from streams.report.dashboard import CHANNELS, DEVICE_TYPES, build
from streams.report.data import FUNNEL_STEPS, FUNNEL_WINDOW_S, Period, collect
from tests.report.conftest import Simulated
from tests.report.grafana import substitute

pytestmark = pytest.mark.integration

START, END = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)
ALL = {"period": "day", "channel": CHANNELS, "device_type": DEVICE_TYPES}


def _panels() -> list[dict[str, Any]]:
    return list(build()["panels"])


def _run(
    simulated: Simulated, panel: dict[str, Any], values: dict[str, Any]
) -> list[dict[str, Any]]:
    sql = substitute(panel["targets"][0]["rawSql"], values, START, END)
    result = simulated.client.query(sql)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
def test_every_panel_answers_with_all_values_selected(
    simulated: Simulated, panel: dict[str, Any]
) -> None:
    rows = _run(simulated, panel, ALL)
    assert rows, f"{panel['title']}: no rows over simulated traffic"


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
@pytest.mark.parametrize(
    "values",
    [
        {"period": "hour", "channel": ["store"], "device_type": ["pos"]},
        {"period": "week", "channel": ["web", "app"], "device_type": ["mobile", "unknown"]},
    ],
    ids=["store-pos-hour", "web-app-mobile-week"],
)
def test_every_panel_runs_with_some_values_selected(
    simulated: Simulated, panel: dict[str, Any], values: dict[str, Any]
) -> None:
    rows = _run(simulated, panel, values)
    for row in rows:
        if "channel" in row:
            assert row["channel"] in [*values["channel"], "omni"]
        if "device_type" in row:
            assert (row["device_type"] or "unknown") in values["device_type"]


def test_conversion_panel_is_the_kpi(simulated: Simulated) -> None:
    panel = next(p for p in _panels() if p["title"].startswith("Conversion"))
    expected = run_query(simulated.client, kpi_query("conversion", START, END)).records()
    assert _run(simulated, panel, ALL) == expected


def test_friction_panel_follows_the_period_variable(simulated: Simulated) -> None:
    panel = next(p for p in _panels() if p["title"].startswith("Friction"))
    by_day = _run(simulated, panel, ALL)
    by_hour = _run(simulated, panel, {**ALL, "period": "hour"})
    assert len({r["time"] for r in by_hour}) > len({r["time"] for r in by_day}) > 1
    assert sum(r["signals"] for r in by_hour) == sum(r["signals"] for r in by_day)


def test_spike_annotations_run_and_give_regions(simulated: Simulated) -> None:
    annotation = build()["annotations"]["list"][0]
    sql = substitute(annotation["target"]["rawSql"], ALL, START, END)
    result = simulated.client.query(sql)
    assert result.column_names[:3] == ("time", "timeEnd", "text")
    spikes = simulated.client.query(
        "SELECT count() FROM friction_spikes FINAL WHERE started_at < {e:DateTime64(3)} "
        "AND ended_at > {s:DateTime64(3)} AND device_type = ''",  # annotations: channels
        parameters={"s": START, "e": END},
    ).result_rows[0][0]
    assert len(result.result_rows) == spikes
    for time, end, text, _tags in result.result_rows:
        assert time < end and " spike on " in text


def test_paths_panel_is_the_reports_journey_map(simulated: Simulated) -> None:
    panel = next(p for p in _panels() if p["title"].startswith("Top paths"))
    data = collect(simulated.client, Period(START, END))
    expected = [
        {"journey": " → ".join(r.path), "steps": len(r.path), "sessions": r.sessions}
        for r in data.paths
    ]
    assert _run(simulated, panel, ALL) == expected


def test_device_type_funnel_panel_is_the_cli_funnel(simulated: Simulated) -> None:
    """The panel's rows are `parcours funnel --by device_type` over the same range, an entry
    without a device type shown as `unknown`, and the variable keeps only what it names."""
    panel = next(p for p in _panels() if p["title"].startswith("Purchase funnel by device"))
    spec = FunnelSpec(
        tuple(Step(t) for t in FUNNEL_STEPS), FUNNEL_WINDOW_S, START, END, breakdown="device_type"
    )
    expected = {
        (r["breakdown"] or "unknown"): tuple(r[f"step_{k}"] for k in range(1, 5))
        for r in run_query(simulated.client, funnel_query(spec)).records()
    }
    rows = _run(simulated, panel, ALL)
    assert {r["device_type"]: tuple(r[f"step_{k}"] for k in range(1, 5)) for r in rows} == expected
    assert len(expected) > 1 and sum(s[0] for s in expected.values()) > 0
    mobile = _run(simulated, panel, {**ALL, "device_type": ["mobile"]})
    assert [r["device_type"] for r in mobile] == ["mobile"]
