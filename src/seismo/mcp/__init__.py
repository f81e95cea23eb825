"""seismo for AI agents: the MCP server (tools, resources, a prompt) over the same services
REST calls. `/mcp` on the server (streamable HTTP) and `seismo mcp` (stdio). docs/mcp.md.
"""

from seismo.mcp.backend import Backend
from seismo.mcp.local import EngineBackend
from seismo.mcp.remote import RestBackend
from seismo.mcp.server import build_server

__all__ = ["Backend", "EngineBackend", "RestBackend", "build_server"]
