"""The report's figures: pure functions from query results to Plotly figures.

Each figure's title names what it counts and over which period, and a subtitle gives the
definitions, so a chart pasted into a slide still says what it is. Every string that comes
from the data (page names, channels, signal types) is HTML-escaped first: Plotly renders a
subset of HTML in labels, and a page name is whatever a producer sent.
"""

from __future__ import annotations

import html
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from streams.queries.paths import sankey
from streams.report.data import FUNNEL_STEPS, FUNNEL_WINDOW_S, PATH_DEPTH, ReportData

#: One colour per channel, the same in every chart.
CHANNEL_COLOURS = {"web": "#1f77b4", "app": "#ff7f0e", "store": "#2ca02c", "omni": "#9467bd"}
HEIGHT = 430


@dataclass(frozen=True)
class Chart:
    """A titled figure: `name` is its stable id in the page (the browser test counts them)."""

    name: str
    figure: go.Figure


def text(value: object) -> str:
    """A value from the data as label text: shown as typed, never interpreted as markup."""
    return html.escape(str(value), quote=False)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


#: Plotly does not wrap titles: definitions are cut into lines that fit a laptop-wide chart.
SUBTITLE_CHARS = 170


def _layout(figure: go.Figure, title: str, definition: str, period: str) -> go.Figure:
    lines = textwrap.wrap(f"{period} · {definition}", SUBTITLE_CHARS)
    figure.update_layout(
        title={
            "text": f"{title}<br><sup>{'<br>'.join(lines)}</sup>",
            "x": 0.01,
            "xanchor": "left",
        },
        height=HEIGHT,
        margin={"l": 60, "r": 20, "t": 76 + 14 * len(lines), "b": 50},
        legend={"orientation": "h", "y": -0.15},
        template="plotly_white",
    )
    return figure


def funnel_by_channel(data: ReportData) -> Chart:
    steps = [f"{i}. {t}" for i, t in enumerate(FUNNEL_STEPS, 1)]
    figure = go.Figure()
    by_channel: dict[str, list[Any]] = defaultdict(list)
    for row in data.funnel:
        by_channel[row.breakdown].append(row)
    for channel, rows in by_channel.items():
        labels = [
            f"{r.conversion_from_first:.0%}"
            + (f" · {duration(r.median_seconds_from_entry)}" if r.step > 1 else "")
            for r in rows
        ]
        figure.add_bar(
            name=text(channel),
            x=steps,
            y=[r.persons for r in rows],
            text=labels,
            textposition="outside",
            marker_color=CHANNEL_COLOURS.get(channel),
            customdata=[
                [f"{r.conversion_from_previous:.1%}", duration(r.median_seconds_from_entry)]
                for r in rows
            ],
            hovertemplate="%{x}: %{y} persons<br>from the previous step: %{customdata[0]}"
            "<br>median time from step 1: %{customdata[1]}<extra>%{fullData.name}</extra>",
        )
    figure.update_layout(barmode="group", yaxis_title="persons")
    return Chart(
        "funnel",
        _layout(
            figure,
            "Purchase funnel by channel of entry",
            f"persons (resolved across devices) reaching each step within {FUNNEL_WINDOW_S // 60} min "
            "of step 1; bar label: share of step 1 · median time from step 1",
            data.period.label(),
        ),
    )


def conversion_over_time(data: ReportData) -> Chart:
    figure = go.Figure()
    series: dict[str, list[tuple[Any, float, int]]] = defaultdict(list)
    for r in data.conversion_over_time.records():
        series[r["channel"]].append((r["bucket"], r["conversion_rate"], r["sessions"]))
    for channel, points in series.items():
        figure.add_scatter(
            name=text(channel),
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            customdata=[p[2] for p in points],
            mode="lines+markers",
            line={"color": CHANNEL_COLOURS.get(channel)},
            hovertemplate="%{x}: %{y:.1%} of %{customdata} sessions<extra>%{fullData.name}</extra>",
        )
    figure.update_layout(yaxis_tickformat=".0%", yaxis_title="conversion rate")
    return Chart(
        "conversion_over_time",
        _layout(
            figure,
            f"Conversion rate per {data.period.rate_bucket} and channel",
            "sessions with a purchase / sessions started in the "
            f"{data.period.rate_bucket}; a session counts under every channel it touched",
            data.period.label(),
        ),
    )


