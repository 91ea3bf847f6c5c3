"""The root typer application; command modules register themselves on it."""

import typer

app = typer.Typer(
    name="parcours",
    help="Parcours: real-time omnichannel customer-journey analytics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
