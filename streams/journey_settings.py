"""The journey configuration: one settings object, read the same way by every runner.

Every threshold of the journey core (session gap and cap, grace, the late, dedup and revision
horizons, the retro window, engagement, the checkout timeout, every friction threshold and
which devices are shared) comes from here, by precedence:

1. the environment, `PARCOURS_JOURNEY_<NAME>` (e.g. `PARCOURS_JOURNEY_SESSION_GAP_S=900`);
2. the `[journey]` table of a TOML file: the path in `PARCOURS_CONFIG`, else `./parcours.toml`
   when it exists (a path named by `PARCOURS_CONFIG` must exist);
3. the defaults below (those of `streams.core.config.JourneyConfig`).

`parcours ingest`, `parcours demo` and `parcours worker` all call `load_journey_config`, so a
setting cannot change one runner and not another (tests/cli/test_journey_settings.py builds
the config each runner uses through its own command and compares). `parcours config` prints
the effective values and where each came from. Unknown names, in the file or the environment,
are errors: a typo must not silently leave a default in force.

The names carry their unit (`_s`, `_h`, `_days`) because users type them; `journey_config`
converts to the core's milliseconds. The core (`streams/core/config.py`) stays free of
settings machinery: it receives a plain frozen `JourneyConfig`.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.core.config import JourneyConfig
from streams.core.friction import (
    CheckoutAbandoned,
    CheckoutLoop,
    FrictionRules,
    PaymentFailure,
    QuickBack,
    RageClick,
    RepeatContact,
    SearchFrustration,
)
from streams.errors import ParcoursError

ENV_PREFIX = "PARCOURS_JOURNEY_"
CONFIG_PATH_ENV = "PARCOURS_CONFIG"
DEFAULT_CONFIG_FILE = Path("parcours.toml")
TABLE = "journey"


class ConfigError(ParcoursError, ValueError):
    """The configuration cannot be used; the message names the setting and where it was set."""


class JourneySettings(BaseModel):
    """The journey settings users set; meanings in streams/core/config.py and friction.py."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # sessions and time
    session_gap_s: float = Field(default=30 * 60, gt=0)
    session_cap_s: float = Field(default=24 * 3600, gt=0)
    grace_s: float = Field(default=120, ge=0)
    retro_window_days: float = Field(default=30, ge=0)
    late_horizon_h: float = Field(default=24, ge=0)
    dedup_horizon_h: float = Field(default=24, ge=0)
    revision_horizon_h: float = Field(default=48, ge=0)
    # engagement (a session that is not engaged is a bounce)
    engaged_min_duration_s: float = Field(default=10, ge=0)
    engaged_min_views: int = Field(default=2, ge=1)
    # friction thresholds
    quick_back_s: float = Field(default=5, ge=0)
    checkout_timeout_s: float = Field(default=60 * 60, gt=0)
    checkout_loop_min_backtracks: int = Field(default=2, ge=1)
    payment_failure_min_errors: int = Field(default=2, ge=1)
    search_frustration_min_zero_results: int = Field(default=3, ge=1)
    rage_click_min_clicks: int = Field(default=3, ge=2)
    rage_click_window_s: float = Field(default=1, ge=0)
    repeat_contact_min_distinct: int = Field(default=2, ge=2)
    repeat_contact_window_h: float = Field(default=24, ge=0)
    # shared devices (tills, kiosks): streams/core/identity.py
    shared_device_types: tuple[str, ...] = ("kiosk", "pos")
    shared_device_patterns: tuple[str, ...] = ()

    def journey_config(self) -> JourneyConfig:
        """The core's configuration (milliseconds, rule objects)."""

        def ms(seconds: float) -> int:
            return round(seconds * 1000)

        rules = FrictionRules(
            quick_back=QuickBack(max_ms=ms(self.quick_back_s)),
            checkout_abandoned=CheckoutAbandoned(timeout_ms=ms(self.checkout_timeout_s)),
            checkout_loop=CheckoutLoop(min_backtracks=self.checkout_loop_min_backtracks),
            payment_failure=PaymentFailure(min_errors=self.payment_failure_min_errors),
            search_frustration=SearchFrustration(
                min_zero_results=self.search_frustration_min_zero_results
            ),
            rage_click=RageClick(
                min_clicks=self.rage_click_min_clicks, window_ms=ms(self.rage_click_window_s)
            ),
            repeat_contact=RepeatContact(
                min_distinct=self.repeat_contact_min_distinct,
                window_ms=ms(self.repeat_contact_window_h * 3600),
            ),
        )
        return JourneyConfig(
            session_gap_ms=ms(self.session_gap_s),
            session_cap_ms=ms(self.session_cap_s),
            grace_ms=ms(self.grace_s),
            retro_window_ms=ms(self.retro_window_days * 86_400),
            late_horizon_ms=ms(self.late_horizon_h * 3600),
            dedup_horizon_ms=ms(self.dedup_horizon_h * 3600),
            revision_horizon_ms=ms(self.revision_horizon_h * 3600),
            engaged_min_duration_ms=ms(self.engaged_min_duration_s),
            engaged_min_views=self.engaged_min_views,
            shared_device_types=frozenset(self.shared_device_types),
            shared_device_patterns=self.shared_device_patterns,
            rules=rules,
        )


