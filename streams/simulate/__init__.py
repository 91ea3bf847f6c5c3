"""Realistic, seeded omnichannel traffic for demos, tests and benchmarks."""

from streams.simulate.config import (
    Incident,
    SimulationConfig,
    SimulationError,
    parse_incident,
)
from streams.simulate.generator import SimulatedMessage, SimulationStats, generate
from streams.simulate.output import to_ingest_line, write_ingest_file

__all__ = [
    "Incident",
    "SimulatedMessage",
    "SimulationConfig",
    "SimulationError",
    "SimulationStats",
    "generate",
    "parse_incident",
    "to_ingest_line",
    "write_ingest_file",
]
