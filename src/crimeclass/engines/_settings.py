"""DuckDB's settings, made in one place: the connection, its limits, a scoped memory limit.

>>> with connect(settings=DuckDBSettings(threads=1, progress_bar=False)) as con:
...     with temporary_memory_limit(con, "300MB"):
...         inside = current_setting(con, "memory_limit")
...     inside, current_setting(con, "threads")
('286.1 MiB', 1)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb

from crimeclass.engines._errors import EngineError
from crimeclass.engines._sql import sql_literal

__all__ = ["DuckDBSettings", "apply_settings", "attach", "connect", "current_setting",
           "temporary_memory_limit"]


@dataclass(frozen=True)
class DuckDBSettings:
    """Settings of a DuckDB connection; None leaves DuckDB's own value.

    Parameters
    ----------
    memory_limit : str, optional
        E.g. ``"2GB"``: beyond it DuckDB spills to ``temp_directory``.
    threads : int, optional
        Worker threads (DuckDB's default: every core).
    temp_directory : str or pathlib.Path, optional
        Where DuckDB spills.
    progress_bar : bool, optional
        DuckDB's own progress bar on the terminal.
    """

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | Path | None = None
    progress_bar: bool | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and int(self.threads) < 1:
            raise EngineError("duckdb", f"threads must be at least 1, got {self.threads}",
                              setting="threads", value=self.threads)

    def statements(self) -> list[tuple[str, str]]:
        """``(setting, SET statement)`` for every setting given.

        >>> DuckDBSettings(memory_limit="1GB", progress_bar=False).statements()
        [('memory_limit', "SET memory_limit = '1GB'"), ('enable_progress_bar', 'SET enable_progress_bar = false')]
        """  # noqa: E501
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "threads":
                out.append(("threads", f"SET threads = {int(value)}"))
            elif f.name == "progress_bar":
                out.append(("enable_progress_bar",
                            f"SET enable_progress_bar = {str(bool(value)).lower()}"))
            else:
                out.append((f.name, f"SET {f.name} = {sql_literal(value)}"))
        return out


def apply_settings(con: duckdb.DuckDBPyConnection, settings: DuckDBSettings) -> None:
    """Make ``settings`` on ``con``.

    Raises
    ------
    EngineError
        If DuckDB refuses a value (``memory_limit="lots"``).
    """
    for name, statement in settings.statements():
        try:
            con.execute(statement)
        except duckdb.Error as e:
            raise EngineError("duckdb", f"DuckDB refuses {name} = "
                              f"{getattr(settings, name, None)!r}: {e}", setting=name,
                              value=getattr(settings, name, None)) from e


def current_setting(con: duckdb.DuckDBPyConnection, name: str) -> Any:
    """The value of the setting ``name`` on ``con``."""
    return con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]


@contextmanager
def temporary_memory_limit(con: duckdb.DuckDBPyConnection,
                           limit: str | None) -> Iterator[None]:
    """Set DuckDB's memory limit for the block; the previous limit is restored after.

    With ``limit`` None, nothing is read or set.
    """
    if not limit:
        yield
        return
    before = current_setting(con, "memory_limit")
    apply_settings(con, DuckDBSettings(memory_limit=limit))
    try:
        yield
    finally:
        # back to the default, or to the caller's own limit (DuckDB shows a limit cut
        # to a digit, so the default is restored by RESET rather than by its text)
        con.execute("RESET memory_limit")
        if current_setting(con, "memory_limit") != before:
            con.execute(f"SET memory_limit = {sql_literal(_shown_limit(before))}")


@contextmanager
def temporary_threads(con: duckdb.DuckDBPyConnection, threads: int) -> Iterator[None]:
    """Run the block on at most ``threads`` of DuckDB's threads; the setting is restored
    after."""
    before = int(current_setting(con, "threads"))
    con.execute(f"SET threads = {min(int(threads), before)}")
    try:
        yield
    finally:
        con.execute(f"SET threads = {before}")


def _shown_limit(shown: str) -> str:
    """A limit that DuckDB shows as ``shown``, as near as the text allows to the one shown.

    DuckDB shows a limit cut to its last digit (500MB as ``476.8 MiB``): that text, set
    again, is a hair below and shows one digit lower. The middle of the shown digit's
    interval reads back as the same text, within half a digit of the limit before.

    >>> _shown_limit("476.8 MiB")
    '476.85 MiB'
    """
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?\s*(\S+)", shown)
    if m is None:
        return shown
    decimals = len(m.group(2) or "")
    value = float(f"{m.group(1)}.{m.group(2) or 0}") + 0.5 * 10 ** -decimals
    return f"{value:.{decimals + 1}f} {m.group(3)}"


def connect(path: str | Path | None = None, *, read_only: bool = False,
            settings: DuckDBSettings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path`` (in memory when None), with ``settings`` made."""
    con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only)
    try:
        if settings is not None:
            apply_settings(con, settings)
    except BaseException:
        con.close()
        raise
    return con


def attach(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str, *,
           read_only: bool = True) -> None:
    """Attach the database file ``path`` to ``con`` as ``alias``."""
    mode = " (READ_ONLY)" if read_only else ""
    con.execute(f"ATTACH {sql_literal(path)} AS {alias}{mode}")
