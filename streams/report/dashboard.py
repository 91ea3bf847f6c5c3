"""The Grafana "Journeys" dashboard, built from the shipped queries.

Intuition: a panel's SQL is the query `parcours kpi` / `parcours funnel` runs, with its bound
parameters written in Grafana's terms: the period bounds become the ClickHouse plugin's
`$__fromTime_ms` / `$__toTime_ms` macros (the dashboard's time range), other parameters
literals, and the dashboard's variables (`$channel`, `$device_type`, `$period`) filter the
query's result or choose its time bucket. So a figure on the dashboard is the figure the CLI
prints for the same range, and a change to a KPI reaches the dashboard when the JSON is
written again: `python -m streams.report.dashboard > infra/grafana/dashboards/journeys.json`
(tests/infra checks that the committed file is what this module builds).

Variables apply where the rows carry them: channel to every panel but the device-type funnel
(a multi-channel session is `omni` in the bounce panel and always shown), device type to the
panels whose rows have a device (friction, abandonment, the device-type funnel); sessions
have none.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from streams.queries.funnel import FunnelSpec, Step, funnel_query
from streams.queries.kpi import kpi_query
from streams.queries.paths import paths_query
from streams.queries.query import Query
from streams.queries.retention import retention_query
from streams.queries.spikes import spikes_query
from streams.report.data import FUNNEL_STEPS, FUNNEL_WINDOW_S, PATH_DEPTH, TOP_PATHS

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "parcours-clickhouse"}
CHANNELS = ("web", "app", "store")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "kiosk", "pos", "unknown")
PERIODS = ("hour", "day", "week")
_PARAM = re.compile(r"\{(\w+):([^}]+)\}")
#: Placeholder bounds: every date parameter becomes a macro of the dashboard's range.
_ANY, _ANY_END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC)
_MACROS = {"date_from": "$__fromTime_ms", "date_to": "$__toTime_ms"}


def grafana_sql(query: Query) -> str:
    """`query` with its parameters written for Grafana's ClickHouse plugin (see above)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _MACROS:
            return _MACROS[name]
        value = query.parameters[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, int | str):
            raise TypeError(f"parameter {name}: no literal for {value!r}")
        if isinstance(value, int):
            return str(value)
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return _PARAM.sub(replace, query.sql)


def _target(sql: str, *, timeseries: bool = False) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "format": 0 if timeseries else 1,
        "queryType": "timeseries" if timeseries else "table",
        "rawSql": sql,
    }


