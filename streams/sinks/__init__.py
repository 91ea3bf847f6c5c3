"""Sinks: where the core's records go (ClickHouse)."""
