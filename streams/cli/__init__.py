"""The `parcours` command line (typer + rich)."""
