"""The analyst page: one self-contained HTML file (no CDN, no build step)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["page_html"]


@cache
def page_html() -> str:
    """The page served at ``/``."""
    return files("crimeclass.serve").joinpath("static/page.html").read_text(encoding="utf-8")
