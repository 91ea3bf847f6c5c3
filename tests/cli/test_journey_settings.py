"""One journey configuration, read identically by `ingest`, `demo` and `worker`.

Each runner is run through its own command (typer), up to the point where it hands its
`JourneyConfig` to the pipeline or the Faust app; storage and Kafka are replaced by stubs there,
so nothing runs. Every setting is set to a value other than its default, from the environment
and then from `parcours.toml`: a setting some runner ignores, or one that reaches no field of
`JourneyConfig`, fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.core.config import JourneyConfig
from streams.journey_settings import (
    CONFIG_PATH_ENV,
    ENV_PREFIX,
    ConfigError,
    JourneySettings,
    load_journey_settings,
)

pytestmark = pytest.mark.unit
runner = CliRunner()

#: JourneyConfig fields that are memory bounds of the core's state, not user settings.
INTERNAL = {"max_links_per_device", "recent_sessions_kept", "aggregate_retention_ms", "rules"}


def changed_value(name: str) -> Any:
    """A valid value other than the default, for every setting."""
    default = JourneySettings.model_fields[name].default
    if name == "shared_device_types":
        return ("pos",)
    if name == "shared_device_patterns":
        return ("till-*", "kiosk-?")
    if isinstance(default, int) and not isinstance(default, bool):
        return default + 1
    return default * 2 + 1


CHANGED = {name: changed_value(name) for name in JourneySettings.model_fields}


def env_text(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def toml_text(values: dict[str, Any]) -> str:
    def literal(value: Any) -> str:
        if isinstance(value, tuple):
            return "[" + ", ".join(f'"{v}"' for v in value) + "]"
        return repr(value)

    return "[journey]\n" + "".join(f"{k} = {literal(v)}\n" for k, v in values.items())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No journey setting from the developer's shell; a working directory of our own."""
    import os

    for key in list(os.environ):
        if key.startswith(ENV_PREFIX) or key == CONFIG_PATH_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARCOURS_DATA_DIR", str(tmp_path / "data"))
    yield monkeypatch


class Captured(Exception):
    def __init__(self, config: JourneyConfig) -> None:
        self.config = config


def capture(*args: Any, **kwargs: Any) -> None:
    config = kwargs.get("config", args[1] if len(args) > 1 else None)
    raise Captured(config if config is not None else JourneyConfig())


