"""One exception hierarchy per package: everything `streams` raises on purpose derives from
`ParcoursError` (`schemas` has its own root, `SchemaError`)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import schemas
import streams
from schemas.errors import SchemaError
from streams.errors import ParcoursError

pytestmark = pytest.mark.unit

#: Modules that need a broker or Faust at import time are not exceptions' homes.
SKIP = ("streams.worker.app", "streams.cli.stream_cmds")


def _exceptions(package: object) -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):  # type: ignore[attr-defined]
        if info.name.startswith(SKIP):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_streams_exception_derives_from_parcours_error() -> None:
    found = _exceptions(streams)
    assert {e.__name__ for e in found} >= {"SimulationError", "StorageError", "QueryError"}
    assert [e for e in found if not issubclass(e, ParcoursError)] == []


def test_every_schemas_exception_derives_from_schema_error() -> None:
    found = _exceptions(schemas)
    assert found
    assert [e for e in found if not issubclass(e, SchemaError)] == []
