"""`python -m streams.devkafka start|stop|status`: a detached local broker for development.

The broker's pid and bootstrap address are kept in ~/.cache/parcours/run/kafka.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from streams.devkafka.broker import DevKafkaError, LocalKafka, cache_dir

STATE = cache_dir().parent / "run" / "kafka.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    state = json.loads(STATE.read_text()) if STATE.exists() else None
    if command == "start":
        if state and _alive(state["pid"]):
            print(state["bootstrap"])
            return 0
        broker = LocalKafka()
        try:
            bootstrap = broker.start()
        except DevKafkaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        assert broker.process is not None and broker.workdir is not None
        STATE.parent.mkdir(parents=True, exist_ok=True)
        STATE.write_text(
            json.dumps(
                {"pid": broker.process.pid, "bootstrap": bootstrap, "workdir": str(broker.workdir)}
            )
        )
        print(bootstrap)
        return 0
    if command == "status":
        if state and _alive(state["pid"]):
            print(f"running: {state['bootstrap']} (pid {state['pid']})")
            return 0
        print("not running")
        return 3
    if command == "stop":
        if state and _alive(state["pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state["pid"], signal.SIGTERM)
            print("stopped")
        STATE.unlink(missing_ok=True)
        if state:
            import shutil

            shutil.rmtree(Path(state["workdir"]), ignore_errors=True)
        return 0
    print("usage: python -m streams.devkafka start|stop|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
