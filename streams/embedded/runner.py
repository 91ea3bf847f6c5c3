"""The in-process runner: one loop from raw messages to stored rows.

Intuition: the embedded mode is the streaming pipeline with the network taken out. Messages
are decoded exactly as a Faust agent decodes them, the same `JourneyPipeline` turns events into
records, and a batching sink writes them.

A run ends in one of two ways. `finish(close=True)`: the input is complete, the watermark jumps
past every open session and checkout attempt, and the tables end complete. `finish(close=False)`:
more input will come (tomorrow's file), so nothing is decided that the data has not decided;
what is still open is written as provisional rows (open sessions, unfinished minutes) that the
next run replaces. Either way, with a state store the whole journey state is saved
(`checkpoint`: the sink's rows first, then the state), and the next run restored from it carries
on as if both inputs had been one. How far each input was read is part of that state, so a run
killed and started again skips what was already processed instead of counting it twice.
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
from streams.core.pipeline import JourneyPipeline, PipelineCounters
from streams.core.records import Record
from streams.embedded.state import JourneyStateStore
from streams.sinks.base import RejectedInput, Sink

#: The runner's saved state: the journey's snapshot plus how far each input was read.
STATE_FORMAT = 1


@dataclass
class RunStats:
    """What a run did, for the summary printed at the end and for metrics."""

    lines: int = 0
    messages: int = 0
    events: int = 0
    duplicates: int = 0
    late: int = 0
    sessions: int = 0
    #: Lines of inputs already processed by an earlier run, skipped.
    skipped: int = 0
    #: Sessions still open at the end of the run (written as provisional rows).
    open_sessions: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    #: Rows that late events revised or withdrew, by kind.
    revisions: Counter[str] = field(default_factory=Counter)
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
        store: JourneyStateStore | None = None,
        resume: bool = True,
        checkpoint_every_s: float | None = None,
    ) -> None:
        """With a `store`, the run starts from its newest saved state (unless `resume` is
        false: a fresh start) and saves its state at the end and every `checkpoint_every_s`
        seconds of wall clock while inputs are read."""
        self.sink = sink
        self.store = store
        saved = store.load() if store is not None and resume else None
        if saved is not None:
            if saved.get("format") != STATE_FORMAT:
                from streams.core.snapshot import SnapshotFormatError

                raise SnapshotFormatError(
                    f"saved ingest state of format {saved.get('format')!r}; this version reads "
                    f"{STATE_FORMAT} (start afresh with `parcours ingest --fresh`)"
                )
            journey = saved["journey"]
            self.pipeline = (
                JourneyPipeline(config)
                if journey is None
                else JourneyPipeline.restore(journey, config)
            )
            self.positions: dict[str, int] = dict(saved["positions"])
        else:
            self.pipeline = JourneyPipeline(config)
            self.positions = {}
        self.restored = saved is not None and saved["journey"] is not None
        #: Set by `finish(close=True)`: the input was complete and everything is closed.
        self.closed = False
        self._base = _counters_of(self.pipeline)
        self._duplicates_seen = self._base.duplicates  # metrics count this run's only
        self._revisions_seen = Counter(self._base.revisions)
        self.checkpoint_every_s = checkpoint_every_s
        self._checkpointed_at = time.monotonic()
        self.stats = RunStats()
        #: Prometheus (streams/metrics.py, served by `parcours ingest --metrics-port`).
        self._consumed: dict[str, object] = {}
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

    # -- inputs read across runs ------------------------------------------------------------

    def resume_at(self, input_key: str) -> int:
        """The last position of `input_key` an earlier run processed (0: none)."""
        return self.positions.get(input_key, 0)

    def delivered(self, input_key: str, position: int) -> None:
        """Everything of `input_key` up to `position` is processed; checkpoints when due."""
        self.positions[input_key] = position
        if (
            self.checkpoint_every_s is not None
            and time.monotonic() - self._checkpointed_at >= self.checkpoint_every_s
        ):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write every row produced so far, then save the state that produced them.

        In that order: the saved state is never ahead of the tables, so a run killed between
        the two only processes again what it had not saved (writing rows with the same ids)."""
        self._checkpointed_at = time.monotonic()
        if self.store is None:
            return
        self.sink.flush()
        state = {
            "format": STATE_FORMAT,
            # After a complete input nothing is left to carry on: the watermark stands past
            # all time, where every later event would be late. The next run starts afresh
            # (and still skips the inputs already read).
            "journey": None if self.closed else self.pipeline.snapshot(),
            "positions": self.positions,
        }
        self.store.save(state, STATE_FORMAT)

    def finish(self, close: bool = True) -> RunStats:
        """End of this run's input. `close`: the input is complete, close everything. Else more
        will come: write what is open as provisional rows and keep it open. Then save."""
        self._write(self.pipeline.finish() if close else self.pipeline.provisional())
        self.closed = close
        self.sink.flush()
        self.checkpoint()
        metrics.OPEN_SESSIONS.set(self.pipeline.open_sessions)
        metrics.OPEN_CHECKOUTS.set(self.pipeline.open_checkouts)
        counters, base = self.pipeline.counters, self._base
        self.stats.events = counters.events - base.events
        self.stats.duplicates = counters.duplicates - base.duplicates
        self.stats.late = counters.late - base.late
        self.stats.sessions = counters.sessions - base.sessions
        self.stats.signals = Counter(counters.signals)
        self.stats.signals.subtract(base.signals)
        self.stats.signals = +self.stats.signals
        self.stats.revisions = Counter(counters.revisions)
        self.stats.revisions.subtract(base.revisions)
        self.stats.revisions = +self.stats.revisions
        self.stats.open_sessions = self.pipeline.open_sessions
        return self.stats

    def _write(self, records: list[Record]) -> None:
        for record in records:
            self.stats.records[type(record).__name__] += 1
        self.sink.add(records)
        now_s = time.time()
        metrics.observe_records(records, now_s)
        revisions = self.pipeline.counters.revisions
        if revisions != self._revisions_seen:
            for kind, n in revisions.items():
                if n > self._revisions_seen[kind]:
                    metrics.REVISIONS.labels(kind).inc(n - self._revisions_seen[kind])
            self._revisions_seen = Counter(revisions)
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


def _counters_of(pipeline: JourneyPipeline) -> PipelineCounters:
    """A copy of the pipeline's counters (a restored run reports its own work only)."""
    c = pipeline.counters
    return PipelineCounters(
        c.events, c.duplicates, c.late, c.sessions, Counter(c.signals), Counter(c.revisions)
    )
