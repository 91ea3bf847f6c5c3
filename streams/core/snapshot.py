"""The embedded journey runtime's state as plain data, and back.

Intuition: a run of `parcours ingest` must end where the next one starts: the people and
devices known, open sessions and checkout attempts, events still waiting for the watermark,
the dedup memory, the per-minute totals not yet final, and the watermark itself. Everything is
written in the same plain forms the Faust workers keep in their changelogs
(`streams.core.codec`), so one format is tested for both runners and a snapshot says nothing
about Python's object layout. The deadline queue is not stored: it follows from the persons.

`FORMAT` changes when a snapshot of an earlier format can no longer be read as it is; reading
one of another format is refused with a clear error, never guessed at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.core.codec import (
    aggregates_from_parts,
    aggregates_meta,
    device_from_dict,
    device_to_dict,
    minute_buckets,
    person_from_dict,
    person_to_dict,
)
from streams.errors import ParcoursError

if TYPE_CHECKING:
    from streams.core.pipeline import JourneyPipeline

FORMAT = 1


class SnapshotFormatError(ParcoursError):
    """A snapshot this version cannot read (another format, or not a snapshot at all):
    permanent, retrying cannot help; start afresh or use the version that wrote it."""


def pipeline_to_dict(pipeline: JourneyPipeline) -> dict[str, Any]:
    aggregates = pipeline.aggregates
    counters = pipeline.counters
    return {
        "format": FORMAT,
        "max_event_ms": pipeline.max_event_ms,
        "watermark_ms": pipeline.watermark_ms,
        "devices_pruned_at": pipeline._devices_pruned_at,
        "devices": {k: device_to_dict(v) for k, v in pipeline.devices.items()},
        "persons": {k: person_to_dict(v) for k, v in pipeline.persons.items()},
        "aggregates": aggregates_meta(aggregates),
        "minutes": {str(m): minute_buckets(aggregates, m) for m in aggregates.minutes},
        "counters": {
            "events": counters.events,
            "duplicates": counters.duplicates,
            "late": counters.late,
            "sessions": counters.sessions,
            "signals": dict(counters.signals),
            "revisions": dict(counters.revisions),
        },
    }


def pipeline_from_dict(pipeline: JourneyPipeline, data: dict[str, Any]) -> None:
    """Load `data` into a new `pipeline` (made with the configuration of this run)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SnapshotFormatError(f"journey state of format {found!r}; this version reads {FORMAT}")
    pipeline.max_event_ms = data["max_event_ms"]
    pipeline.watermark_ms = data["watermark_ms"]
    pipeline._devices_pruned_at = data["devices_pruned_at"]
    pipeline.devices = {k: device_from_dict(v) for k, v in data["devices"].items()}
    pipeline.persons = {k: person_from_dict(v) for k, v in data["persons"].items()}
    minutes = {int(m): rows for m, rows in data["minutes"].items() if rows is not None}
    pipeline.aggregates = aggregates_from_parts(data["aggregates"], minutes)
    counters = data["counters"]
    pipeline.counters.events = counters["events"]
    pipeline.counters.duplicates = counters["duplicates"]
    pipeline.counters.late = counters["late"]
    pipeline.counters.sessions = counters["sessions"]
    pipeline.counters.signals.update(counters["signals"])
    pipeline.counters.revisions.update(counters.get("revisions", {}))
    pipeline.reschedule()