def _panel(
    ident: int,
    kind: str,
    title: str,
    description: str,
    sql: str,
    grid: tuple[int, int, int, int],
    *,
    timeseries: bool = False,
    options: dict[str, Any] | None = None,
    unit: str | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    panel: dict[str, Any] = {
        "id": ident,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [_target(sql, timeseries=timeseries)],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": options or {},
    }
    return panel


def funnel_sql(by: str = "channel") -> str:
    """The funnel broken down by `by` (channel or device type of the first step), the
    variable of that name applied: a person's funnel has one entry, so it is filtered by
    the value it is broken down by (an entry without a device type is `unknown`)."""
    steps = tuple(Step(t) for t in FUNNEL_STEPS)
    spec = FunnelSpec(steps, FUNNEL_WINDOW_S, _ANY, _ANY_END, breakdown=by)
    inner = grafana_sql(funnel_query(spec))
    counts = ", ".join(f"step_{k}" for k in range(1, len(FUNNEL_STEPS) + 1))
    value = "breakdown" if by == "channel" else "if(breakdown = '', 'unknown', breakdown)"
    return (
        f"SELECT {value} AS {by}, {counts}\nFROM (\n{inner}\n)\n"
        f"WHERE {by} IN (${{{by}:singlequote}})\nORDER BY step_1 DESC, {by}"
    )


def _kpi(name: str, **options: int) -> str:
    return grafana_sql(kpi_query(name, _ANY, _ANY_END, **options))


def conversion_sql() -> str:
    return f"SELECT *\nFROM (\n{_kpi('conversion')}\n)\nWHERE channel IN (${{channel:singlequote}})"


def bounce_sql() -> str:
    return (
        f"SELECT *\nFROM (\n{_kpi('bounce', limit=15, min_sessions=5)}\n)\n"
        "WHERE channel IN (${channel:singlequote}) OR channel = 'omni'"
    )


def abandonment_sql() -> str:
    return (
        f"SELECT *\nFROM (\n{_kpi('abandonment')}\n)\n"
        "WHERE if(device_type = '', 'unknown', device_type) IN (${device_type:singlequote})"
    )


def paths_sql() -> str:
    """The report's journey map as a table: the most frequent paths of two touchpoints or more."""
    inner = grafana_sql(paths_query(_ANY, _ANY_END, depth=PATH_DEPTH))
    return (
        # (named `journey`: an alias `path` would shadow the array in length(path))
        f"SELECT arrayStringConcat(path, ' → ') AS journey, length(path) AS steps, sessions\n"
        f"FROM (\n{inner}\n)\nWHERE length(path) > 1\nORDER BY sessions DESC, path\n"
        f"LIMIT {TOP_PATHS}"
    )


def retention_sql() -> str:
    """Weekly cohorts by first visit (`parcours retention`)."""
    return grafana_sql(retention_query(_ANY, _ANY_END, period="week"))


def friction_sql() -> str:
    """Signals per `$period` and type, the channel and device type variables applied."""
    return """SELECT
    toStartOfInterval(occurred_at, INTERVAL 1 ${period}) AS time,
    type,
    uniqExact(signal_id) AS signals
FROM friction FINAL
WHERE $__timeFilter_ms(occurred_at)
  AND channel IN (${channel:singlequote})
  AND if(device_type = '', 'unknown', device_type) IN (${device_type:singlequote})
GROUP BY time, type
ORDER BY time, type"""


def spikes_annotation_sql() -> str:
    """Friction spikes over the range (`parcours spikes`), as Grafana annotations: a region
    from `time` to `timeEnd`, its text and tags."""
    return (
        "SELECT\n    started_at AS time,\n    ended_at AS timeEnd,\n"
        "    concat(type, ' spike on ', channel, ': ', toString(round(ratio, 1)),\n"
        "        'x the expected rate (', toString(signals), ' signals, ', status, ')') AS text,\n"
        "    [type, channel] AS tags\n"
        f"FROM (\n{grafana_sql(spikes_query(_ANY, _ANY_END, device_type=''))}\n)\n"
        "WHERE channel IN (${channel:singlequote})"
    )


def _custom(name: str, label: str, values: tuple[str, ...], *, multi: bool) -> dict[str, Any]:
    current = "All" if multi else values[1]
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "multi": multi,
        "includeAll": multi,
        "current": {
            "text": current,
            "value": ["$__all"] if multi else current,
        },
        "options": [],
    }


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    panels = [
        _panel(
            1,
            "barchart",
            "Purchase funnel by channel of entry (persons)",
            f"Persons (resolved across devices) reaching {' → '.join(FUNNEL_STEPS)} within "
            f"{FUNNEL_WINDOW_S // 60} min of the first step; `parcours funnel --by channel`.",
            funnel_sql(),
            (0, 0, 12, 9),
            options={"xField": "channel", "legend": {"displayMode": "list", "placement": "bottom"}},
        ),
        _panel(
            8,
            "barchart",
            "Purchase funnel by device type of entry (persons)",
            "The same funnel broken down by the device type of each person's first step "
            "(`unknown`: a store receipt or an event without one); device type variable "
            "applied; `parcours funnel --by device_type`.",
            funnel_sql("device_type"),
            (0, 38, 12, 9),
            options={
                "xField": "device_type",
                "legend": {"displayMode": "list", "placement": "bottom"},
            },
        ),
        _panel(
            2,
            "table",
            "Conversion and revenue per channel",
            "Sessions touching the channel and their conversion; purchases and revenue on the "
            "channel; `parcours kpi conversion`.",
            conversion_sql(),
            (12, 0, 12, 9),
        ),
        _panel(
            3,
            "timeseries",
            "Friction signals per ${period}, by type",
            "Signals raised in the range (friction FINAL), per type; channel and device type "
            "variables applied; `parcours friction`. Red regions: friction spikes (`parcours "
            "spikes`), from the dashboard's annotations.",
            friction_sql(),
            (0, 9, 24, 9),
            timeseries=True,
        ),
        _panel(
            4,
            "table",
            "Bounce rate by landing page",
            "Closed sessions not engaged / sessions landing on the page (at least 5); "
            "`parcours kpi bounce`.",
            bounce_sql(),
            (0, 18, 12, 10),
        ),
        _panel(
            5,
            "table",
            "Cart and checkout abandonment by device type",
            "`parcours kpi abandonment`; device type variable applied.",
            abandonment_sql(),
            (12, 18, 12, 10),
        ),
        _panel(
            6,
            "table",
            "Top paths (journey map)",
            f"The {TOP_PATHS} most frequent sequences of the first {PATH_DEPTH} touchpoints of a "
            "session (channel + page/screen, store visit, support contact, purchase), two or "
            "more; `parcours paths`.",
            paths_sql(),
            (0, 28, 12, 10),
        ),
        _panel(
            7,
            "table",
            "Retention by week of first visit",
            "Persons by the week of their first event on any channel; active persons and their "
            "share in each later week (0 = the cohort's own); `parcours retention`.",
            retention_sql(),
            (12, 28, 12, 10),
        ),
    ]
    return {
        "title": "Journeys",
        "uid": "parcours-journeys",
        "description": "Funnels, conversion, friction and bounce for product teams (ClickHouse, "
        "read with the parcours_analyst role).",
        "tags": ["parcours", "journeys"],
        "schemaVersion": 39,
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "utc",
        "refresh": "5m",
        "templating": {
            "list": [
                _custom("period", "Period", PERIODS, multi=False),
                _custom("channel", "Channel", CHANNELS, multi=True),
                _custom("device_type", "Device type", DEVICE_TYPES, multi=True),
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "Friction spikes",
                    "datasource": DATASOURCE,
                    "enable": True,
                    "iconColor": "red",
                    "target": {**_target(spikes_annotation_sql()), "refId": "Anno"},
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
