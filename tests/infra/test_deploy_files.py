"""docker-compose.yml is valid, and every metric the dashboard and alerts use exists."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streams import metrics

ROOT = Path(__file__).resolve().parents[2]


def _metric_names() -> set[str]:
    names: set[str] = set()
    for collector in metrics.REGISTRY.collect():
        names.add(collector.name)
        if collector.type == "counter":
            names.add(collector.name + "_total")
        if collector.type == "histogram":
            names.update(collector.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


@pytest.mark.unit
def test_dashboard_and_alerts_only_use_existing_metrics() -> None:
    known = _metric_names()
    text = (ROOT / "infra/prometheus/parcours-rules.yml").read_text()
    dashboard = json.loads((ROOT / "infra/grafana/dashboards/parcours.json").read_text())
    text += " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = set(re.findall(r"\bparcours_[a-z_]+", text))
    assert used, "no metric found"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"


@pytest.mark.integration
def test_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    if tool is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "docker-compose"], capture_output=True)
        tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail(
            "docker-compose not found (apt-get install docker-compose) to validate docker-compose.yml"
        )
    result = subprocess.run(
        [tool, "--env-file", ".env.example", "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.unit
def test_every_scrape_target_is_a_service_listening_on_all_interfaces() -> None:
    """Worker and sink served /metrics on 127.0.0.1 inside their containers while Prometheus
    scraped worker:6066 and sink:9400: never scraped (issue 12). Structural (no YAML parser
    needed): each target's service command names the port and listens on 0.0.0.0."""
    prometheus = (ROOT / "infra/prometheus/prometheus.yml").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    targets = re.findall(r'targets: \["([a-z]+):(\d+)"\]', prometheus)
    assert ("worker", "6066") in targets and ("sink", "9400") in targets
    for service, port in targets:
        if service == "alertmanager":
            continue
        block = re.search(rf"\n  {service}:\n((?:    .*\n|\s*#.*\n)+)", compose)
        assert block, f"no service {service} in docker-compose.yml"
        command = re.search(r"command: (\[.*\])", block.group(1))
        assert command, f"service {service} has no command"
        args = json.loads(command.group(1))
        assert port in args, f"{service} does not serve on {port}: {args}"
        assert "0.0.0.0" in args, f"{service} listens on 127.0.0.1 only: {args}"


@pytest.mark.unit
def test_the_metrics_address_is_configurable() -> None:
    from typer.testing import CliRunner

    from streams.cli.main import app

    for command, option in (("sink", "--metrics-addr"), ("worker", "--web-host")):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert option in result.output and "PARCOURS_METRICS_ADDR" in result.output


@pytest.mark.unit
def test_compose_uses_one_user_per_part_and_no_committed_password() -> None:
    """One credential (`parcours:parcours` in the file) served the pipeline and the analysts."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "parcours:parcours" not in compose
    assert "parcours_sink:${PARCOURS_SINK_PASSWORD}" in compose
    assert "parcours_analyst:${PARCOURS_ANALYST_PASSWORD}" in compose
    assert ".env" in (ROOT / ".gitignore").read_text().split()
