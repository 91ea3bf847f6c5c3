"""`parcours ingest` over chDB, as a user runs it: consecutive files, and a run killed with
SIGKILL and started again, give the tables of one run over the whole input.

Each scenario runs the CLI in its own processes on its own chDB directory (chDB allows one
database directory per process, and the test process has its own).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.simulate import SimulationConfig
from streams.simulate.output import write_ingest_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What a reader sees, each table read as the shipped queries read it (received_at aside: it is
#: the wall clock; versions aside: they only order the rows of one session).
DUMPS = {
    "events": "SELECT event_id, person_id, session_id, occurred_at, late FROM events FINAL "
    "ORDER BY event_id",
    "sessions": "SELECT * EXCEPT (version, is_deleted) FROM sessions FINAL ORDER BY session_id",
    "friction": "SELECT DISTINCT signal_id, type, session_id FROM friction ORDER BY signal_id",
    "links": "SELECT DISTINCT device_id, customer_id, linked_at FROM identity_links "
    "ORDER BY device_id, linked_at",
    "merges": "SELECT DISTINCT session_id, merged_into FROM session_merges ORDER BY session_id",
    "minutes": "SELECT minute, channel, metric, key, count, amount FROM events_per_minute "
    "WHERE count != 0 OR amount != 0 ORDER BY minute, channel, metric, key",
    # a rejection's id names its file and line, which differ when the input is cut in files
    "rejected": "SELECT reason, raw FROM (SELECT DISTINCT rejection_id, reason, raw "
    "FROM rejected_events) ORDER BY reason, raw",
}


FAULTS = Path(__file__).parent / "faults"


def parcours(chdb: Path, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PARCOURS_CLICKHOUSE_DSN": f"chdb://{chdb}",
        "PARCOURS_DATA_DIR": str(chdb),
        **extra_env,
    }
    code = "from streams.cli.main import app; app()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run(chdb: Path, *args: str) -> str:
    proc = parcours(chdb, *args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


_DUMP = """
import sys, orjson
from streams.clickhouse.client import connect
from streams.settings import load_settings
client = connect(load_settings().resolved_clickhouse_dsn())
queries = orjson.loads(sys.argv[1])
out = {name: [list(row) for row in client.query(q).result_rows] for name, q in queries.items()}
sys.stdout.buffer.write(orjson.dumps(out, default=str))
"""


def dump(chdb: Path) -> dict[str, Any]:
    """Every table as the shipped queries read it (one process: one chDB start)."""
    env = {
        **os.environ,
        "PARCOURS_CLICKHOUSE_DSN": f"chdb://{chdb}",
        "PARCOURS_DATA_DIR": str(chdb),
    }
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, orjson.dumps(DUMPS).decode()],
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    tables: dict[str, Any] = orjson.loads(done.stdout)
    return tables


def summary(output: str) -> dict[str, int]:
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 2 and cells[1].replace(",", "").isdigit():
            found[cells[0]] = int(cells[1].replace(",", ""))
    return found


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "traffic.jsonl"
    write_ingest_file(SimulationConfig(customers=400, days=2, seed=23), path)
    return path


@pytest.fixture(scope="module")
def one_run(traffic: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chdb = tmp_path_factory.mktemp("one-run")
    run(chdb, "ingest", str(traffic))
    return dump(chdb)


def test_consecutive_files_read_as_one_file(
    traffic: Path, one_run: dict[str, Any], tmp_path: Path
) -> None:
    """Hourly or daily exports loaded one after another: sessions and checkout attempts cut by
    a file's end carry on in the next file."""
    lines = traffic.read_bytes().splitlines(keepends=True)
    pieces = []
    for i, (start, end) in enumerate(
        [
            (0, len(lines) // 3),
            (len(lines) // 3, 2 * len(lines) // 3),
            (2 * len(lines) // 3, len(lines)),
        ]
    ):
        piece = tmp_path / f"part-{i}.jsonl"
        piece.write_bytes(b"".join(lines[start:end]))
        pieces.append(piece)
    chdb = tmp_path / "chdb"
    outputs = [run(chdb, "ingest", str(piece)) for piece in pieces]
    assert dump(chdb) == one_run
    assert all(summary(out)["sessions still open"] >= 0 for out in outputs)
    # loading a file again changes nothing: its lines are skipped as already ingested
    again = summary(run(chdb, "ingest", str(pieces[0])))
    assert again["lines already ingested (skipped)"] == len(lines) // 3
    assert dump(chdb) == one_run


def test_a_run_killed_and_started_again_loses_nothing_and_counts_nothing_twice(
    traffic: Path, one_run: dict[str, Any], tmp_path: Path
) -> None:
    """SIGKILL after a save, with lines read and rows written since: the next run carries on
    from the save, skips what it covered, and processes the rest again (same row ids)."""
    chdb = tmp_path / "chdb"
    lines = sum(1 for _ in traffic.open("rb"))
    assert lines > 4096
    killed = parcours(
        chdb,
        "ingest",
        str(traffic),
        PYTHONPATH=os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")]),
        PARCOURS_TEST_KILL="2048:4096",
        PARCOURS_SINK_BATCH_ROWS="300",
    )
    killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL
    resumed = summary(run(chdb, "ingest", str(traffic)))
    assert resumed["lines already ingested (skipped)"] == 2048  # carried on from the save
    assert dump(chdb) == one_run
