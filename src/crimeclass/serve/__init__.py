"""The scoring service: a run's model over HTTP, with the batch path's numbers.

``crimeclass serve`` runs :func:`create_app` on uvicorn (the ``serve`` extra);
docs/serve.md describes the routes, keys, limits and how the history stays current.
"""

from crimeclass.serve._app import ServeConfig, create_app
from crimeclass.serve._errors import ServeError
from crimeclass.serve._incidents import IGNORED_FIELDS
from crimeclass.serve._keys import KeyFile, add_key

__all__ = ["IGNORED_FIELDS", "KeyFile", "ServeConfig", "ServeError", "add_key", "create_app"]
