"""The functional core stays pure: no Kafka, Faust, ClickHouse or Prometheus in `streams.core`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FORBIDDEN = (
    "faust",
    "aiokafka",
    "confluent_kafka",
    "clickhouse_connect",
    "chdb",
    "prometheus_client",
    "mode",
)
CORE = Path(__file__).resolve().parents[2] / "streams" / "core"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_framework(path: Path) -> None:
    bad = {m for m in _imported_modules(path) if m.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.name} imports {sorted(bad)}: the core must stay pure"


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, streams.core.pipeline, streams.core.journey;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