#: Where a value came from, as `parcours config` prints it.
DEFAULT, FILE, ENV = "default", "file", "env"


@dataclass(frozen=True)
class EffectiveSettings:
    """The settings in force, where each came from, and the file read (if any)."""

    settings: JourneySettings
    sources: dict[str, str]
    file: Path | None

    def env_name(self, name: str) -> str:
        return f"{ENV_PREFIX}{name.upper()}"


def _is_list(name: str) -> bool:
    return JourneySettings.model_fields[name].annotation == tuple[str, ...]


def _env_value(name: str, text: str) -> Any:
    """An environment string as the field's input: lists as a JSON array or comma-separated."""
    if not _is_list(name):
        return text
    if text.strip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: not a JSON array ({exc})") from None
    return [part.strip() for part in text.split(",") if part.strip()]


def config_file(environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The TOML file to read: `PARCOURS_CONFIG` (must exist), else `./parcours.toml` if any."""
    named = environ.get(CONFIG_PATH_ENV)
    if named:
        path = Path(named)
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise ConfigError(f"{CONFIG_PATH_ENV}={named}: no such file")
        return path
    default = cwd / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def _file_values(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as TOML ({exc})") from None
    unknown = sorted(set(doc) - {TABLE})
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {unknown}; settings go in [{TABLE}]")
    table = doc.get(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `{TABLE}` must be a table ([{TABLE}])")
    bad = sorted(set(table) - set(JourneySettings.model_fields))
    if bad:
        raise ConfigError(
            f"{path}: unknown journey setting {bad}; known: {sorted(JourneySettings.model_fields)}"
        )
    return dict(table)


def load_journey_settings(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> EffectiveSettings:
    """Defaults, overridden by the file, overridden by the environment; validated once."""
    environ = os.environ if environ is None else environ
    path = config_file(environ, cwd or Path.cwd())
    values: dict[str, Any] = {}
    sources = dict.fromkeys(JourneySettings.model_fields, DEFAULT)
    if path is not None:
        for name, value in _file_values(path).items():
            values[name], sources[name] = value, FILE
    for key, text in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in JourneySettings.model_fields:
            known = ", ".join(f"{ENV_PREFIX}{n.upper()}" for n in JourneySettings.model_fields)
            raise ConfigError(f"{key}: unknown journey setting; known: {known}")
        values[name], sources[name] = _env_value(name, text), ENV
    try:
        settings = JourneySettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            where = f"{ENV_PREFIX}{name.upper()}" if sources.get(name) == ENV else str(path)
            problems.append(f"{name} = {error.get('input')!r} (from {where}): {error['msg']}")
        raise ConfigError("; ".join(problems)) from None
    try:
        settings.journey_config()  # the core's own checks
    except ValueError as exc:
        raise ConfigError(f"invalid journey configuration: {exc}") from None
    return EffectiveSettings(settings, sources, path)


def load_journey_config(environ: Mapping[str, str] | None = None) -> JourneyConfig:
    """The `JourneyConfig` every runner uses (environment and `parcours.toml`)."""
    return load_journey_settings(environ).settings.journey_config()