def conversion_and_revenue(data: ReportData) -> Chart:
    records = data.conversion_by_channel.records()
    channels = [text(r["channel"]) for r in records]
    colours = [CHANNEL_COLOURS.get(r["channel"], "#7f7f7f") for r in records]
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "conversion of the sessions touching the channel",
            "revenue of its purchases",
        ),
        horizontal_spacing=0.12,
    )
    figure.add_bar(
        x=channels,
        y=[r["conversion_rate_touching"] for r in records],
        text=[
            f"{r['conversion_rate_touching']:.1%} of {r['sessions_touching']:,}" for r in records
        ],
        marker_color=colours,
        showlegend=False,
        row=1,
        col=1,
    )
    figure.add_bar(
        x=channels,
        y=[r["revenue"] for r in records],
        text=[f"{r['revenue']:,.0f} ({r['purchases']:,} purchases)" for r in records],
        marker_color=colours,
        showlegend=False,
        row=1,
        col=2,
    )
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    return Chart(
        "conversion_revenue",
        _layout(
            figure,
            "Conversion and revenue per channel",
            "left: sessions with a purchase / sessions, a session counted under every channel it "
            "touched; right: purchases made on the channel (a re-sent receipt counted once)",
            data.period.label(),
        ),
    )


def friction_over_time(data: ReportData) -> Chart:
    """Lines per signal type; each friction spike (streams/queries/spikes.py) shaded over its
    period and labelled with its type, channel and how many times the expected rate it ran."""
    bucket = data.period.bucket
    totals: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    for r in data.friction_over_time.records():
        totals[r["type"]][r[bucket]] += r["signals"]
    figure = go.Figure()
    for signal_type in sorted(totals, key=lambda t: -sum(totals[t].values())):
        points = sorted(totals[signal_type].items())
        figure.add_scatter(
            name=text(signal_type),
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="lines",
            hovertemplate="%{x}: %{y} signals<extra>%{fullData.name}</extra>",
        )
    spikes = data.spikes.records()
    for spike in spikes:
        figure.add_vrect(
            x0=spike["started_at"],
            x1=spike["ended_at"],
            fillcolor="#d62728",
            opacity=0.15,
            line_width=0,
            annotation_text=f"{text(spike['type'])} spike ({text(spike['channel'])}, "
            f"×{spike['ratio']:.1f})",
            annotation_position="top left",
            annotation_font_size=11,
        )
    figure.update_layout(yaxis_title=f"signals per {bucket}")
    shaded = (
        f"shaded: {len(spikes)} friction spike{'s' if len(spikes) != 1 else ''} (a type's rate on "
        "a channel abnormally above its baseline; × = observed / expected rate)"
        if spikes
        else "no friction spike in the period"
    )
    return Chart(
        "friction_over_time",
        _layout(
            figure,
            f"Friction signals per {bucket}, by type",
            f"signals raised (all channels); {shaded}",
            data.period.label(),
        ),
    )


def bounce_by_landing_page(data: ReportData) -> Chart:
    records = list(reversed(data.bounce.records()))
    figure = go.Figure(
        go.Bar(
            orientation="h",
            y=[f"{text(r['landing_page'])} ({text(r['channel'])})" for r in records],
            x=[r["bounce_rate"] for r in records],
            text=[f"{r['bounce_rate']:.0%} of {r['sessions']:,}" for r in records],
            marker_color=[CHANNEL_COLOURS.get(r["channel"], "#7f7f7f") for r in records],
        )
    )
    figure.update_layout(xaxis_tickformat=".0%", yaxis_automargin=True)
    return Chart(
        "bounce",
        _layout(
            figure,
            "Bounce rate of the busiest landing pages",
            "closed sessions not engaged (≤ 10 s, < 2 views, no purchase) / sessions landing "
            "there; pages with at least 5 sessions",
            data.period.label(),
        ),
    )


