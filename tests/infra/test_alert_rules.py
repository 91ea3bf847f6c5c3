"""Alert rules are tested with promtool (Debian's `prometheus` package), not by reading them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "prometheus"], check=True, capture_output=True
        )
        found = shutil.which("promtool")
    if not found:
        pytest.fail(
            "promtool not found: install Debian's `prometheus` package (apt-get install prometheus)"
        )
    return found


def test_rules_are_valid_and_fire_on_friction_spikes() -> None:
    tool = promtool()
    check = subprocess.run(
        [tool, "check", "rules", "parcours-rules.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [tool, "test", "rules", "parcours-rules-test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout
