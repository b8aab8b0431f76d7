"""Ingest of several files: each in its own transaction, each with its own outcome.

A file that cannot be read (a wrong header, binary data, no header, a cut-off
gzip) fails alone: nothing of it is stored, and the files after it are still
loaded. A Ctrl-C stops the command: nothing of the file being loaded is stored,
and the files after it are not reached. Every file's account says which
(:attr:`IngestAccount.status`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from crimeclass.data._account import IngestAccount
from crimeclass.data._errors import SourceError
from crimeclass.data._ingest import IngestOptions
from crimeclass.data._store import Store
from crimeclass.data.sources import FileSource, open_source

__all__ = ["ingest_files"]

#: ``progress(path, source)`` when a file is opened: its ``on_progress``, or None.
Progress = Callable[[Path, FileSource], Callable[[int, int], None] | None]


def ingest_files(store: Store, paths: Sequence[Path], options: IngestOptions | None = None,
                 *, progress: Progress | None = None) -> list[IngestAccount]:
    """Ingest each file in its own transaction, going on past a file that fails.

    Parameters
    ----------
    store : Store
        The store to load into.
    paths : sequence of pathlib.Path
        The files, in order (:func:`~crimeclass.data.expand_paths`).
    options : IngestOptions, optional
        As for :meth:`Store.ingest`.
    progress : callable, optional
        ``progress(path, source)`` as each file is opened; it returns the file's
        ``on_progress`` callback (or None).

    Returns
    -------
    list of IngestAccount
        One per file, in order. ``status`` is ``"committed"``; ``"failed"`` (nothing
        of the file stored; ``error`` says why); ``"interrupted"`` (Ctrl-C: nothing
        of the file stored); or ``"not reached"`` (after a Ctrl-C).
    """
    options = options or IngestOptions()
    accounts: list[IngestAccount] = []
    for i, path in enumerate(paths):
        try:
            source = open_source(path, block_bytes=options.block_bytes)
            step = progress(path, source) if progress else None
            accounts.append(store.ingest(source, options, on_progress=step))
        except SourceError as e:
            accounts.append(IngestAccount(str(path), status="failed", error=str(e)))
        except KeyboardInterrupt:
            accounts.append(IngestAccount(str(path), status="interrupted",
                                          error="interrupted, nothing stored"))
            accounts += [IngestAccount(str(p), status="not reached") for p in paths[i + 1:]]
            break
    return accounts
