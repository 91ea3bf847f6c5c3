"""The journey report: one self-contained HTML file a product manager opens offline.

`collect` (data.py) runs the shipped queries once against ClickHouse; `charts.py` turns the
results into Plotly figures; `page.py` writes them into one HTML file with Plotly's JavaScript
inlined. The Grafana "Journeys" dashboard (dashboard.py) shows the same questions live.
"""
