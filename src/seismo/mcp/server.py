"""The seismo MCP server: one `MCPServer` with every tool, resource and prompt, over a
backend (the engine in this process, or a running server's REST API)."""

from __future__ import annotations

import logging

from mcp.server.mcpserver import MCPServer

from seismo import __version__
from seismo.auth import Role
from seismo.mcp import alerts, energy, models, prompts, series, sessions, status
from seismo.mcp.backend import Backend
from seismo.mcp.toolkit import Toolkit

INSTRUCTIONS = (
    "seismo is a real-time monitoring server: metrics (series), events, anomalies, alerts, "
    "SLOs, ML models, sessions and energy. Start with dashboard_snapshot or get_status; "
    "find series with list_metrics and list_series; read values with get_metrics and "
    'query_range (selectors are Prometheus series selectors, e.g. cpu_usage{host="a"}); '
    "for an alert call explain_alert, or use the investigate_alert prompt; for running "
    "jobs list_sessions and get_session. Times are epoch ms, 'now' or 'now-1h'. Outputs "
    "are bounded: a `truncated` flag says when rows were left out.")


def build_server(backend: Backend) -> tuple[MCPServer, dict[str, Role]]:
    """The server and the role each tool needs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer("seismo", version=__version__, instructions=INSTRUCTIONS)
    root.handlers[:], root.level = handlers, level  # the SDK configures logging; we do not
    kit = Toolkit(server, backend)
    for module in (status, series, alerts, models, sessions, energy, prompts):
        module.register(kit)
    return server, kit.roles
