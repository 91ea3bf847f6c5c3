#!/usr/bin/env bash
# A local single-node KRaft Kafka broker (no Docker): start | stop | status.
# Fetches Kafka 4.1.1 from Maven Central once (into ~/.cache/parcours), runs it with Java 17
# on a free loopback port and prints the bootstrap address.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m streams.devkafka "${1:-status}"
