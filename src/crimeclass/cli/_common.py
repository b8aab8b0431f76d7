"""What every command shares: the ``--store`` and ``--json`` options, and how errors end.

A failure ends a command with one line ``error: ...`` on stderr and exit status 1
(2 for a usage error: a bad option value, an unknown command), or with ``--json``
one JSON object on stdout: ``{"error": message, "type": class name, **attrs}``
where ``attrs`` is the context of a :class:`~crimeclass.data.CrimeclassError`.
An unexpected exception (a bug) says so in that line; ``CRIMECLASS_DEBUG=1``
shows its traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.text import Text
from typer.exceptions import TyperException

from crimeclass.cli._render import err_console

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", envvar="CRIMECLASS_STORE", show_default="crimeclass.duckdb",
                 help="The DuckDB store file ($CRIMECLASS_STORE)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object, for scripts.")]
SeedOpt = Annotated[int, typer.Option(min=0, help="The same seed gives the same numbers.")]

F = TypeVar("F", bound=Callable[..., Any])

_MEMORY = re.compile(r"\s*(\d+(\.\d+)?)\s*(%|b|bytes?|[kmgt]i?b|(kilo|mega|giga|tera)bytes?)\s*",
                     re.IGNORECASE)


def check_memory_limit(value: str) -> str:
    """Check a ``--memory-limit`` as DuckDB reads it (1GB, 512MB, 2GiB, 80%), before any work."""
    match = _MEMORY.fullmatch(value)
    if match is None or float(match.group(1)) == 0:
        raise typer.BadParameter(f"{value!r} is not a memory size; use a number and a unit, "
                                 "e.g. 1GB, 512MB, 2GiB or 80%")
    return value


def store_path(store: Path | None) -> Path:
    """``--store``, or the default store."""
    from crimeclass.data import default_store_path

    return store or default_store_path()


def print_json(obj: Any) -> None:
    """One JSON object on stdout (values JSON lacks, such as dates, as strings)."""
    print(json.dumps(obj, default=str))


def error_line(message: str, hint: str = "") -> None:
    """``error: message`` on stderr, as typed (no Rich markup read from the message)."""
    line = Text("error:", style="bold red")
    line.append(f" {message}{hint}")
    err_console.print(line, highlight=False, soft_wrap=True)


def fail(error: BaseException, as_json: bool, *, message: str | None = None,
         code: int = 1) -> NoReturn:
    """End the command: one JSON object (``--json``) or one ``error:`` line; exit ``code``."""
    from crimeclass.data import CrimeclassError

    message = message or str(error) or type(error).__name__
    if as_json:
        attrs = error.attrs() if isinstance(error, CrimeclassError) else {}
        print_json({"error": message, "type": type(error).__name__, **attrs})
    else:
        error_line(message)
    raise typer.Exit(code)


def expected(error: BaseException) -> bool:
    """Whether ``error`` is a failure a user can act on (not a bug of crimeclass)."""
    from crimeclass.data import CrimeclassError

    return isinstance(error, CrimeclassError | ValueError | OSError | ImportError)


def handles_errors(fn: F) -> F:
    """End a command's failures in one line (or JSON object) and exit status 1, never a
    traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (TyperException, typer.Exit, typer.Abort, KeyboardInterrupt):
            raise  # usage errors and exits: the command group ends them
        except Exception as e:
            as_json = bool(kwargs.get("as_json"))
            if expected(e):
                fail(e, as_json)
            if os.environ.get("CRIMECLASS_DEBUG"):
                raise
            fail(e, as_json, message=f"unexpected {type(e).__name__}: {e} (a bug in "
                 "crimeclass; run again with CRIMECLASS_DEBUG=1 to see where)")

    return wrapper  # type: ignore[return-value]
