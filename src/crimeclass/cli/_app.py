"""The Typer application: its group (routing, usage errors) and the ``--version`` option."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from crimeclass import __version__
from crimeclass.cli._common import error_line, print_json
from crimeclass.cli._render import console


class CrimeclassGroup(TyperGroup):
    """The command group: routes ``ingest portal`` and ``ingest bigquery`` to their
    commands, and ends usage errors in one ``error:`` line (exit status 2).

    ``crimeclass ingest portal ...`` and ``crimeclass ingest bigquery ...`` are the
    hidden commands ingest-portal and ingest-bigquery, so that ``crimeclass ingest
    FILE...`` stays as it is.
    """

    live = {"portal": "ingest-portal", "bigquery": "ingest-bigquery"}

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if len(args) >= 2 and args[0] == "ingest" and args[1] in self.live:
            return f"ingest {args[1]}", self.get_command(ctx, self.live[args[1]]), args[2:]
        return super().resolve_command(ctx, args)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        except TyperException as e:  # click's exceptions: usage errors
            if type(e).__name__ != "NoArgsIsHelpError":  # its help is printed already
                usage_error(e, as_json="--json" in argv)
            sys.exit(getattr(e, "exit_code", 2))
        except typer.Abort:
            error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_error(e: Exception, *, as_json: bool) -> None:
    """A usage error (bad option value, unknown command) in the user's words, one line."""
    ctx: typer.Context | None = getattr(e, "ctx", None)
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    if as_json:
        print_json({"error": message, "type": type(e).__name__})
        return
    hint = ""
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        hint = f" (see '{ctx.command_path} {ctx.help_option_names[0]}')"
    error_line(message, hint)


app = typer.Typer(
    name="crimeclass",
    cls=CrimeclassGroup,
    help="Chicago crime records into trustworthy statistics and index-offense classifiers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"crimeclass {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Chicago crime records into trustworthy statistics and index-offense classifiers."""
