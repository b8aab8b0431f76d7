"""The ``crimeclass`` command line: thin wrappers over the stages' Python API.

Every command takes ``--store`` (or ``$CRIMECLASS_STORE``); commands with
``--json`` print one JSON object for scripts. Errors print one clear line and
exit non-zero (with ``--json``, as ``{"error": ..., "type": ...}``).

One module per group of commands: :mod:`._data` (ingest, info, quarantine,
export, scaleset), :mod:`._sources` (ingest portal, sync, ingest bigquery),
:mod:`._explore`, :mod:`._models` (train, predict, evaluate); the tables and
progress bars are in :mod:`._render`, the shared options and the error handling
in :mod:`._common`. No module imports a stage at import time, so that
``crimeclass --help`` stays fast.
"""

from crimeclass.cli import _data, _explore, _models, _serve, _sources
from crimeclass.cli._app import app

__all__ = ["app"]

# the order of the commands in --help
app.command()(_data.ingest)
app.command()(_data.info)
app.command()(_data.quarantine)
app.command()(_data.export)
app.command()(_data.scaleset)
app.command("ingest-portal", hidden=True)(_sources.ingest_portal_cmd)
app.command()(_sources.sync)
app.command("ingest-bigquery", hidden=True)(_sources.ingest_bigquery_cmd)
app.command()(_explore.explore)
app.command()(_models.train)
app.command()(_models.predict)
app.command()(_models.evaluate)
app.command()(_models.sign)
app.add_typer(_serve.serve_app, name="serve")
