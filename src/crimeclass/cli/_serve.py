"""The ``serve`` command: the scoring service on uvicorn, and ``serve keys add``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from crimeclass.cli._common import handles_errors

serve_app = typer.Typer(help="Serve a run's model over HTTP (the serve extra).",
                        invoke_without_command=True, no_args_is_help=False)
keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
serve_app.add_typer(keys_app, name="keys")

_SIZE = re.compile(r"\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10,
          "mib": 2**20, "gib": 2**30}


def parse_size(value: str) -> int:
    """``8MB``, ``512KiB`` or ``1000000`` as bytes."""
    match = _SIZE.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{value!r} is not a size; use e.g. 8MB, 512KiB or 1000000")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower() or None]


@serve_app.callback()
@handles_errors
def serve(
    ctx: typer.Context,
    run: Annotated[Path | None, typer.Option(help="The run folder whose model is served.",
                                             show_default=False)] = None,
    store: Annotated[Path | None, typer.Option(
        "--store", envvar="CRIMECLASS_STORE",
        help="The history store ($CRIMECLASS_STORE).", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    api_keys: Annotated[Path | None, typer.Option(
        envvar="CRIMECLASS_API_KEYS", help="The key file (made by 'serve keys add').",
        show_default=False)] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Serve without keys (keys are on by default).")] = False,
    model: Annotated[str | None, typer.Option(
        help="A model of the run; its best by default.")] = None,
    max_body: Annotated[str, typer.Option(
        help="Largest request body (counted on the stream).")] = "8MB",
    rate_limit: Annotated[int, typer.Option(
        min=1, help="Requests per second per key (per worker).")] = 2000,
    cors_origin: Annotated[list[str] | None, typer.Option(
        help="An origin allowed to call from a browser (repeat; none: CORS off).")] = None,
    verify_key: Annotated[Path | None, typer.Option(
        help="A public key (PEM): serve only runs signed with its private key.",
        show_default=False)] = None,
    scorers: Annotated[int, typer.Option(
        min=0, help="Threads that score the queued requests, and CSV uploads scored at "
                    "once, per worker (0: one scorer, an upload per core).")] = 0,
    follow: Annotated[float, typer.Option(
        min=0, help="Seconds between looks for incidents another process (sync) wrote to "
                    "the store; 0: never.")] = 30.0,
) -> None:
    """Serve a run's model over HTTP: POST /v1/score, the analyst page at /, docs at /docs."""
    if ctx.invoked_subcommand is not None:
        return
    if run is None or store is None:
        raise typer.BadParameter("give the run (--run) and the history store (--store)")
    from crimeclass.serve import ServeConfig
    from crimeclass.serve._run import run_server

    config = ServeConfig(run=run, store=store, model=model, api_keys=api_keys,
                         auth=not no_auth, max_body=parse_size(max_body),
                         rate_limit=rate_limit, cors_origins=tuple(cors_origin or ()),
                         verify_key=verify_key, follow_seconds=follow,
                         listen=f"http://{host}:{port}", score_threads=scorers)
    run_server(config, host=host, port=port, workers=workers)


@keys_app.command("add")
@handles_errors
def keys_add(
    name: Annotated[str, typer.Argument(help="A name for the key (who uses it).")],
    api_keys: Annotated[Path, typer.Option(
        envvar="CRIMECLASS_API_KEYS", help="The key file (created if missing).",
        show_default=False)],
    admin: Annotated[bool, typer.Option(
        "--admin", help="The key may post incidents and reload the model.")] = False,
) -> None:
    """Make a key; print it once (the file keeps only its hash)."""
    from crimeclass.serve import add_key

    key = add_key(api_keys, name, admin=admin)
    typer.echo(key)
    typer.echo(f"stored the hash of {'admin ' if admin else ''}key {name!r} in {api_keys}; "
               "the key is shown only now", err=True)
