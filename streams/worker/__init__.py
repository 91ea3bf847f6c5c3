"""Streaming mode: the Faust app (decode + identity, journey) and the ClickHouse sink stage."""
