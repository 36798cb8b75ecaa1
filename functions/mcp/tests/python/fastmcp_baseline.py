#!/usr/bin/env python3
"""A baseline MCP server built with the official Python SDK (mcp 2.x; FastMCP is `MCPServer`).

It serves one read-only tool, `list_offers`, with the same arguments and the same output shape as
trcker's Rust MCP server (`{"data": [offer, ...], "next_cursor": str | null}`, items exactly as
`GET /api/public/offers` returns them), over Streamable HTTP, stateless, JSON responses, at
`/api/mcp` on a loopback port. Both protocol eras work: the initialize handshake and the stateless
2026-07-28 `server/discover`.

It exists to compare throughput with the Rust server, and to prove the SDK client code in
test_mcp_clients.py (`--baseline`) before the Rust server is there.

    python fastmcp_baseline.py [--port 0] [--offers offers.json | --generate N] [--key tk_...]

`--offers` takes a JSON file holding a list of offers or a REST page (`{"data": [...]}`);
without it, `--generate N` (default 60) synthetic offers are served. `--key` makes every request
need `Authorization: Bearer <key>` (401 with `WWW-Authenticate: Bearer` otherwise), so an
authenticated load test does comparable work. With `--port 0` a free port is picked; the first
line printed is `fastmcp-baseline listening on http://127.0.0.1:PORT/api/mcp`.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import socket
import sys
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

PATH = "/api/mcp"
MAX_LIMIT = 100
DEFAULT_LIMIT = 25


class OfferPage(BaseModel):
    """One page of offers, newest first, as the REST API lists them."""

    data: list[dict[str, Any]]
    next_cursor: str | None


def synthetic_offers(count: int) -> list[dict[str, Any]]:
    """Offers shaped exactly like trcker's REST items, newest first."""
    offers = []
    for index in range(count):
        minute = index % 60
        offers.append(
            {
                "id": f"off_019ac8a1b2c3{index:04x}0000beef",
                "name": f"Baseline Offer {index}",
                "slug": f"baseline-offer-{index}",
                "destination_url": f"https://shop.example/offer-{index}",
                "default_payout": {"type": "flat" if index % 2 else "percent", "amount": 10.0 + index, "currency": "USD"},
                "status": "active",
                "caps": {"daily_conversions": None, "monthly_conversions": None},
                "created_at": f"2026-11-28T06:{minute:02d}:00.000Z",
                "updated_at": f"2026-11-28T06:{minute:02d}:00.000Z",
            }
        )
    return offers


def load_offers(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        loaded = json.load(file)
    if isinstance(loaded, dict):
        loaded = loaded.get("data")
    if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
        raise SystemExit(f"{path}: expected a list of offers or {{\"data\": [...]}}")
    return loaded


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
    except (ValueError, KeyError, TypeError) as error:
        raise ToolError("cursor is not one this server issued: pass next_cursor back unchanged") from error
    if not isinstance(offset, int) or offset < 0:
        raise ToolError("cursor is not one this server issued: pass next_cursor back unchanged")
    return offset


def build_server(offers: list[dict[str, Any]]) -> MCPServer:
    server = MCPServer(name="fastmcp-baseline", version="1.0.0", log_level="WARNING")

    @server.tool(
        name="list_offers",
        description="List the brand's offers, newest first. Pages of `limit` (1-100, default 25); "
        "pass `next_cursor` back as `cursor` for the next page.",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
        structured_output=True,
    )
    def list_offers(
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Page size, 1-100.")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Field(description="The previous page's next_cursor.")] = None,
    ) -> OfferPage:
        offset = 0 if cursor is None else decode_cursor(cursor)
        page = offers[offset : offset + limit]
        more = offset + limit < len(offers)
        return OfferPage(data=page, next_cursor=encode_cursor(offset + limit) if more else None)

    return server


class BearerKey:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <key>`."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.strip().partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {"code": "unauthorized", "message": "missing or unknown API key"}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: pick a free one)")
    parser.add_argument("--offers", help="JSON file: a list of offers, or a REST page {\"data\": [...]}")
    parser.add_argument("--generate", type=int, default=60, help="synthetic offers when --offers is not given")
    parser.add_argument("--key", help="require Authorization: Bearer KEY on every request")
    args = parser.parse_args(argv)

    offers = load_offers(args.offers) if args.offers else synthetic_offers(args.generate)
    server = build_server(offers)
    app: Any = server.streamable_http_app(streamable_http_path=PATH, stateless_http=True, json_response=True, host="127.0.0.1")
    if args.key:
        app = BearerKey(app, args.key)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"fastmcp-baseline listening on http://127.0.0.1:{port}{PATH} ({len(offers)} offers)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
