"""The committed JSON Schema files are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ExportError
from schemas.export import export_json_schemas, json_schemas

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "json"


def test_committed_schema_files_are_in_sync_with_the_models(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert len(written) == len(json_schemas())
    for path in written:
        committed = COMMITTED / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `parcours schema export schemas/json`"
        )
    extra = {p.relative_to(COMMITTED) for p in COMMITTED.rglob("*.json")} - {
        p.relative_to(tmp_path) for p in written
    }
    assert not extra, f"files no model generates: {sorted(map(str, extra))}"


def test_exporting_into_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ExportError):
        export_json_schemas(target)
