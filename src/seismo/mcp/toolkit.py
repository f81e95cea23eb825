"""How a seismo MCP tool is registered: its role, its errors, whom it runs as.

`Toolkit.tool(role)` wraps a tool function so that it first checks the caller's role
(viewer reads; operator acts on alerts and writes data; admin changes rules), and so that
seismo's errors (`InvalidInput`, `NotFound`, `Forbidden`, ...) and malformed input become
MCP tool errors whose text names the field, never a crash.

Whom a call runs as: under streamable HTTP, the principal the access middleware put in the
request's `scope["state"]` (the SDK hands the tool that request); on stdio with an embedded
engine, the data dir's owner (the anonymous admin); on stdio against a server, the token's
role applies on the server, which refuses what the role may not do (403 → tool error).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from seismo.auth import Principal, Role
from seismo.errors import Forbidden, SeismoError
from seismo.mcp.backend import Backend

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def error_text(exc: SeismoError) -> str:
    """`<what went wrong> (field: <name>)`, as a model reads it."""
    text = exc.message
    if exc.field and f"field: {exc.field}" not in text:
        text += f" (field: {exc.field})"
    return text


class Toolkit:
    """The server being built, the backend its tools call, and the tools' names and roles."""

    def __init__(self, server: MCPServer, backend: Backend) -> None:
        self.server = server
        self.backend = backend
        self.roles: dict[str, Role] = {}

    def caller(self, ctx: Context | None) -> Principal | None:
        """Whom this call runs as (None: a remote server decides)."""
        request = None
        if ctx is not None:
            try:
                request = ctx.request_context.request
            except ValueError:  # called outside a request (tests calling the function)
                request = None
        return self.backend.caller(request)

    def check(self, ctx: Context | None, role: Role, tool: str) -> Principal | None:
        """The caller, if its role is at least `role`; Forbidden otherwise."""
        principal = self.caller(ctx)
        if principal is not None and not principal.may(role):
            raise Forbidden(f"token {principal.name!r} has role {principal.role}; the tool "
                            f"{tool} needs {role}", field="role")
        return principal

    def tool(self, role: Role, *, destructive: bool = False) -> Callable[[F], F]:
        """Register an async tool function that needs `role`; its docstring describes it."""

        def decorate(fn: F) -> F:
            name = fn.__name__

            @functools.wraps(fn)
            async def run(*args: Any, **kwargs: Any) -> Any:
                try:
                    self.check(kwargs.get("ctx"), role, name)
                    return await fn(*args, **kwargs)
                except SeismoError as exc:
                    raise ToolError(error_text(exc)) from None
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    raise ToolError(f"malformed input: {exc}") from None

            self.roles[name] = role
            read_only = role == Role.VIEWER
            self.server.add_tool(run, name=name, annotations=ToolAnnotations(
                read_only_hint=read_only, destructive_hint=None if read_only else destructive,
                open_world_hint=False))
            return fn

        return decorate
