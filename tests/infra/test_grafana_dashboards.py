"""The Journeys dashboard's JSON is what streams/report/dashboard.py builds, names only
provisioned datasources, and uses only variables it defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streams.report.dashboard import build, render
from tests.report.grafana import MACROS, variables_used

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra/grafana"
DASHBOARD = GRAFANA / "dashboards/journeys.json"

pytestmark = pytest.mark.unit


def _provisioned() -> dict[str, str]:
    """uid -> type of every provisioned datasource (structural read: no YAML parser needed)."""
    found = {}
    for path in (GRAFANA / "provisioning/datasources").glob("*.yml"):
        for block in re.split(r"\n  - ", path.read_text())[1:]:
            uid = re.search(r"^\s*uid: (\S+)", block, re.MULTILINE)
            kind = re.search(r"^\s*type: (\S+)", block, re.MULTILINE)
            assert uid and kind, f"{path.name}: a datasource without uid or type"
            found[uid.group(1)] = kind.group(1)
    return found


def test_the_committed_dashboard_is_the_built_one() -> None:
    assert DASHBOARD.read_text() == render(), (
        "regenerate: python -m streams.report.dashboard > infra/grafana/dashboards/journeys.json"
    )


def test_every_datasource_is_provisioned() -> None:
    provisioned = _provisioned()
    dashboard = json.loads(DASHBOARD.read_text())
    refs = [p["datasource"] for p in dashboard["panels"]]
    refs += [t["datasource"] for p in dashboard["panels"] for t in p["targets"]]
    refs += [a["datasource"] for a in dashboard["annotations"]["list"]]
    assert refs
    for ref in refs:
        assert provisioned.get(ref["uid"]) == ref["type"], ref
    assert provisioned["parcours-clickhouse"] == "grafana-clickhouse-datasource"


def test_every_variable_used_is_defined_and_every_defined_one_used() -> None:
    dashboard = build()
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    texts = [p["title"] for p in dashboard["panels"]]
    texts += [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    texts += [a["target"]["rawSql"] for a in dashboard["annotations"]["list"]]
    used = set().union(*(variables_used(t) for t in texts))
    assert used == defined
    macros = set(re.findall(r"\$__\w+", " ".join(texts)))
    assert macros <= set(MACROS), macros - set(MACROS)


def test_panel_ids_are_unique_and_the_grid_has_no_overlap() -> None:
    panels = build()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, p["title"]
        cells |= mine


def test_grafana_reads_clickhouse_as_the_analyst_with_a_password_from_the_environment() -> None:
    text = (GRAFANA / "provisioning/datasources/clickhouse.yml").read_text()
    assert "username: parcours_analyst" in text
    assert "password: $PARCOURS_ANALYST_PASSWORD" in text
    compose = (ROOT / "docker-compose.yml").read_text()
    grafana = re.search(r"\n  grafana:\n((?:    .*\n|\s*#.*\n)+)", compose)
    assert grafana
    assert "grafana-clickhouse-datasource@" in grafana.group(1)
    assert "PARCOURS_ANALYST_PASSWORD: ${PARCOURS_ANALYST_PASSWORD:?" in grafana.group(1)


def test_the_analyst_may_read_every_table_the_dashboard_reads() -> None:
    """Grafana logs in as parcours_analyst: a table or view a panel reads without a grant is a
    panel that fails on the server (chDB has no access control, so only this test sees it)."""
    migrations = " ".join(p.read_text() for p in (ROOT / "infra/clickhouse").glob("*.sql"))
    created = set(re.findall(r"CREATE (?:TABLE|VIEW)(?: IF NOT EXISTS)? (\w+)", migrations))
    roles = (ROOT / "infra/clickhouse/roles/roles.sql").read_text()
    granted = set(re.findall(r"GRANT SELECT ON \{database\}\.(\w+) TO parcours_analyst", roles))
    dashboard = build()
    sql = " ".join(t["rawSql"] for p in dashboard["panels"] for t in p["targets"])
    sql += " ".join(a["target"]["rawSql"] for a in dashboard["annotations"]["list"])
    read = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql)) & created
    assert {"events", "sessions", "friction", "friction_spikes"} <= read
    assert read <= granted, f"not granted to parcours_analyst: {sorted(read - granted)}"
