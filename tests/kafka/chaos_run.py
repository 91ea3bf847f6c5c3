"""Driving the chaos test: the processes under test, their faults, and what they cost.

Intuition: the faults are fired by progress, not by the clock, so the schedule means the same
on a fast and a slow machine. The worker's progress is what its consumer group committed on
the input topics over what was produced (it survives the worker's death); the sink's is the
rejected messages it stored over the malformed messages of the input (summed over its lives,
so a replayed batch counts twice: "about" 10 %). Rejections travel at once, while an event's
row waits for its partition's watermark, so they follow the input. A recovery time is
measured from the moment a fault struck to the moment the part it hit was doing its work
again. The worker and the sink are struck independently; the broker only when both are up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from streams.devkafka import LocalKafka
from tests.kafka.harness import (
    PARCOURS,
    drained,
    free_port,
    scrape,
    start_worker,
    stop,
    total,
)

FAULTS = Path(__file__).parent / "faults"


@dataclass
class Life:
    """One process of the worker or the sink, from its start to its death."""

    process: subprocess.Popen[str]
    port: int
    started: float = field(default_factory=time.monotonic)
    last: dict[str, float] = field(default_factory=dict)

    def scrape(self) -> dict[str, float]:
        with contextlib.suppress(OSError):  # starting, or stopped: keep the last scrape
            self.last = scrape(self.port)
        return self.last


@dataclass
class Recovery:
    fault: str
    part: str  # worker, sink, broker, clickhouse
    struck: float
    recovered: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.struck


class Chaos:
    """The broker, one worker and one sink, each replaced when killed."""

    def __init__(self, broker: LocalKafka, env: dict[str, str], tmp: Path, malformed: int) -> None:
        self.broker, self.env, self.tmp, self.malformed = broker, env, tmp, malformed
        self.worker_lives: list[Life] = []
        self.sink_lives: list[Life] = []
        self.recoveries: list[Recovery] = []
        self.sink_log = tmp / "sink.log"
        self._progress = 0.0
        self._watch = Consumer(
            {
                "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
                "group.id": env["PARCOURS_STREAM_APP_ID"],
                "log_level": 0,
            }
        )
        self._sink_watch = Consumer(
            {
                "bootstrap.servers": env["PARCOURS_KAFKA_BOOTSTRAP"],
                "group.id": "parcours-sink",
                "log_level": 0,
            }
        )
        self.inputs: list[TopicPartition] = []
        self.produced = 0
        self._pending: list[tuple[Recovery, Callable[[], bool]]] = []

    # -- processes ----------------------------------------------------------------------

    def start_worker(self) -> Life:
        port = free_port()
        life = Life(start_worker(self.env, port), port)
        self.worker_lives.append(life)
        return life

    def start_sink(self, fault_env: dict[str, str] | None = None) -> Life:
        port = free_port()
        env = {**self.env, **(fault_env or {})}
        if fault_env:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(FAULTS), self.env.get("PYTHONPATH", "")) if p
            )
        process = subprocess.Popen(
            [*PARCOURS, "sink", "--metrics-port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.sink_log.open("a"),
            text=True,
            start_new_session=True,
        )
        life = Life(process, port)
        self.sink_lives.append(life)
        return life

    def kill(self, life: Life) -> None:
        life.scrape()
        os.killpg(life.process.pid, signal.SIGKILL)
        life.process.wait(15)

    def check_alive(self, *parts: str) -> None:
        """A process that exits by itself is a failure of the test (it must ride out faults)."""
        for name, lives in (("worker", self.worker_lives), ("sink", self.sink_lives)):
            if parts and name not in parts:
                continue
            if lives and lives[-1].process.poll() is not None:
                log = self.worker_log() if name == "worker" else self.sink_log
                raise AssertionError(
                    f"the {name} exited by itself ({lives[-1].process.returncode}):\n"
                    f"{log.read_text()[-4000:]}"
                )

    def worker_log(self) -> Path:
        """Where harness.start_worker writes the current worker's log (beside the database)."""
        db = Path(self.env["PARCOURS_CLICKHOUSE_DSN"].removeprefix("chdb://"))
        return db.parent / f"worker-{self.worker_lives[-1].port}.log"

    def stop_all(self) -> None:
        for life in [*self.worker_lives[-1:], *self.sink_lives[-1:]]:
            stop(life.process)
        self._watch.close()
        self._sink_watch.close()

    # -- progress -----------------------------------------------------------------------

    def worker_progress(self) -> float:
        """Input messages the worker's group committed, over those produced (0..1)."""
        try:
            committed = self._watch.committed(self.inputs, timeout=2)
        except Exception:
            return self._progress  # the broker is away: keep the last reading
        done = sum(max(0, tp.offset) for tp in committed)
        self._progress = max(self._progress, done / max(1, self.produced))
        return self._progress

    def all_committed(self) -> bool:
        """Whether the worker's group has committed every input message (a fresh reading: it
        needs the broker to answer)."""
        try:
            committed = self._watch.committed(self.inputs, timeout=2)
        except Exception:
            return False
        return sum(max(0, tp.offset) for tp in committed) >= self.produced

    def worker_back(self, life: Life, consumed_before: float) -> bool:
        """A worker is back once it consumes again; or, when its group had already committed
        all the input before the fault, once it runs with its watermark following the wall
        clock and the broker answers. A fault can strike after the input is all read (a
        slow machine reaches the fault's progress late): then there is nothing left to
        consume, and waiting for a consumed event would wait for ever."""
        metrics = life.scrape()
        if total(metrics, "parcours_events_consumed_total") > consumed_before:
            return True
        return drained(metrics) and self.all_committed()

    def sink_back(self, life: Life) -> bool:
        """A sink is back once it writes again, or once its group has committed every
        record the worker wrote (nothing was left for it to write)."""
        if total(life.scrape(), "parcours_sink_rows_total") > 0:
            return True
        records = self.env["PARCOURS_STREAM_RECORDS_TOPIC"]
        try:
            metadata = self._sink_watch.list_topics(records, timeout=2)
            tps = [TopicPartition(records, p) for p in metadata.topics[records].partitions]
            ends = [self._sink_watch.get_watermark_offsets(tp, timeout=2)[1] for tp in tps]
            committed = self._sink_watch.committed(tps, timeout=2)
        except Exception:
            return False
        return [tp.offset for tp in committed] == ends

    def sink_progress(self) -> float:
        """Rejected messages the sink stored (every life), over the malformed input."""
        for life in self.sink_lives[-1:]:
            life.scrape()
        key = 'parcours_sink_rows_total{table="rejected_messages"}'
        written = sum(life.last.get(key, 0.0) for life in self.sink_lives)
        return written / max(1, self.malformed)

    def busy(self, *parts: str) -> bool:
        """Whether a fault that struck one of `parts` (any part: none named) has not been
        recovered from yet."""
        return any(not parts or r.part in parts for r, _ in self._pending)

    # -- faults -------------------------------------------------------------------------

    def kill_worker(self, name: str) -> None:
        self.kill(self.worker_lives[-1])
        recovery = Recovery(name, "worker", time.monotonic())
        self.recoveries.append(recovery)
        life = self.start_worker()
        self._until(recovery, lambda: self.worker_back(life, 0))

    def kill_sink(self, name: str, fault_env: dict[str, str] | None = None) -> None:
        self.kill(self.sink_lives[-1])
        recovery = Recovery(name, "sink", time.monotonic())
        self.recoveries.append(recovery)
        life = self.start_sink(fault_env)
        self._until(recovery, lambda: self.sink_back(life))

    def restart_broker(self, name: str) -> None:
        worker = self.worker_lives[-1]
        before = total(worker.scrape(), "parcours_events_consumed_total")
        recovery = Recovery(name, "broker", time.monotonic())
        self.recoveries.append(recovery)
        self.broker.restart()
        self._until(recovery, lambda: self.worker_back(worker, before))

    def _until(self, recovery: Recovery, back: Callable[[], bool]) -> None:
        """Record when `back()` first holds; the run loop keeps asking (`poll_recoveries`)."""
        self._pending.append((recovery, back))

    def poll_recoveries(self) -> None:
        for item in list(self._pending):
            recovery, back = item
            if back():
                recovery.recovered = time.monotonic()
                self._pending.remove(item)

    def outage_recovery(self, outage_end: float) -> Recovery:
        """The ClickHouse outage ends at `outage_end` (epoch s); the sink is back once it
        commits again after it."""
        recovery = Recovery(
            "ClickHouse back", "clickhouse", time.monotonic() - (time.time() - outage_end)
        )
        self.recoveries.append(recovery)
        life = self.sink_lives[-1]
        self._until(
            recovery,
            lambda: (
                life.scrape().get("parcours_sink_last_commit_timestamp_seconds", 0) > outage_end
            ),
        )
        return recovery


_OUTAGE = re.compile(r"test fault clickhouse-down: down from ([\d.]+) to ([\d.]+)")
_REFUSED = re.compile(r"test fault clickhouse-down: refused an insert of (\d+) rows into (\w+)")


def outage_in(log: Path) -> tuple[float, float] | None:
    match = _OUTAGE.search(log.read_text()) if log.exists() else None
    return (float(match.group(1)), float(match.group(2))) if match else None


def refused_inserts(log: Path) -> list[tuple[int, str]]:
    return [(int(n), table) for n, table in _REFUSED.findall(log.read_text())]
