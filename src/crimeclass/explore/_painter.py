"""Drawing the figures while the engine is still computing.

A report has a dozen figures; drawn one after the other once the catalog is done,
they take about as long as the catalog itself on DuckDB. A :class:`Painter` takes
each table as soon as the engine returns it and draws it on a thread of its own:
the engines run their queries without holding the GIL (DuckDB in process, Spark
in the JVM), so the figures are drawn while the next queries run. Only that one
thread uses matplotlib (through ``Figure``, never ``pyplot``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from crimeclass.explore._plots import PLOTS

__all__ = ["DPI", "Painter", "draw"]

#: Resolution of the report's figures (a 9-inch figure is 990 pixels wide).
DPI = 110


def draw(name: str, table: pa.Table) -> bytes | None:
    """The PNG of statistic ``name``'s figure, or None when there is nothing to draw."""
    from crimeclass.explore._plots import figure_png

    fig = PLOTS[name](table)
    return None if fig is None else figure_png(fig, dpi=DPI)


class Painter:
    """Draws the figures of the tables it is given, on one background thread.

    Examples
    --------
    >>> painter = Painter()
    >>> painter.submit("no_such_statistic", pa.table({"x": [1]}))
    >>> painter.results()
    {}
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crimeclass-plots")
        self._jobs: dict[str, Future[bytes | None]] = {}

    def submit(self, name: str, table: pa.Table) -> None:
        """Start drawing ``table`` if statistic ``name`` has a figure."""
        if name in PLOTS:
            self._jobs[name] = self._pool.submit(draw, name, table)

    def results(self, on_progress: Callable[[str, int, int], None] | None = None
                ) -> dict[str, bytes]:
        """Wait for every figure: PNG bytes by statistic name (None figures left out)."""
        images: dict[str, bytes] = {}
        try:
            for i, (name, job) in enumerate(self._jobs.items()):
                if on_progress:
                    on_progress(name, i, len(self._jobs))
                png = job.result()
                if png is not None:
                    images[name] = png
            if on_progress:
                on_progress("done", len(self._jobs), len(self._jobs))
        finally:
            self.close()
        return images

    def close(self) -> None:
        """Stop the thread (figures not yet started are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
