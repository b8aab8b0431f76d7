"""Running the service on uvicorn: one process, or several workers of the same settings."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from crimeclass.serve._app import ServeConfig, create_app
from crimeclass.serve._scoring import check_run

__all__ = ["app_from_env", "run_server"]

_ENV = "CRIMECLASS_SERVE_CONFIG"


def app_from_env() -> Any:
    """The app of the settings in ``$CRIMECLASS_SERVE_CONFIG`` (uvicorn's factory)."""
    return create_app(ServeConfig.from_json(os.environ[_ENV]))


def log_to_stderr() -> None:
    """The request log: one JSON line per request on stderr."""
    logger = logging.getLogger("crimeclass.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run_server(config: ServeConfig, *, host: str, port: int, workers: int = 1) -> None:
    """Serve until stopped (Ctrl-C); settings checked before the server starts."""
    import uvicorn

    create_app(config)  # the key file and settings, checked once here
    check_run(config.run, model=config.model, verify_key=config.verify_key)
    os.environ[_ENV] = config.to_json()
    log_to_stderr()
    uvicorn.run("crimeclass.serve._run:app_from_env", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level="warning",
                timeout_graceful_shutdown=10)
