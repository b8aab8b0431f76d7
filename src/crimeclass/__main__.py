"""``python -m crimeclass``: the command line."""

from crimeclass.cli import app

app(prog_name="crimeclass")
