"""``python -m crimeclass``: the command line."""

from crimeclass.cli import app

if __name__ == "__main__":
    app(prog_name="crimeclass")
