"""One self-contained HTML file: Plotly's JavaScript inlined once, each figure a `<div>`.

Why Plotly: it is maintained (plotly.py and plotly.js release monthly), it draws every chart
the report needs from one library (grouped bars, time series, a Sankey diagram, heatmaps,
shaded ranges) and it inlines its whole JavaScript bundle, so the file opens without network
access, by e-mail or from a shared drive. Vega-Lite is lighter but has no Sankey diagram. The
cost is size: the bundle is about 4.8 MB, written once per file however many charts it holds.

Figures are written as JSON inside `<script>` elements with `<`, `>`, `&` and the Unicode line
separators escaped, so no value from the data can close the script or start markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.io
import plotly.offline

from streams.queries.query import QueryResult
from streams.report.charts import Chart
from streams.report.data import ReportData

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f6f7f9; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .8; font-size: 14px; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;
         margin: 8px 0 16px; }
.tile { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
.tile b { display: block; font-size: 24px; }
.tile span { font-size: 13px; color: #5b6475; }
.card { background: #fff; border-radius: 8px; margin: 16px 0; padding: 8px;
        box-shadow: 0 1px 2px #0002; }
.card h2 { font-size: 17px; margin: 8px 12px 2px; }
.card p.definition { font-size: 13px; color: #5b6475; margin: 0 12px 8px; }
table { border-collapse: collapse; margin: 0 12px 12px; font-size: 14px; }
th, td { padding: 6px 14px; border-bottom: 1px solid #e3e6eb; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
footer { font-size: 12px; color: #5b6475; }
"""


def script_json(value: Any) -> str:
    """`value` as JSON that is safe inside a `<script>` element."""
    text = str(plotly.io.json.to_json_plotly(value))
    for char, escape in _SCRIPT_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def _tiles(summary: dict[str, Any]) -> str:
    tiles = (
        (f"{summary['sessions']:,}", "sessions"),
        (f"{summary['persons']:,}", "persons (across devices)"),
        (f"{summary['conversion_rate']:.1%}", "sessions with a purchase"),
        (f"{summary['revenue']:,.2f}", "revenue"),
        (f"{summary['bounce_rate']:.1%}", "bounce rate"),
    )
    cells = "".join(f"<div class='tile'><b>{v}</b><span>{label}</span></div>" for v, label in tiles)
    return f"<section class='tiles'>{cells}</section>"


def table(result: QueryResult, headers: Sequence[str] | None = None) -> str:
    """An HTML table of a query result; every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers or result.columns)
    rows = []
    for row in result.rows:
        cells = []
        for value in row:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            # NaN: no data behind the figure (a score without responses)
            shown = ("–" if value != value else f"{value:,}") if numeric else str(value)
            cells.append(f"<td class='{'n' if numeric else ''}'>{html.escape(shown)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(chart: Chart) -> str:
    figure = chart.figure.to_plotly_json()
    element = f"chart-{chart.name}"
    return (
        f"<section class='card'><div id='{element}' class='parcours-chart' "
        f"data-chart='{chart.name}'></div>"
        f"<script>Plotly.newPlot({script_json(element)}, {script_json(figure['data'])}, "
        f"{script_json(figure['layout'])}, {{responsive: true, displaylogo: false}});</script>"
        "</section>"
    )


def render(
    data: ReportData, charts: Sequence[Chart], tables: Sequence[tuple[str, str, str]], now: datetime
) -> str:
    """The whole page. `tables` are (title, definition, HTML table) shown after the charts."""
    blocks = [_figure(c) for c in charts]
    for title, definition, body in tables:
        blocks.append(
            f"<section class='card'><h2>{html.escape(title)}</h2>"
            f"<p class='definition'>{html.escape(definition)}</p>{body}</section>"
        )
    period = html.escape(data.period.label())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parcours journey report · {period}</title>
<style>{_STYLE}</style>
<script>{plotly.offline.get_plotlyjs()}</script>
</head><body data-charts="{len(charts)}">
<header><h1>Customer journeys: web, app and store</h1>
<p>{period} · written by Parcours on {now:%Y-%m-%d %H:%M} UTC</p></header>
<main>
{_tiles(data.summary)}
{"".join(blocks)}
<footer>Definitions: docs/storage.md and the README of Parcours. Figures are those of
<code>parcours kpi</code>, <code>parcours funnel</code> and <code>parcours friction</code> over the
same period. This file works offline.</footer>
</main></body></html>
"""
