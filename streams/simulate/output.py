"""Writing simulated traffic in the `parcours ingest` JSON-lines format."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import orjson

from streams.simulate.config import SimulationConfig
from streams.simulate.generator import SimulatedMessage, SimulationStats, generate


def to_ingest_line(msg: SimulatedMessage) -> bytes:
    """One line `{"topic": …, "value": …}\\n`; a raw (malformed) payload makes a broken line."""
    if isinstance(msg.payload, bytes):
        return b'{"topic": "' + msg.topic.encode() + b'", "value": ' + msg.payload + b"\n"
    return orjson.dumps({"topic": msg.topic, "value": msg.payload}) + b"\n"


def count_message(stats: SimulationStats, msg: SimulatedMessage) -> None:
    stats.lines += 1
    stats.malformed += msg.malformed
    stats.duplicates += msg.duplicate
    stats.by_topic[msg.topic] += 1
    if isinstance(msg.payload, list):
        stats.events += len(msg.payload)
    else:
        stats.events += 1


def write_ingest_file(config: SimulationConfig, target: Path | BinaryIO) -> SimulationStats:
    """Simulate and write; returns what was written (malformed lines are counted too)."""
    stats = SimulationStats()
    if isinstance(target, Path):
        with target.open("wb") as fh:
            return _write(config, fh, stats)
    return _write(config, target, stats)


def _write(config: SimulationConfig, fh: BinaryIO, stats: SimulationStats) -> SimulationStats:
    buffer: list[bytes] = []
    for msg in generate(config):
        count_message(stats, msg)
        buffer.append(to_ingest_line(msg))
        if len(buffer) >= 4096:
            fh.write(b"".join(buffer))
            buffer.clear()
    fh.write(b"".join(buffer))
    return stats
