"""`parcours config`: the journey settings in force and where each came from.

Also the one way the runners (`ingest`, `demo`, `worker`) get their `JourneyConfig`:
`journey_config_or_exit` reads streams/journey_settings.py and turns a bad setting into a
one-line error naming it, instead of a traceback.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from streams.cli.app import app
from streams.core.config import JourneyConfig
from streams.journey_settings import (
    CONFIG_PATH_ENV,
    ConfigError,
    EffectiveSettings,
    load_journey_settings,
)

err = Console(stderr=True)


def _effective_or_exit() -> EffectiveSettings:
    try:
        return load_journey_settings()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def journey_config_or_exit() -> JourneyConfig:
    """The runners' journey configuration (environment over `parcours.toml` over defaults)."""
    return _effective_or_exit().settings.journey_config()


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


@app.command("config")
def config_command(
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Print the journey settings in force, and where each came from (default / file / env)."""
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    effective = _effective_or_exit()
    values = effective.settings.model_dump()
    rows = [
        {
            "name": name,
            "value": value,
            "source": effective.sources[name],
            "env": effective.env_name(name),
        }
        for name, value in values.items()
    ]
    if fmt == "json":
        doc = {"file": str(effective.file) if effective.file else None, "settings": rows}
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    file = (
        str(effective.file)
        if effective.file
        else f"none (set {CONFIG_PATH_ENV} or ./parcours.toml)"
    )
    table = Table(title=f"Journey settings (file: {file})", title_justify="left")
    for column in ("setting", "value", "from", "environment variable"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], _shown(row["value"]), row["source"], row["env"])
    # a pipe or a file gets the whole table, not one cut to 80 columns
    (Console() if Console().is_terminal else Console(width=160)).print(table)
