"""The `seismo` command: serve, push, query."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from seismo.config import load_settings
from seismo.errors import SeismoError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="seismo: real-time monitoring and analytics server.")


@app.callback()
def _root() -> None:
    """seismo: real-time monitoring and analytics server."""


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8765]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="store directory [./seismo-data]")] = None,
    config: Annotated[Path | None, typer.Option(help="seismo.yaml")] = None,
    demo: Annotated[bool | None, typer.Option("--demo", help="add sample workloads")] = None,
    no_collector: Annotated[bool, typer.Option("--no-collector", help="no host metrics")] = False,
    retention: Annotated[str | None, typer.Option(help="keep samples this long, e.g. 30d")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
) -> None:
    """Run the seismo server."""
    import uvicorn

    from seismo.api.app import create_app
    from seismo.engine import Engine
    from seismo.workers import attach_workers

    flags = {"host": host, "port": port, "data_dir": data_dir, "demo": demo,
             "retention": retention, "log_level": log_level,
             "collector": False if no_collector else None}
    try:
        settings = load_settings(config, flags)
    except SeismoError as exc:
        fail(exc.message, 2)
        return
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        engine = Engine(settings)
    except (SeismoError, OSError) as exc:
        fail(f"cannot open the store in {settings.data_dir}: {exc}")
        return
    attach_workers(engine)
    typer.echo(f"seismo serving on http://{settings.host}:{settings.port} "
               f"(data in {settings.data_dir})", err=True)
    uvicorn.run(create_app(engine), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
