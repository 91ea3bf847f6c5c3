"""Fault injection for `parcours ingest` subprocesses (on PYTHONPATH only in these tests).

`PARCOURS_TEST_KILL="SAVE_AT:KILL_AT"`: when the run has read line SAVE_AT it saves its state
(as its periodic checkpoint would), and when it has read line KILL_AT it kills itself with
SIGKILL: a real kill, at a known point, with work done after the last save (rows already
written by the sink, lines read) that the next run must neither lose nor count twice.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("PARCOURS_TEST_KILL")

if _SPEC:
    from streams.embedded.runner import EmbeddedRunner

    save_at, kill_at = (int(x) for x in _SPEC.split(":"))
    original = EmbeddedRunner.delivered
    saved = False

    def delivered(self: EmbeddedRunner, input_key: str, position: int) -> None:
        global saved
        original(self, input_key, position)
        if position >= save_at and not saved:
            saved = True
            self.checkpoint()
        elif position >= kill_at and saved:
            self.sink.flush()  # rows after the save are in the tables: not to be counted twice
            os.kill(os.getpid(), signal.SIGKILL)

    EmbeddedRunner.delivered = delivered  # type: ignore[method-assign]