def runner_configs(mp: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, JourneyConfig]:
    """The JourneyConfig each runner builds, through its own command."""
    import streams.cli.demo_cmd as demo_cmd
    import streams.cli.stream_cmds as stream_cmds
    import streams.embedded.wiring as wiring
    import streams.worker.app as worker_app

    mp.setattr(wiring, "connect", lambda *a, **k: None)
    mp.setattr(wiring, "apply_migrations", lambda *a, **k: None)
    mp.setattr(wiring, "EmbeddedRunner", capture)  # EmbeddedRunner(sink, config)
    mp.setattr(wiring, "privacy_filter", lambda *a, **k: None)  # reads the database
    mp.setattr(demo_cmd, "privacy_filter", lambda *a, **k: None)
    mp.setattr(demo_cmd, "connect", lambda *a, **k: None)
    mp.setattr(demo_cmd, "apply_migrations", lambda *a, **k: None)
    mp.setattr(stream_cmds, "_ensure_topics", lambda *a, **k: 4)
    mp.setattr(worker_app, "create_app", lambda s, st, config, **k: capture(None, config))
    mp.setenv("PARCOURS_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    events = tmp_path / "events.jsonl"
    events.write_text("")
    found = {}
    for name, argv in {
        "ingest": ["ingest", str(events)],
        "demo": ["demo", "--customers", "10", "--days", "1"],
        "worker": ["worker"],
    }.items():
        result = runner.invoke(app, argv)
        assert isinstance(result.exception, Captured), (name, result.output, result.exception)
        found[name] = result.exception.config
    return found


def rule_fields(config: JourneyConfig) -> dict[str, Any]:
    return {
        f"{rule.name}.{f.name}": getattr(getattr(config.rules, rule.name), f.name)
        for rule in dataclasses.fields(config.rules)
        for f in dataclasses.fields(getattr(config.rules, rule.name))
    }


def test_every_setting_reaches_the_core() -> None:
    default = JourneySettings().journey_config()
    assert default == JourneyConfig()  # the settings' defaults are the core's
    for name, value in CHANGED.items():
        assert JourneySettings(**{name: value}).journey_config() != default, name
    changed = JourneySettings(**CHANGED).journey_config()
    for f in dataclasses.fields(JourneyConfig):
        if f.name not in INTERNAL:
            assert getattr(changed, f.name) != getattr(default, f.name), f.name
    default_rules, changed_rules = rule_fields(default), rule_fields(changed)
    for field_name, value in default_rules.items():  # every friction threshold is a setting
        assert changed_rules[field_name] != value, field_name


@pytest.mark.parametrize("where", ["env", "file"])
def test_every_runner_reads_every_setting(
    where: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if where == "env":
        for name, value in CHANGED.items():
            clean_env.setenv(f"{ENV_PREFIX}{name.upper()}", env_text(value))
    else:
        (tmp_path / "parcours.toml").write_text(toml_text(CHANGED))
    expected = JourneySettings(**CHANGED).journey_config()
    configs = runner_configs(clean_env, tmp_path)
    assert configs == {"ingest": expected, "demo": expected, "worker": expected}


def test_environment_over_file_over_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "parcours.toml").write_text(
        '[journey]\nsession_gap_s = 900\ngrace_s = 60\nshared_device_patterns = ["till-*"]\n'
    )
    clean_env.setenv(f"{ENV_PREFIX}GRACE_S", "300")
    effective = load_journey_settings()
    config = effective.settings.journey_config()
    assert (config.session_gap_ms, config.grace_ms, config.session_cap_ms) == (
        900_000,
        300_000,
        JourneyConfig().session_cap_ms,
    )
    assert config.shared_device_patterns == ("till-*",)
    assert effective.sources["session_gap_s"] == "file"
    assert effective.sources["grace_s"] == "env"
    assert effective.sources["session_cap_s"] == "default"
    result = runner.invoke(app, ["config", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert doc["file"] == str(tmp_path / "parcours.toml")
    rows = {row["name"]: row for row in doc["settings"]}
    assert set(rows) == set(JourneySettings.model_fields)
    assert rows["session_gap_s"] == {
        "name": "session_gap_s",
        "value": 900,
        "source": "file",
        "env": "PARCOURS_JOURNEY_SESSION_GAP_S",
    }
    assert (rows["grace_s"]["value"], rows["grace_s"]["source"]) == (300, "env")
    assert (rows["revision_horizon_h"]["value"], rows["revision_horizon_h"]["source"]) == (
        48,
        "default",
    )
    table = runner.invoke(app, ["config"])
    assert table.exit_code == 0
    line = next(ln for ln in table.output.splitlines() if "grace_s" in ln)
    assert "300" in line and "env" in line and "PARCOURS_JOURNEY_GRACE_S" in line


def test_parcours_config_names_another_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "parcours.toml").write_text("[journey]\nsession_gap_s = 900\n")
    other = tmp_path / "other.toml"
    other.write_text("[journey]\ncheckout_timeout_s = 1800\n")
    clean_env.setenv(CONFIG_PATH_ENV, str(other))
    effective = load_journey_settings()
    assert effective.file == other
    assert effective.settings.session_gap_s == 30 * 60  # ./parcours.toml is not read then
    assert effective.settings.journey_config().rules.checkout_abandoned.timeout_ms == 1_800_000


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"PARCOURS_JOURNEY_GRAC_S": "3"}, None, "PARCOURS_JOURNEY_GRAC_S: unknown"),
        ({"PARCOURS_JOURNEY_SESSION_GAP_S": "0"}, None, "session_gap_s = '0'"),
        ({"PARCOURS_JOURNEY_RAGE_CLICK_MIN_CLICKS": "many"}, None, "rage_click_min_clicks"),
        ({CONFIG_PATH_ENV: "missing.toml"}, None, "missing.toml: no such file"),
        ({}, "[journey]\nsesion_gap_s = 900\n", "unknown journey setting ['sesion_gap_s']"),
        ({}, "session_gap_s = 900\n", "settings go in [journey]"),
        ({}, "[journey\n", "cannot read it as TOML"),
    ],
)
def test_a_bad_setting_is_an_error_naming_it(
    env: dict[str, str],
    toml: str | None,
    message: str,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    if toml is not None:
        (tmp_path / "parcours.toml").write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_journey_settings()
    assert message in str(raised.value)
    result = runner.invoke(app, ["ingest", str(tmp_path / "parcours.toml")] if toml else ["config"])
    assert result.exit_code == 2
    assert "configuration error" in result.output


def test_shared_device_lists_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(f"{ENV_PREFIX}SHARED_DEVICE_PATTERNS", '["till-*", "kiosk,lobby"]')
    clean_env.setenv(f"{ENV_PREFIX}SHARED_DEVICE_TYPES", "pos, kiosk")
    config = load_journey_settings().settings.journey_config()
    assert config.shared_device_patterns == ("till-*", "kiosk,lobby")
    assert config.shared_device_types == frozenset({"pos", "kiosk"})
    clean_env.setenv(f"{ENV_PREFIX}SHARED_DEVICE_PATTERNS", "")
    assert load_journey_settings().settings.shared_device_patterns == ()
