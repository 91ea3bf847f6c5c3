"""The root of the `streams` package's exceptions.

Each part of the pipeline has its own base (`SimulationError`, `DevKafkaError`, `StorageError`,
`QueryError`), and all of them derive from `ParcoursError`, so a caller (the CLI, an
application embedding Parcours) can catch everything the pipeline raises on purpose in one
place and let programming errors through. Events never raise: decoding returns rejections
(`schemas`, whose own root is `schemas.errors.SchemaError`).
"""

from __future__ import annotations


class ParcoursError(Exception):
    """Base of every exception the `streams` package raises on purpose."""
