"""`parcours schema export DIR`: JSON Schema files for producers in other languages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.cli.app import app

schema_app = typer.Typer(help="The event contract.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="Where to write the files.")],
) -> None:
    """Write the contract's JSON Schema files (envelope, one per canonical event type, index)."""
    from schemas.export import export_json_schemas

    written = export_json_schemas(directory)
    Console().print(f"wrote {len(written)} JSON Schema files to {directory}")