def abandonment_by_device(data: ReportData) -> Chart:
    records = data.abandonment.records()
    devices = [text(r["device_type"] or "unknown") for r in records]
    figure = go.Figure()
    for kind, rate, base in (
        ("cart", "cart_abandonment_rate", "carts"),
        ("checkout", "checkout_abandonment_rate", "checkouts"),
    ):
        figure.add_bar(
            name=f"{kind} abandonment",
            x=devices,
            y=[r[rate] for r in records],
            text=[f"{r[rate]:.0%} of {r[base]:,}" for r in records],
        )
    figure.update_layout(barmode="group", yaxis_tickformat=".0%")
    return Chart(
        "abandonment",
        _layout(
            figure,
            "Cart and checkout abandonment by device type",
            "sessions with add_to_cart (checkout steps) ending without checkout (purchase), by "
            "device of the first cart (checkout) event",
            data.period.label(),
        ),
    )


def journey_map(data: ReportData) -> Chart:
    """The top paths (`parcours paths`) as a Sankey diagram: a node is a touchpoint at a step
    of the session, a band the sessions going from one to the next."""
    graph = sankey(data.paths)
    index = {node["id"]: i for i, node in enumerate(graph["nodes"])}
    figure = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": [f"{n['step']}. {text(n['label'])}" for n in graph["nodes"]],
                "customdata": [n["sessions"] for n in graph["nodes"]],
                "hovertemplate": "%{label}: %{customdata} sessions<extra></extra>",
                "pad": 12,
            },
            link={
                "source": [index[link["source"]] for link in graph["links"]],
                "target": [index[link["target"]] for link in graph["links"]],
                "value": [link["value"] for link in graph["links"]],
            },
        )
    )
    shown = sum(r.sessions for r in data.paths)
    return Chart(
        "journey_map",
        _layout(
            figure,
            f"Journey map: the {len(data.paths)} most frequent paths of two touchpoints or more",
            f"first {PATH_DEPTH} touchpoints of each session (channel + page/screen, store visit, "
            f"support contact, purchase; a repeat in a row is one step); {shown:,} sessions on "
            "these paths; hover a node for its sessions",
            data.period.label(),
        ),
    )


def retention_heatmap(data: ReportData) -> Chart:
    """Cohorts (`parcours retention`) by the period of their first visit; cell = share of the
    cohort active in each later period."""
    unit = data.period.cohort_period
    records = data.retention.records()
    cohorts = sorted({r["cohort"] for r in records})
    periods = sorted({r["period"] for r in records})
    cell = {(r["cohort"], r["period"]): r for r in records}
    z = [
        [cell[(c, p)]["retention_rate"] if (c, p) in cell else None for p in periods]
        for c in cohorts
    ]
    labels = [
        [
            f"{cell[(c, p)]['retention_rate']:.0%}<br>{cell[(c, p)]['active_persons']:,}"
            if (c, p) in cell
            else ""
            for p in periods
        ]
        for c in cohorts
    ]
    sizes = {c: next(r["cohort_persons"] for r in records if r["cohort"] == c) for c in cohorts}
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{unit} {p}" for p in periods],
            y=[f"{c:%d %b %Y} ({sizes[c]:,})" for c in cohorts],
            text=labels,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"tickformat": ".0%"},
            hovertemplate="cohort %{y}, %{x}: %{z:.1%} active<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    return Chart(
        "retention",
        _layout(
            figure,
            f"Retention by {unit} of first visit",
            f"persons (resolved across devices) by the {unit} of their first event on any channel "
            f"(cohort size in brackets); cell: share active in each later {unit} ({unit} 0 = its own)",
            data.period.label(),
        ),
    )


def all_charts(data: ReportData) -> list[Chart]:
    """The report's figures, in reading order."""
    return [
        funnel_by_channel(data),
        journey_map(data),
        conversion_over_time(data),
        conversion_and_revenue(data),
        friction_over_time(data),
        bounce_by_landing_page(data),
        abandonment_by_device(data),
        retention_heatmap(data),
    ]
