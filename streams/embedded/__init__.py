"""The embedded pipeline: files or the simulator -> decode -> journey core -> ClickHouse (chDB)."""
