"""Alertmanager routing and inhibition, tested with Debian's `prometheus-alertmanager` (amtool
for the routes, the real server for the inhibition), not by reading the YAML."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alertmanager.yml"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "prometheus-alertmanager"],
            check=True,
            capture_output=True,
        )
        found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install Debian's `prometheus-alertmanager` package")
    return found


def _route(*labels: str) -> str:
    result = subprocess.run(
        [_tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_config_is_valid() -> None:
    result = subprocess.run(
        [_tool("amtool"), "check-config", str(CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=ParcoursPaymentFailureSpike", "team=payments", "channel=web"), "payments"),
        (("alertname=ParcoursFrictionSpike", "team=product", "type=bounce"), "product"),
        (("alertname=ParcoursWatermarkStalled", "team=platform"), "platform"),
        (("alertname=ParcoursSinkErrors", "team=platform"), "platform"),
        # negative: an alert without a team is not sent to payments or product
        (("alertname=SomethingElse",), "platform"),
        (("alertname=ParcoursFrictionSpike", "team=payments-typo"), "platform"),
    ],
)
def test_alerts_go_to_their_team(labels: tuple[str, ...], receiver: str) -> None:
    assert _route(*labels) == receiver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    port, cluster = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            _tool("prometheus-alertmanager"),
            f"--config.file={CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v2"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/status", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _post(url: str, alerts: list[dict[str, object]]) -> None:
    request = urllib.request.Request(
        f"{url}/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()


def _states(url: str) -> dict[str, list[str]]:
    """alertname/channel -> the alerts inhibiting it (empty: it is active)."""
    with urllib.request.urlopen(f"{url}/alerts", timeout=5) as response:
        alerts = json.loads(response.read())
    return {
        f"{a['labels']['alertname']}/{a['labels'].get('channel', '')}": a["status"]["inhibitedBy"]
        for a in alerts
    }


def _alert(name: str, **labels: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **labels},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def test_a_stream_health_incident_silences_friction_alerts(alertmanager: str) -> None:
    friction = [
        _alert(
            "ParcoursPaymentFailureSpike", team="payments", type="payment_failure", channel="web"
        ),
        _alert("ParcoursFrictionSpike", team="product", type="bounce", channel="app"),
    ]
    other = _alert("ParcoursSinkErrors", team="platform")
    _post(alertmanager, [*friction, other])
    time.sleep(0.5)
    states = _states(alertmanager)
    # negative: without a stream-health incident nothing is inhibited
    assert all(not inhibitors for inhibitors in states.values()), states
    _post(alertmanager, [_alert("ParcoursWatermarkStalled", team="platform", instance="w1")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = _states(alertmanager)
        if states["ParcoursPaymentFailureSpike/web"] and states["ParcoursFrictionSpike/app"]:
            break
        time.sleep(0.2)
    assert states["ParcoursPaymentFailureSpike/web"], states
    assert states["ParcoursFrictionSpike/app"], states
    # the stream-health alerts themselves still page the platform team
    assert not states["ParcoursWatermarkStalled/"] and not states["ParcoursSinkErrors/"]
