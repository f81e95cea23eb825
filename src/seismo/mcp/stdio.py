"""`seismo mcp`: the MCP server on stdio, for Claude Desktop and other local MCP clients.

Either against a running server (`--url`, `--token`: the tools call its REST API, and the
token's role applies there) or with an engine of its own on a data dir (`--data-dir`: the
caller owns the data, so it runs as the anonymous admin). stdout carries the protocol
only; logs go to stderr.
"""

from __future__ import annotations

import anyio

from seismo.auth import ANONYMOUS
from seismo.config import Settings
from seismo.mcp.remote import RestBackend
from seismo.mcp.server import build_server


async def serve_remote(url: str, token: str | None) -> None:
    """Serve MCP on stdio; every tool calls the server at `url`."""
    backend = RestBackend(url, token)
    server, _ = build_server(backend)
    try:
        await server.run_stdio_async()
    finally:
        await backend.aclose()


async def serve_embedded(settings: Settings) -> None:
    """Serve MCP on stdio over an engine of its own on `settings.data_dir`."""
    from seismo.engine import Engine
    from seismo.mcp.local import EngineBackend
    from seismo.workers import attach_workers

    engine = Engine(settings)
    attach_workers(engine)
    server, _ = build_server(EngineBackend(engine, local=ANONYMOUS))
    engine.start()
    await engine.hub.start()
    try:
        await server.run_stdio_async()
    finally:
        await engine.hub.stop()
        await anyio.to_thread.run_sync(engine.stop)
