"""The MCP server (`userflow mcp`): the analyst's tools, resources and prompts for one tenant at a time.

A thin shell (the MCP SDK's low-level Server) over tools.py, resources.py and
prompts.py. Two transports:
- stdio, for Claude Desktop: one tenant, the read key from UF_READ_KEY,
  checked before the server starts;
- streamable HTTP at /mcp (the chart's optional `mcp` deployment), stateless:
  the read key on every request (http_gate.py), each request answered for its
  key's tenant; /healthz and /readyz (PostgreSQL answers) for the probes.
Tools run in a worker thread (psycopg is blocking) and answer JSON: the text
content and the same object as structured content; a caller's mistake is a
tool error naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import anyio
import mcp.types as types
import psycopg
import uvicorn
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from userflow.ai import prompts, resources, tools
from userflow.ai.http_gate import ReadKeyGate, read_key_of
from userflow.ai.reader import Limits, Reader, open_pool, reader_of
from userflow.analytics.errors import NotAuthorized
from userflow.config import Settings

INSTRUCTIONS = ("UserFlow's analyst tools over one tenant's product analytics. Start with "
                "describe_data; every metric tool's result states its definition, range, filters "
                "and population; run_sql reads the tenant views for the rest. " + prompts.RULES)
READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                  idempotent_hint=True, open_world_hint=False)

ReaderOf = Callable[[ServerRequestContext[Any, Any]], Reader]


def build(reader_of_request: ReaderOf) -> Server[Any]:
    """The server; `reader_of_request` gives the Reader of the request's tenant."""

    async def list_tools(ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.input_schema,
                       annotations=READ_ONLY) for t in tools.TOOLS])

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        reader = reader_of_request(ctx)
        outcome = await anyio.to_thread.run_sync(tools.answer, reader, params.name,
                                                 params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(outcome.content, ensure_ascii=False))],
            structured_content=outcome.content, is_error=outcome.is_error)

    async def list_resources(ctx: ServerRequestContext[Any, Any],
                             params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
            for r in resources.listed()])

    async def read_resource(ctx: ServerRequestContext[Any, Any],
                            params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        reader = reader_of_request(ctx)
        try:
            text = await anyio.to_thread.run_sync(resources.read, reader, str(params.uri))
        except resources.UnknownResource as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=str(params.uri), mime_type="text/markdown", text=text)])

    async def list_prompts(ctx: ServerRequestContext[Any, Any],
                           params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=p.name, title=p.title, description=p.description,
                         arguments=[types.PromptArgument(name=a.name, description=a.description,
                                                         required=a.required) for a in p.arguments])
            for p in prompts.PROMPTS])

    async def get_prompt(ctx: ServerRequestContext[Any, Any],
                         params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            chosen = prompts.prompt(params.name)
            text = chosen.text(params.arguments)
        except (prompts.UnknownPrompt, prompts.MissingArgument) as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        return types.GetPromptResult(description=chosen.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(text=text))])

    return Server("userflow", version=version("userflow"), title="UserFlow analyst",
                  instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_read_resource=read_resource,
                  on_list_prompts=list_prompts, on_get_prompt=get_prompt)


def serve_stdio(s: Settings) -> None:
    """One tenant over stdin/stdout; NotAuthorized before serving when UF_READ_KEY is no live read key."""
    with reader_of(s, s.read_key) as reader:
        reader.company()
        server = build(lambda _ctx: reader)

        async def main() -> None:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())

        anyio.run(main)


def http_app(s: Settings, host: str) -> ASGIApp:
    """The streamable HTTP app at /mcp behind the read-key gate, with its own reader pool."""
    pool = open_pool(s)
    limits = Limits.of(s)

    def reader_of_request(ctx: ServerRequestContext[Any, Any]) -> Reader:
        if not isinstance(ctx.request, Request):
            raise NotAuthorized("no HTTP request carries this call")
        return Reader(pool, read_key_of(ctx.request.scope), limits)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        ready = await anyio.to_thread.run_sync(_database_answers, pool)
        return JSONResponse({"database": ready}, status_code=200 if ready else 503)

    # Stateless: no session lives in a pod, so replicas behind a Service need no affinity,
    # and every request stands alone with its own key.
    app = build(reader_of_request).streamable_http_app(
        streamable_http_path="/mcp", host=host, stateless_http=True,
        custom_starlette_routes=[Route("/healthz", healthz, methods=["GET"]),
                                 Route("/readyz", readyz, methods=["GET"])])
    return ReadKeyGate(app, lambda key: Reader(pool, key, limits).company())


def _database_answers(pool: ConnectionPool[Any]) -> bool:
    try:
        with pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
        return True
    except (psycopg.Error, PoolTimeout):
        return False


def serve_http(s: Settings, host: str, port: int) -> None:
    uvicorn.run(http_app(s, host), host=host, port=port, log_level=s.log_level.lower(),
                lifespan="on")
