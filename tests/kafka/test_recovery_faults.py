"""Table recovery that loses changelog records must still restore every person and device.

A worker is killed mid-stream and started again with a fault (tests/kafka/faults/) that makes
its table recovery lose the first records of each changelog partition, the way Faust can
around a rebalance (streams/worker/faust_internals.py; seen in CI as a recovery that never ended).
Each repair must bring them back: the results are the embedded runner's, the worker's
metrics show the repair at work, and its log shows the fault struck.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.kafka.harness import (
    assert_same_as_embedded,
    drained,
    embedded_reference,
    free_port,
    sink_all,
    start_worker,
    stop,
    stream_env,
    total,
    wait_for,
)
from tests.kafka.test_worker_recovery import produce_traffic

pytestmark = [pytest.mark.kafka, pytest.mark.integration, pytest.mark.slow]

FAULTS = Path(__file__).parent / "faults"


@pytest.mark.parametrize(
    ("fault", "stalled_after_s", "repair"),
    [
        # the recovery watch is kept out of it (an hour): the consumer alone must put them back
        ("faust-drops", "3600", "parcours_fetched_records_put_back_total"),
        ("client-loses", "3", "parcours_table_recovery_rereads_total"),
    ],
)
def test_recovery_gets_back_the_changelog_records_it_lost(
    kafka_bootstrap: str,
    tmp_path: Path,
    ch: Client,
    fault: str,
    stalled_after_s: str,
    repair: str,
) -> None:
    env = stream_env(
        kafka_bootstrap,
        tmp_path / "chdb",
        PARCOURS_STREAM_IDLE_AFTER_S="20",
        PARCOURS_STREAM_BATCH_MAX="50",
        PARCOURS_STREAM_RECOVERY_STALLED_AFTER_S=stalled_after_s,
    )
    traffic = produce_traffic(env, tmp_path, customers=40, seed=26)
    lines = sum(1 for _ in traffic.open("rb"))
    port = free_port()
    log = tmp_path / f"worker-{port}.log"
    worker: subprocess.Popen[str] = start_worker(env, port)
    try:
        wait_for(port, lambda m: total(m, "parcours_events_consumed_total") >= lines / 3, log=log)
        stop(worker, signal.SIGKILL)
        faulty = {**env, "PYTHONPATH": str(FAULTS), "PARCOURS_TEST_FAULT": fault}
        worker = start_worker(faulty, port)
        metrics = wait_for(port, drained, timeout=300, log=log)
    finally:
        stop(worker)
    struck = [line for line in log.read_text().splitlines() if f"test fault {fault}:" in line]
    assert struck, f"the fault never struck:\n{log.read_text()[-3000:]}"
    assert "-changelog/" in struck[0]
    assert total(metrics, repair) > 0, metrics
    sink_all(env)
    embedded_reference(ch, traffic)
    assert_same_as_embedded(env, ch)
