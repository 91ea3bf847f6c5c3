"""The in-process runner: one loop from raw messages to stored rows.

Intuition: the embedded mode is the streaming pipeline with the network taken out. Messages
are decoded exactly as a Faust agent decodes them, the same `JourneyPipeline` turns events into
records, and a batching sink writes them. At the end of a finite input the watermark jumps past
every open session and checkout attempt, so the tables end complete and deterministic.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from schemas import Event, Rejection, RejectReason, decode
from schemas.decode import decode_document
from streams import metrics
from streams.core.config import JourneyConfig
from streams.core.pipeline import JourneyPipeline
from streams.core.records import Record
from streams.sinks.base import RejectedInput, Sink


@dataclass
class RunStats:
    """What a run did, for the summary printed at the end and for metrics."""

    lines: int = 0
    messages: int = 0
    events: int = 0
    duplicates: int = 0
    late: int = 0
    sessions: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _line_rejection(line: bytes, reason: RejectReason, message: str, topic: str = "") -> Rejection:
    return Rejection(
        reason=reason, message=message, field=None, topic=topic, raw=line, index=None, event_id=None
    )


class EmbeddedRunner:
    """Feeds messages through decode and the core into a sink. Not thread-safe; one per process."""

    def __init__(
        self,
        sink: Sink,
        config: JourneyConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_records: Callable[[list[Record]], None] | None = None,
    ) -> None:
        self.sink = sink
        self.pipeline = JourneyPipeline(config)
        self.stats = RunStats()
        #: Prometheus (streams/metrics.py, served by `parcours ingest --metrics-port`).
        self._consumed: dict[str, object] = {}
        self._duplicates_seen = 0
        self._gauges_at = 0.0
        self._clock = clock
        self._on_records = on_records

    def feed_message(
        self,
        topic: str,
        value: bytes,
        source: str = "",
        position: int = 0,
        *,
        raw: bytes | None = None,
    ) -> None:
        """One Kafka-style message: a value holding one event or a JSON array of events.

        `source` and `position` say where it came from (file and line, topic and offset); they
        make the stored id of a rejection stable across replays. `raw` is what a rejection keeps
        as the original bytes when `value` is not them (an ingest line: the whole line)."""
        self._take(topic, source, position, raw, lambda now: decode(value, topic, now=now))

    def _take(
        self,
        topic: str,
        source: str,
        position: int,
        raw: bytes | None,
        decoder: Callable[[datetime], list[Event | Rejection]],
    ) -> None:
        self.stats.messages += 1
        label = metrics.topic_label(topic)
        consumed = self._consumed.get(label)
        if consumed is None:
            consumed = self._consumed[label] = metrics.EVENTS_CONSUMED.labels(label)
        consumed.inc()  # type: ignore[attr-defined]
        now_s = self._clock()
        received_ms = int(now_s * 1000)
        records: list[Record] = []
        rejections: list[Rejection] = []
        for result in decoder(datetime.fromtimestamp(now_s, UTC)):
            if isinstance(result, Event):
                records.extend(self.pipeline.process(result, received_ms))
            elif raw is not None:
                rejections.append(dataclasses.replace(result, raw=raw))
            else:
                rejections.append(result)
        if rejections:
            for rejection in rejections:
                self.stats.rejected[str(rejection.reason)] += 1
                metrics.EVENTS_REJECTED.labels(label, str(rejection.reason)).inc()
            self.sink.add_rejections(
                RejectedInput(r, source, position, received_ms) for r in rejections
            )
        if records:
            self._write(records)

    def feed_ingest_line(self, line: bytes, source: str = "", position: int = 0) -> None:
        """One line of the ingest format: `{"topic": …, "value": <event or array>}`.

        A line that is not in that format is rejected whole (reason and raw bytes kept), never
        skipped and never an abort. Every rejection from a line, including one of an event inside
        its `value`, keeps the whole line as read (without its line ending) as its raw bytes: the
        value is re-serialised for decoding, so its own bytes would not be the original ones.
        """
        self.stats.lines += 1
        original = line.rstrip(b"\r\n")
        stripped = original.strip()
        if not stripped:
            return
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            self._reject_line(
                original, RejectReason.INVALID_JSON, f"line is not JSON: {exc}", source, position
            )
            return
        if not isinstance(doc, dict):
            self._reject_line(
                original, RejectReason.NOT_AN_OBJECT, "line must be an object", source, position
            )
            return
        topic, value = doc.get("topic"), doc.get("value", _MISSING)
        if not isinstance(topic, str):
            reason = RejectReason.MISSING_FIELD if topic is None else RejectReason.WRONG_TYPE
            self._reject_line(
                original, reason, "topic: a line needs a string `topic`", source, position
            )
            return
        if value is _MISSING:
            self._reject_line(
                original, RejectReason.MISSING_FIELD, "value: missing", source, position, topic
            )
            return
        try:
            value_bytes = orjson.dumps(value)
        except orjson.JSONEncodeError:
            # Nested too deep for orjson to write again: judge each element as parsed (the
            # deep ones are rejected `too_deep`, the valid ones beside them go through).
            self._take(
                topic,
                source,
                position,
                original,
                lambda now: decode_document(value, topic, original, now=now),
            )
            return
        self.feed_message(topic, value_bytes, source, position, raw=original)

    def feed_lines(self, lines: Iterable[bytes], source: str = "") -> None:
        for number, line in enumerate(lines, 1):
            self.feed_ingest_line(line, source, number)

    def feed_event_line(self, line: bytes, topic: str, source: str = "", position: int = 0) -> None:
        """A line of a file of bare events (`--topic`): the line is a message value, decoded
        as it is; a rejection keeps the whole line (without its line ending)."""
        self.stats.lines += 1
        original = line.rstrip(b"\r\n")
        if original.strip():
            self.feed_message(topic, original.strip(), source, position, raw=original)

    def finish(self) -> RunStats:
        """End of input: close everything, write everything."""
        self._write(self.pipeline.finish())
        self.sink.flush()
        metrics.OPEN_SESSIONS.set(self.pipeline.open_sessions)
        metrics.OPEN_CHECKOUTS.set(self.pipeline.open_checkouts)
        counters = self.pipeline.counters
        self.stats.events = counters.events
        self.stats.duplicates = counters.duplicates
        self.stats.late = counters.late
        self.stats.sessions = counters.sessions
        self.stats.signals = Counter(counters.signals)
        return self.stats

    def _write(self, records: list[Record]) -> None:
        for record in records:
            self.stats.records[type(record).__name__] += 1
        self.sink.add(records)
        now_s = time.time()
        metrics.observe_records(records, now_s)
        duplicates = self.pipeline.counters.duplicates
        if duplicates > self._duplicates_seen:
            metrics.EVENTS_DUPLICATE.inc(duplicates - self._duplicates_seen)
            self._duplicates_seen = duplicates
        if now_s - self._gauges_at >= 10:  # counting open sessions walks every person
            self._gauges_at = now_s
            metrics.OPEN_SESSIONS.set(self.pipeline.open_sessions)
            metrics.OPEN_CHECKOUTS.set(self.pipeline.open_checkouts)
        if self._on_records is not None:
            self._on_records(records)

    def _reject_line(
        self,
        line: bytes,
        reason: RejectReason,
        message: str,
        source: str,
        position: int,
        topic: str = "",
    ) -> None:
        self.stats.rejected[str(reason)] += 1
        label = metrics.topic_label(topic)
        metrics.EVENTS_CONSUMED.labels(label).inc()  # a line rejected whole was read all the same
        metrics.EVENTS_REJECTED.labels(label, str(reason)).inc()
        rejection = _line_rejection(line, reason, message, topic)
        received_ms = int(self._clock() * 1000)
        self.sink.add_rejections([RejectedInput(rejection, source, position, received_ms)])


_MISSING = object()
