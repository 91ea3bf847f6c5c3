"""`parcours forget` and `parcours privacy report` as a data-protection officer uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from tests.journeys.privacy_stories import ANNA, ANNA_AND_BEN, ANNA_REJECTED_LINES

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_ingest_report_forget_report_and_ingest_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a retention longer than the story's age for as long as this code lives
    monkeypatch.setenv("PARCOURS_RETENTION_PERSONAL_DAYS", "20000")
    data = tmp_path / "story.jsonl"
    data.write_bytes(ANNA_AND_BEN.ingest_lines() + b"\n".join(ANNA_REJECTED_LINES) + b"\n")
    db = ["--database", "privacy_cli"]
    result = runner.invoke(app, ["ingest", str(data), "--final", *db])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["privacy", "report", *db])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "customers (events.customer_id) │ 2" in text
    assert "events.properties │ email │ 1" in text  # the email she typed as a search term
    assert "events.properties │ phone │ 1" in text  # her phone in the gift note
    assert "erasures done │ 0" in text and "retention events │ 20000 days" in text

    result = runner.invoke(app, ["forget", "--customer", ANNA, *db])
    assert result.exit_code == 0, result.output
    assert ANNA not in result.output  # the receipt names her by a hash prefix only
    text = " ".join(result.output.split())
    assert "events │ 6 rows" in text and "identity_links │ 2 rows" in text

    other = tmp_path / "again.jsonl"  # the same events as another file: a replay
    other.write_bytes(b"\n" + data.read_bytes())
    result = runner.invoke(app, ["ingest", str(other), "--final", *db])
    assert result.exit_code == 0, result.output
    assert "dropped: erased subjects (suppression list) │ 7" in " ".join(result.output.split())

    result = runner.invoke(app, ["privacy", "report", *db])
    text = " ".join(result.output.split())
    assert "customers (events.customer_id) │ 1" in text
    assert "erasures done │ 1" in text and "subjects on the suppression list │ 3" in text


def test_forget_needs_one_subject() -> None:
    result = runner.invoke(app, ["forget"])
    assert result.exit_code != 0
    assert "exactly one of --customer or --device" in " ".join(result.output.split())


def test_pseudonymising_without_a_key_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "story.jsonl"
    data.write_bytes(ANNA_AND_BEN.ingest_lines())
    monkeypatch.setenv("PARCOURS_PRIVACY_PSEUDONYMISE", "true")
    monkeypatch.delenv("PARCOURS_PRIVACY_KEY", raising=False)
    result = runner.invoke(app, ["ingest", str(data), "--database", "privacy_nokey"])
    assert result.exit_code == 1
    assert "needs a secret PARCOURS_PRIVACY_KEY" in " ".join(result.output.split())
    assert "Traceback" not in result.output
