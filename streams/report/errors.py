"""The report's exception root."""

from __future__ import annotations

from streams.errors import ParcoursError


class ReportError(ParcoursError):
    """Base of what the report raises on purpose (no data in the period, a file it cannot write)."""
