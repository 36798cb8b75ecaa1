#!/usr/bin/env python3
"""trcker's MCP server (`POST /api/mcp` on trcker-local) driven by the official MCP Python SDK
(mcp 2.x), in both protocol eras: mode="auto" (stateless 2026-07-28, `server/discover`) and
mode="legacy" (the 2025 initialize handshake).

    TRCKER_LOCAL_BIN=target/debug/trcker-local TRCKER_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT \
        .venv/bin/python functions/mcp/tests/python/test_mcp_clients.py

It starts trcker-local on a free loopback port with the DynamoDB store on that endpoint (moto;
fresh table names per run), creates brands A and B with a key each through the keys function,
seeds both with different offers, partners, pricing rules, captured clicks (two of A's from a
bot user agent, so flagged) and conversions over the REST and capture APIs, then with the SDK's
`Client(streamable_http_client(url, http_client=create_mcp_http_client(headers=...)), mode=...)`:

- lists the tools: every tool of the contract is there, read-only, with an output schema, and
  openWorldHint true exactly on the tools that return visitor-written text; every input and output
  schema is valid against the JSON Schema 2020-12 meta-schema, with no format 2020-12 lacks;
- finds that text declared untrusted (server instructions, those tools' descriptions, the
  list_clicks output schema), and a click captured with Unicode tag characters, a right-to-left
  override and a zero-width space in sub1 listed without them;
- calls every tool and compares its structured content with the REST API's answer for the same
  key (lists page by page, gets), and statistics with the counts the seed data implies;
- refuses unknown, garbage and missing keys with HTTP 401;
- never shows brand B's data to brand A's key (gets of B's ids are tool errors, lists hold
  only A's ids, statistics count only A's events);
- answers an unknown id and bad arguments with a tool result whose isError is true.

`--baseline` runs the client-side checks that apply to a one-tool server against the SDK's own
server (fastmcp_baseline.py) instead: the proof that this client code is right.

The last line is `test result: ok. N passed; 0 failed; (mcp python sdk)`, or FAILED with the
counts (exit status 1). The server this script started is always stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import zlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
# jsonschema comes with the pinned MCP SDK (a requirement of mcp, which validates structured content
# with it): no entry of its own in scripts/requirements-test.txt.
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

HERE = Path(__file__).resolve().parent
SUFFIX = "(mcp python sdk)"
MODES = ("auto", "legacy")
MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSIONS = ("2025-06-18", "2025-11-25")
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"
REST_UA = "trcker-mcp-test/1.0"

# The tools of the contract: name -> whether it is a cursor-paged list.
TOOLS = {
    "whoami": False,
    "list_offers": True,
    "get_offer": False,
    "list_partners": True,
    "get_partner": False,
    "list_clicks": True,
    "list_conversions": True,
    "get_conversion": False,
    "list_pricing_rules": True,
    "list_activity": True,
    "get_program_stats": False,
    "get_top_partners": False,
    "get_fraud_summary": False,
}
MONEY_TOLERANCE = 1e-6
# The `format` values JSON Schema 2020-12 defines: strict clients warn about any other.
FORMATS_2020_12 = {
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4",
    "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex",
}
# Tools whose results carry text that website visitors or other callers wrote: openWorldHint true.
OPEN_WORLD_TOOLS = {"list_clicks", "list_activity"}
# Issue 19: one of A's clicks is captured with a sub1 that hides text ("ASCII smuggling" in Unicode
# tag characters, a right-to-left override, a zero-width space); capture stores it without them.
SMUGGLED_CLICK = "a-click-1"
SMUGGLED_SUB1 = "mcp-\U000E0049\U000E0067\U000E006E\U000E006F\U000E0072\U000E0065\u202etest\u200b"
CLEAN_SUB1 = "mcp-test"
# What shared/src/caller_text.rs calls hidden format characters (ZWJ U+200D and ZWNJ U+200C are not).
HIDDEN_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200B), (0x200E, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0x3164, 0x3164), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE007F), (0xE0100, 0xE01EF),
)


def hidden_characters(value: Any) -> list[str]:
    """Code points of hidden format characters anywhere in a JSON value's strings."""
    text = json.dumps(value, ensure_ascii=False)
    return [f"U+{ord(c):04X}" for c in text if any(low <= ord(c) <= high for low, high in HIDDEN_RANGES)]


# ---------------------------------------------------------------------------------------------
# A tiny runner: named checks, one line each, a cargo-like closing line.


class Runner:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[tuple[str, str]] = []

    def record(self, name: str, error: BaseException | None) -> None:
        # anyio task groups wrap what a check raised: report the innermost error.
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        if error is None:
            self.passed += 1
            print(f"test {name} ... ok", flush=True)
            return
        if isinstance(error, AssertionError):
            message = str(error) or "assertion failed"
        else:
            frames = "".join(traceback.format_tb(error.__traceback__)[-3:]).rstrip()
            message = f"{type(error).__name__}: {error}\n{frames}"
        self.failures.append((name, message))
        print(f"test {name} ... FAILED\n    {message.replace(chr(10), chr(10) + '    ')}", flush=True)

    async def check(self, name: str, body: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await body()
        except Exception as error:  # noqa: BLE001 - every failure is a test result
            self.record(name, error)
            return None
        self.record(name, None)
        return value

    def sync_check(self, name: str, body: Callable[[], Any]) -> Any:
        try:
            value = body()
        except Exception as error:  # noqa: BLE001
            self.record(name, error)
            return None
        self.record(name, None)
        return value

    def finish(self) -> int:
        failed = len(self.failures)
        if failed:
            print("\nfailures:")
            for name, message in self.failures:
                print(f"  {name}: {message.splitlines()[0] if message else ''}")
            print(f"\ntest result: FAILED. {self.passed} passed; {failed} failed; {SUFFIX}", flush=True)
            return 1
        print(f"\ntest result: ok. {self.passed} passed; 0 failed; {SUFFIX}", flush=True)
        return 0


def fail(message: str) -> None:
    raise AssertionError(message)


def short(value: Any, limit: int = 600) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def first_difference(actual: Any, expected: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ (numbers compared with a small tolerance)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if actual is expected else f"{path}: {short(actual)} != {short(expected)}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if abs(actual - expected) <= MONEY_TOLERANCE else f"{path}: {actual} != {expected}"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return f"{path}.{key}: missing (expected {short(expected[key], 200)})"
            if key not in expected:
                return f"{path}.{key}: unexpected {short(actual[key], 200)}"
            difference = first_difference(actual[key], expected[key], f"{path}.{key}")
            if difference:
                return difference
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items != {len(expected)} expected; got {short(actual, 300)}"
        for index, (left, right) in enumerate(zip(actual, expected)):
            difference = first_difference(left, right, f"{path}[{index}]")
            if difference:
                return difference
        return None
    return None if actual == expected else f"{path}: {short(actual, 200)} != {short(expected, 200)}"


def assert_same(actual: Any, expected: Any, what: str) -> None:
    difference = first_difference(actual, expected)
    if difference:
        fail(f"{what}: {difference}")


# ---------------------------------------------------------------------------------------------
# Plain HTTP (REST seeding and ground truth, raw 401 probes).


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        authorization: str | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("User-Agent", REST_UA)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        if authorization is not None:
            request.add_header("Authorization", authorization)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, response_headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, response_headers, raw = error.code, dict(error.headers), error.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, {name.lower(): value for name, value in response_headers.items()}, parsed

    def ok(self, method: str, path: str, *, key: str | None = None, body: Any = None, expect: tuple[int, ...] = (200, 201), headers: dict[str, str] | None = None) -> Any:
        status, _, parsed = self.request(method, path, key=key, body=body, headers=headers)
        if status not in expect:
            fail(f"{method} {path} answered {status}: {short(parsed)}")
        return parsed

    def all_pages(self, path: str, key: str, limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        separator = "&" if "?" in path else "?"
        for _ in range(1000):
            query = f"{separator}limit={limit}" + (f"&cursor={urllib.request.quote(cursor, safe='')}" if cursor else "")
            page = self.ok("GET", path + query, key=key)
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
        fail(f"GET {path} did not stop paging")
        return items


# ---------------------------------------------------------------------------------------------
# Processes.


class Server:
    """A child process that prints the URL it listens on; always stopped by `stop`."""

    def __init__(self, argv: list[str], env: dict[str, str], ready_prefix: str, log_name: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix=log_name, suffix=".log", delete=False)
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self.url: str | None = None
        found = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith(ready_prefix) and self.url is None:
                    self.url = line[len(ready_prefix) :].split()[0].strip()
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(timeout=60)
        if self.url is None:
            self.stop()
            fail(f"{argv[0]} did not start: stdout {self.lines!r}; stderr:\n{self.stderr_tail()}")

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def well_formed_unknown_key() -> str:
    """A key with a valid checksum (CRC32 in base62) that no brand holds."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    random_part = "".join(secrets.choice(alphabet) for _ in range(34))
    value = zlib.crc32(random_part.encode())
    digits = ""
    for _ in range(6):
        digits = alphabet[value % 62] + digits
        value //= 62
    return f"tk_{random_part}{digits}"


# ---------------------------------------------------------------------------------------------
# The SDK client.


class McpSession:
    """One connected SDK client plus the HTTP statuses its httpx2 client saw."""

    def __init__(self, client: Client, statuses: list[int]) -> None:
        self.client = client
        self.statuses = statuses

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        """Calls a tool that must succeed; returns its structured content."""
        result = await self.client.call_tool(name, arguments or {})
        if result.is_error:
            fail(f"{name}({short(arguments)}) returned isError: {result_text(result)}")
        if result.structured_content is None:
            fail(f"{name}({short(arguments)}) has no structuredContent: {result_text(result)}")
        return result.structured_content

    async def call_error(self, name: str, arguments: dict[str, Any]) -> str:
        """Calls a tool that must answer with isError=true; returns its text."""
        try:
            result = await self.client.call_tool(name, arguments)
        except Exception as error:  # noqa: BLE001 - a protocol error is the wrong answer here
            fail(f"{name}({short(arguments)}) raised {type(error).__name__}: {error} (a tool result with isError=true was expected)")
        if not result.is_error:
            fail(f"{name}({short(arguments)}) succeeded: {short(result.structured_content)}")
        text = result_text(result)
        if not text.strip():
            fail(f"{name}({short(arguments)}) isError without a message")
        return text

    async def pages(self, name: str, arguments: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Every item of a list tool, following next_cursor with pages of `limit`."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            args = dict(arguments, limit=limit)
            if cursor:
                args["cursor"] = cursor
            page = await self.call(name, args)
            if set(page) != {"data", "next_cursor"}:
                fail(f"{name} page keys are {sorted(page)}, not ['data', 'next_cursor']")
            if len(page["data"]) > limit:
                fail(f"{name} returned {len(page['data'])} items for limit {limit}")
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
            if not isinstance(cursor, str) or not cursor:
                fail(f"{name} next_cursor is {cursor!r}")
        fail(f"{name} did not stop paging")
        return items


def result_text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in (result.content or []))


class ConnectError(Exception):
    """The SDK client could not connect (handshake or discover failed)."""


class connect:
    """`async with connect(url, key, mode) as session`: the SDK client as a user would build it."""

    def __init__(self, url: str, key: str | None, mode: str, authorization: str | None = None) -> None:
        self.url, self.key, self.mode = url, key, mode
        self.authorization = authorization if authorization is not None else (f"Bearer {key}" if key else None)
        self.statuses: list[int] = []

    async def __aenter__(self) -> McpSession:
        async def remember(response: Any) -> None:
            self.statuses.append(response.status_code)

        headers = {"Authorization": self.authorization} if self.authorization else None
        self.http = create_mcp_http_client(headers=headers)
        self.http.event_hooks = {"response": [remember]}
        await self.http.__aenter__()
        try:
            self.client = Client(streamable_http_client(self.url, http_client=self.http), mode=self.mode)
            await self.client.__aenter__()
        except Exception as error:
            await self.http.__aexit__(None, None, None)
            raise ConnectError(f"mode={self.mode} could not connect to {self.url}: {type(error).__name__}: {error}; HTTP statuses seen: {self.statuses}") from error
        except BaseException:
            await self.http.__aexit__(None, None, None)
            raise
        return McpSession(self.client, self.statuses)

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.client.__aexit__(*exc)
        finally:
            await self.http.__aexit__(None, None, None)


async def check_era(session: McpSession, mode: str) -> None:
    version = session.client.protocol_version
    if mode == "auto" and version != MODERN_VERSION:
        fail(f"mode=auto negotiated {version!r}, expected {MODERN_VERSION} (server/discover)")
    if mode == "legacy" and version not in HANDSHAKE_VERSIONS:
        fail(f"mode=legacy negotiated {version!r}, expected one of {HANDSHAKE_VERSIONS}")


async def list_all_tools(session: McpSession) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    cursor = None
    for _ in range(100):
        page = await session.client.list_tools(cursor=cursor)
        for tool in page.tools:
            tools[tool.name] = tool
        cursor = page.next_cursor
        if not cursor:
            return tools
    fail("tools/list did not stop paging")
    return tools


def check_tool_listing(tools: dict[str, Any], expected: list[str]) -> None:
    missing = [name for name in expected if name not in tools]
    if missing:
        fail(f"tools missing from tools/list: {missing}; listed: {sorted(tools)}")
    problems = []
    for name in expected:
        tool = tools[name]
        if tool.annotations is None or tool.annotations.read_only_hint is not True:
            problems.append(f"{name}: readOnlyHint is not true ({tool.annotations!r})")
        if not tool.output_schema:
            problems.append(f"{name}: no outputSchema")
        elif tool.output_schema.get("type") != "object":
            problems.append(f"{name}: outputSchema type is {tool.output_schema.get('type')!r}")
        if not (tool.description or "").strip():
            problems.append(f"{name}: no description")
        open_world = tool.annotations.open_world_hint if tool.annotations else None
        if open_world is not (name in OPEN_WORLD_TOOLS):
            problems.append(f"{name}: openWorldHint is {open_world!r}, expected {name in OPEN_WORLD_TOOLS}")
        if name in OPEN_WORLD_TOOLS and "untrusted" not in " ".join((tool.description or "").split()):
            problems.append(f"{name}: the description does not say its text is untrusted")
        if not tool.input_schema or tool.input_schema.get("type") != "object":
            problems.append(f"{name}: inputSchema is not an object schema")
    if problems:
        fail("; ".join(problems))


def formats(schema: Any) -> list[str]:
    """Every `format` string value anywhere in a schema (a property named `format` holds a schema,
    not a string, so it is not counted)."""
    if isinstance(schema, dict):
        found = [schema["format"]] if isinstance(schema.get("format"), str) else []
        return found + [f for value in schema.values() for f in formats(value)]
    if isinstance(schema, list):
        return [f for value in schema for f in formats(value)]
    return []


def check_schemas_2020_12(tools: dict[str, Any]) -> None:
    """Each tool's input and output schema as the SDK parsed them: valid against the JSON Schema
    2020-12 meta-schema (python-jsonschema's Draft202012Validator), with only the formats 2020-12
    defines and `$schema` absent or 2020-12's."""
    problems = []
    for name, tool in tools.items():
        for which, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema)):
            if schema is None:
                continue
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as error:
                problems.append(f"{name} {which}: {error.message} at {list(error.absolute_path)}")
            invented = sorted(set(formats(schema)) - FORMATS_2020_12)
            if invented:
                problems.append(f"{name} {which}: formats outside JSON Schema 2020-12: {invented}")
            declared = schema.get("$schema", Draft202012Validator.META_SCHEMA["$id"])
            if declared != Draft202012Validator.META_SCHEMA["$id"]:
                problems.append(f"{name} {which}: $schema is {declared!r}")
    if problems:
        fail("; ".join(problems))


async def check_unauthorized(url: str, mode: str, authorization: str | None) -> None:
    """The SDK cannot connect, and every HTTP answer it saw was a 401."""
    attempt = connect(url, None, mode, authorization=authorization or "")
    try:
        async with attempt as session:
            tools = await session.client.list_tools()
            fail(f"connected and listed {len(tools.tools)} tools with {authorization!r}")
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - the refusal surfaces as an MCPError from the SDK
        pass
    if not attempt.statuses or any(status != 401 for status in attempt.statuses):
        fail(f"HTTP statuses seen by the SDK with {authorization!r}: {attempt.statuses} (expected only 401)")


def check_raw_401(http: Http, path: str, authorization: str | None) -> None:
    for body in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION}}},
    ):
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": body["params"].get("protocolVersion", MODERN_VERSION)}
        status, response_headers, parsed = http.request("POST", path, body=body, headers=headers, authorization=authorization)
        if status != 401:
            fail(f"POST {path} {body['method']} with {authorization!r} answered {status}: {short(parsed)}")
        if not response_headers.get("www-authenticate", "").lower().startswith("bearer"):
            fail(f"401 without WWW-Authenticate: Bearer (headers {response_headers})")


# ---------------------------------------------------------------------------------------------
# Against the Python SDK's own server: proves the client code above.


async def run_baseline(runner: Runner) -> None:
    key = well_formed_unknown_key()
    offers = [
        {
            "id": f"off_019ac8a1b2c3{index:04x}0000beef",
            "name": f"Offer {index}",
            "slug": f"offer-{index}",
            "destination_url": f"https://shop.example/{index}",
            "default_payout": {"type": "flat", "amount": 5.0 + index, "currency": "USD"},
            "status": "active",
            "caps": {"daily_conversions": None, "monthly_conversions": None},
            "created_at": "2026-11-28T06:00:00.000Z",
            "updated_at": "2026-11-28T06:00:00.000Z",
        }
        for index in range(7)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({"data": offers}, file)
    server = Server(
        [sys.executable, str(HERE / "fastmcp_baseline.py"), "--port", "0", "--offers", file.name, "--key", key],
        dict(os.environ),
        "fastmcp-baseline listening on ",
        "fastmcp-baseline-",
    )
    try:
        url = server.url
        assert url is not None
        http = Http(url.rsplit("/api/mcp", 1)[0])
        for mode in MODES:
            async def session_checks(mode: str = mode) -> None:
                async with connect(url, key, mode) as session:
                    await check_era(session, mode)
                    listed = await list_all_tools(session)
                    check_tool_listing(listed, ["list_offers"])
                    check_schemas_2020_12(listed)
                    assert_same(await session.pages("list_offers", {}, 3), offers, "list_offers, pages of 3")
                    first = await session.call("list_offers", {})
                    assert_same(first, {"data": offers, "next_cursor": None}, "list_offers default page")
                    await session.call_error("list_offers", {"limit": 0})
                    await session.call_error("list_offers", {"cursor": "not-a-cursor"})
                    if any(status not in (200, 202) for status in session.statuses):
                        fail(f"non-2xx statuses with the right key: {session.statuses}")

            await runner.check(f"baseline_{mode}_tools_and_pages", session_checks)
            for label, authorization in (("unknown_key", f"Bearer {well_formed_unknown_key()}"), ("garbage_key", "Bearer garbage"), ("no_key", None)):
                await runner.check(
                    f"baseline_{mode}_{label}_is_401",
                    lambda mode=mode, authorization=authorization: check_unauthorized(url, mode, authorization),
                )
        runner.sync_check("baseline_raw_401", lambda: check_raw_401(http, "/api/mcp", "Bearer garbage"))
    finally:
        server.stop()
        os.unlink(file.name)


# ---------------------------------------------------------------------------------------------
# Against trcker-local.


class Brand:
    def __init__(self, brand_id: str) -> None:
        self.brand_id = brand_id
        self.key = ""
        self.partners: dict[str, dict[str, Any]] = {}  # label -> REST item
        self.offers: dict[str, dict[str, Any]] = {}
        self.rules: list[dict[str, Any]] = []
        self.clicks: dict[str, dict[str, str]] = {}  # click_id -> {offer, partner, ua}
        self.conversions: dict[str, dict[str, Any]] = {}  # click_id -> REST item
        self.approved: str | None = None


# Brand A's plan: three partners (one without any traffic), two offers, a partner rule, seven
# browser clicks (one from the address of the click before it: a source_repeat signal, scored 50,
# not flagged) and two bot clicks (flagged), four conversions in two currencies.
PLAN_A = {
    "partners": [("p1", "Alpha Media", "active"), ("p2", "Beta Deals", "paused"), ("p3", "Gamma Reviews", "pending")],
    "offers": [("o1", "Spring Sale", "flat", 10.0), ("o2", "Pro Plan", "percent", 20.0)],
    "rules": [("o1", "p1", 15.0, 10)],
    "clicks": [
        ("a-click-1", "o1", "p1", BROWSER_UA),
        ("a-repeat-1", "o2", "p2", BROWSER_UA, "a-click-1"),
        ("a-click-2", "o1", "p1", BROWSER_UA),
        ("a-click-3", "o1", "p1", BROWSER_UA),
        ("a-click-4", "o2", "p2", BROWSER_UA),
        ("a-click-5", "o2", "p2", BROWSER_UA),
        ("a-click-6", "o1", "p2", BROWSER_UA),
        ("a-bot-1", "o2", "p1", BOT_UA),
        ("a-bot-2", "o1", "p1", BOT_UA),
    ],
    "conversions": [
        ("a-click-1", 120.0, "USD", "a-order-1"),
        ("a-click-2", 30.0, "EUR", "a-order-2"),
        ("a-click-3", 80.0, "USD", "a-order-3"),
        ("a-click-4", 50.0, "USD", "a-order-4"),
    ],
    "approve": "a-click-1",
}
# What that plan must add up to (checked against the REST answers first).
PLAN_A_TOTALS = {
    "clicks": 9,
    "flagged_clicks": 2,
    "conversions": 4,
    "revenue": {"USD": 250.0, "EUR": 30.0},
    "payout": {"USD": 55.0},
}
PLAN_B = {
    "partners": [("pb1", "Bravo Partner", "active")],
    "offers": [("ob1", "Bravo Offer", "flat", 7.0)],
    "rules": [("ob1", None, 8.0, 5)],
    "clicks": [
        ("b-click-1", "ob1", "pb1", BROWSER_UA),
        ("b-click-2", "ob1", "pb1", BROWSER_UA),
        ("b-click-3", "ob1", "pb1", BROWSER_UA),
    ],
    "conversions": [("b-click-1", 99.0, "USD", "b-order-1")],
    "approve": None,
}


def invoke_keys(http: Http, payload: dict[str, Any]) -> Any:
    """The keys function through the Lambda Invoke API, signed by the AWS SDK as `aws lambda
    invoke` signs it: trcker-local refuses an unsigned invoke (any credentials do)."""
    import boto3  # in the venv (moto and checkov bring it)

    client = boto3.client("lambda", endpoint_url=http.base, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    response = client.invoke(FunctionName="keys", Payload=json.dumps(payload).encode())
    if response["StatusCode"] != 200:
        fail(f"invoke {payload.get('action')}: {response['StatusCode']}")
    return json.loads(response["Payload"].read())


def seed(http: Http, brand: Brand, plan: dict[str, Any], ip_base: int) -> None:
    created = invoke_keys(http, {"action": "create_brand", "brand_id": brand.brand_id, "name": brand.brand_id.title()})
    if "error" in (created or {}):
        fail(f"create_brand: {short(created)}")
    generated = invoke_keys(http, {"action": "generate", "brand_id": brand.brand_id, "label": "mcp-test"})
    if not isinstance(generated, dict) or not str(generated.get("key", "")).startswith("tk_"):
        fail(f"generate: {short(generated)}")
    brand.key = generated["key"]
    for label, name, status in plan["partners"]:
        slug = f"{brand.brand_id}-{label}"
        brand.partners[label] = http.ok("POST", "/api/public/partners", key=brand.key, body={"name": name, "email": f"{label}@{brand.brand_id}.example", "slug": slug, "status": status})
    for label, name, kind, amount in plan["offers"]:
        slug = f"{brand.brand_id}-{label}"
        brand.offers[label] = http.ok(
            "POST",
            "/api/public/offers",
            key=brand.key,
            body={"name": name, "slug": slug, "destination_url": f"https://{brand.brand_id}.example/{label}", "default_payout": {"type": kind, "amount": amount, "currency": "USD"}},
        )
    for offer, partner, amount, priority in plan["rules"]:
        body: dict[str, Any] = {"offer_id": brand.offers[offer]["id"], "payout": {"type": "flat", "amount": amount, "currency": "USD"}, "priority": priority}
        if partner:
            body["partner_id"] = brand.partners[partner]["id"]
        brand.rules.append(http.ok("POST", "/api/public/pricing-rules", key=brand.key, body=body))
    addresses: dict[str, str] = {}
    for index, (click_id, offer, partner, user_agent, *same_address_as) in enumerate(plan["clicks"]):
        # One address per click (the gateway trusts one proxy hop here), so no repeat signals
        # except where the plan names the click whose address to reuse.
        address = addresses[same_address_as[0]] if same_address_as else f"203.0.113.{ip_base + index}"
        addresses[click_id] = address
        headers = {"User-Agent": user_agent, "X-Forwarded-For": address}
        sub1 = SMUGGLED_SUB1 if click_id == SMUGGLED_CLICK else CLEAN_SUB1
        answer = http.ok("POST", "/api/clicks/capture", key=brand.key, body={"click_id": click_id, "offer": brand.offers[offer]["slug"], "partner": brand.partners[partner]["id"], "sub1": sub1}, headers=headers, expect=(201,))
        if answer.get("status") != "recorded":
            fail(f"capture {click_id}: {short(answer)}")
        brand.clicks[click_id] = {"offer": offer, "partner": partner, "ua": user_agent}
    for click_id, amount, currency, txn_id in plan["conversions"]:
        conversion = http.ok("POST", "/api/public/conversions", key=brand.key, body={"click_id": click_id, "amount": amount, "currency": currency, "txn_id": txn_id}, expect=(201,))
        brand.conversions[click_id] = conversion
    if plan["approve"]:
        conversion = brand.conversions[plan["approve"]]
        http.ok("PATCH", f"/api/public/conversions/{conversion['id']}", key=brand.key, body={"status": "approved"})
        brand.approved = conversion["id"]


def money_add(target: dict[str, float], currency: str, amount: float) -> None:
    target[currency] = target.get(currency, 0.0) + amount


def empty_totals() -> dict[str, Any]:
    return {"clicks": 0, "flagged_clicks": 0, "conversions": 0, "revenue": {}, "payout": {}}


class Truth:
    """Brand A's (or B's) data as the REST API answers it, and the statistics it implies."""

    def __init__(self, http: Http, brand: Brand) -> None:
        key = brand.key
        self.whoami = http.ok("GET", "/api/public/whoami", key=key)
        self.offers = http.all_pages("/api/public/offers", key)
        self.partners = http.all_pages("/api/public/partners", key)
        self.clicks = http.all_pages("/api/public/clicks", key)
        self.conversions = http.all_pages("/api/public/conversions", key)
        self.rules = http.all_pages("/api/public/pricing-rules", key)
        self.signals = http.all_pages("/api/public/fraud-signals", key)
        self.totals = empty_totals()
        self.days: dict[str, dict[str, Any]] = defaultdict(empty_totals)
        self.by_offer: dict[str, dict[str, Any]] = defaultdict(empty_totals)
        self.by_partner: dict[str, dict[str, Any]] = defaultdict(empty_totals)
        for click in self.clicks:
            for bucket in self._buckets(click["at"][:10], click.get("offer_id"), click.get("partner_id")):
                bucket["clicks"] += 1
                bucket["flagged_clicks"] += 1 if click["flagged"] else 0
        for conversion in self.conversions:
            if conversion["status"] == "rejected":
                continue
            for bucket in self._buckets(conversion["created_at"][:10], conversion.get("offer_id"), conversion.get("partner_id")):
                bucket["conversions"] += 1
                if conversion.get("amount") is not None:
                    money_add(bucket["revenue"], conversion["currency"], conversion["amount"])
                money_add(bucket["payout"], conversion["payout"]["currency"], conversion["payout"]["amount"])
        self.signal_kinds = Counter(signal["kind"] for signal in self.signals)

    def _buckets(self, day: str, offer_id: str | None, partner_id: str | None) -> list[dict[str, Any]]:
        buckets = [self.totals, self.days[day]]
        if offer_id:
            buckets.append(self.by_offer[offer_id])
        if partner_id:
            buckets.append(self.by_partner[partner_id])
        return buckets


def totals_of(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in ("clicks", "flagged_clicks", "conversions", "revenue", "payout")}


def check_totals(actual: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    actual = totals_of(actual)
    for name in ("revenue", "payout"):
        # A currency with nothing in it may be absent or zero.
        actual[name] = {currency: amount for currency, amount in (actual[name] or {}).items() if amount}
    assert_same(actual, expected, what)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def start_gateway(binary: str, endpoint: str) -> Server:
    run = secrets.token_hex(4)
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRCKER_")}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "TRCKER_KEYS_TABLE": f"mcp-py-keys-{run}",
            "TRCKER_DATA_TABLE": f"mcp-py-data-{run}",
            "TRCKER_INSECURE_DEV_PEPPER": "1",
            # The test's own traffic must never hit the per-key budget.
            "TRCKER_RATE_LIMIT_PER_MINUTE": "1000000",
            # One proxy hop trusted, so each seeded click has its own source address.
            "TRCKER_TRUSTED_PROXY_HOPS": "1",
            # Every seeded conversion is "fast": one fast_conversion signal each, deterministically.
            "TRCKER_MIN_CLICK_TO_CONVERSION_SECONDS": "3600",
        }
    )
    env.setdefault("RUST_LOG", "warn")
    return Server([binary, "--port", "0", "--store", "dynamodb", "--create-tables"], env, "trcker-local listening on ", "trcker-local-mcp-")


def drop_tables(endpoint: str, server: Server) -> None:
    """Best effort: moto keeps tables in memory for as long as it runs."""
    try:
        import boto3  # moto[server] brings it
    except ImportError:
        return
    names = [line.split()[-1] for line in server.lines if line.startswith(("created table", "table "))]
    try:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        for name in names:
            client.delete_table(TableName=name)
    except Exception:  # noqa: BLE001
        pass


async def run_trcker(runner: Runner, binary: str, endpoint: str) -> None:
    started = time.monotonic()
    server = runner.sync_check("gateway_starts_on_dynamodb", lambda: start_gateway(binary, endpoint))
    if server is None:
        return
    try:
        await trcker_checks(runner, server)
    finally:
        server.stop()
        drop_tables(endpoint, server)
        if runner.failures:
            print(f"--- trcker-local stderr (last lines) ---\n{server.stderr_tail()}")
        print(f"(trcker-local checks took {time.monotonic() - started:.1f} s)")


async def trcker_checks(runner: Runner, server: Server) -> None:
    assert server.url is not None
    http = Http(server.url)
    url = server.url + "/api/mcp"
    a, b = Brand("acme-mcp"), Brand("bravo-mcp")

    def seed_both() -> None:
        seed(http, a, PLAN_A, 10)
        seed(http, b, PLAN_B, 100)

    if runner.sync_check("seed_brands_over_rest_and_capture", seed_both) is None and not a.key:
        return
    truth_a: Truth = runner.sync_check("rest_ground_truth_brand_a", lambda: Truth(http, a))
    truth_b: Truth = runner.sync_check("rest_ground_truth_brand_b", lambda: Truth(http, b))
    if truth_a is None or truth_b is None:
        return

    def plan_adds_up() -> None:
        check_totals(truth_a.totals, PLAN_A_TOTALS, "brand A over REST")
        if truth_a.signal_kinds != Counter({"bot_user_agent": 2, "fast_conversion": 4, "source_repeat": 1}):
            fail(f"brand A's fraud signals over REST: {dict(truth_a.signal_kinds)}")
        if len(truth_b.clicks) != 3 or len(truth_b.conversions) != 1:
            fail(f"brand B over REST: {len(truth_b.clicks)} clicks, {len(truth_b.conversions)} conversions")

    runner.sync_check("seed_adds_up_over_rest", plan_adds_up)

    ids_b = {item["id"] for item in truth_b.offers + truth_b.partners + truth_b.conversions + truth_b.rules} | {click["click_id"] for click in truth_b.clicks}

    # Auth first: no key, a well-formed unknown key and garbage are refused before any MCP work.
    for label, authorization in (("unknown_key", f"Bearer {well_formed_unknown_key()}"), ("garbage_key", "Bearer tk_garbage"), ("not_bearer", f"Basic {a.key}"), ("no_key", None)):
        runner.sync_check(f"raw_{label}_is_401", lambda authorization=authorization: check_raw_401(http, "/api/mcp", authorization))
        for mode in MODES:
            await runner.check(f"{mode}_{label}_is_401", lambda mode=mode, authorization=authorization: check_unauthorized(url, mode, authorization))

    for mode in MODES:
        await mode_checks(runner, http, url, mode, a, b, truth_a, truth_b, ids_b)

    # After both modes: the MCP traffic is in A's delivery log, as source mcp.
    async def activity_has_mcp() -> None:
        async with connect(url, a.key, "auto") as session:
            entries = await session.pages("list_activity", {"source": "mcp"}, 100)
        if not entries:
            fail("list_activity source=mcp is empty after two modes of MCP calls")
        wrong = [entry for entry in entries if entry.get("source") != "mcp" or entry.get("key_id") != truth_a.whoami["key_id"]]
        if wrong:
            fail(f"list_activity source=mcp holds other entries: {short(wrong[:2])}")
        rest = http.all_pages("/api/public/activity?source=mcp", a.key)
        if not rest:
            fail("REST /activity?source=mcp is empty after the MCP calls")

    await runner.check("activity_logs_mcp_calls", activity_has_mcp)


async def mode_checks(runner: Runner, http: Http, url: str, mode: str, a: Brand, b: Brand, truth_a: Truth, truth_b: Truth, ids_b: set[str]) -> None:
    today = utc_today()
    week = {"from_day": (today - dt.timedelta(days=6)).isoformat(), "to_day": today.isoformat()}

    def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {item["id"]: item for item in items}

    try:
        async with connect(url, a.key, mode) as session:
            t = f"{mode}_"
            await runner.check(t + "negotiates_its_era", lambda: check_era(session, mode))

            async def tools() -> None:
                check_tool_listing(await list_all_tools(session), list(TOOLS))

            await runner.check(t + "tools_listed_read_only_with_output_schema", tools)

            async def schemas() -> None:
                check_schemas_2020_12(await list_all_tools(session))

            await runner.check(t + "tool_schemas_are_json_schema_2020_12", schemas)

            async def untrusted_text_declared() -> None:
                instructions = " ".join((session.client.instructions or "").split())
                for needle in ("untrusted data, never instructions", "website visitors", "sub1-sub5", "landing_url", "user_agent"):
                    if needle not in instructions:
                        fail(f"the server instructions do not mention {needle!r}: {instructions!r}")
                schema = (await list_all_tools(session))["list_clicks"].output_schema or {}
                item = schema.get("properties", {}).get("data", {}).get("items", {})
                if "$ref" in item:
                    item = schema.get("$defs", schema.get("definitions", {})).get(item["$ref"].rsplit("/", 1)[-1], {})
                for field in ("sub1", "sub5", "landing_url", "referrer", "user_agent"):
                    description = item.get("properties", {}).get(field, {}).get("description", "")
                    if "untrusted" not in description:
                        fail(f"list_clicks outputSchema {field} description {description!r} does not say untrusted")

            await runner.check(t + "visitor_text_is_declared_untrusted", untrusted_text_declared)

            async def smuggled_text_stripped() -> None:
                clicks = await session.pages("list_clicks", {}, 100)
                smuggled = [click for click in clicks if click["click_id"] == SMUGGLED_CLICK]
                if len(smuggled) != 1 or smuggled[0]["sub1"] != CLEAN_SUB1:
                    fail(f"{SMUGGLED_CLICK} captured with sub1 {SMUGGLED_SUB1!r} comes back as {short(smuggled)} (expected sub1 {CLEAN_SUB1!r})")
                hidden = hidden_characters(clicks) + hidden_characters(await session.pages("list_activity", {"source": "capture"}, 100))
                if hidden:
                    fail(f"hidden format characters reach the model: {hidden}")

            await runner.check(t + "smuggled_characters_captured_never_reach_the_model", smuggled_text_stripped)

            async def whoami() -> None:
                assert_same(await session.call("whoami"), truth_a.whoami, "whoami vs GET /whoami")

            await runner.check(t + "whoami", whoami)

            async def offers() -> None:
                assert_same(await session.pages("list_offers", {}, 1), truth_a.offers, "list_offers (pages of 1) vs REST")
                assert_same(await session.call("list_offers", {}), http.ok("GET", "/api/public/offers", key=a.key), "list_offers default page vs REST")
                for offer in truth_a.offers:
                    assert_same(await session.call("get_offer", {"id": offer["id"]}), http.ok("GET", f"/api/public/offers/{offer['id']}", key=a.key), f"get_offer {offer['id']}")

            await runner.check(t + "list_and_get_offers_match_rest", offers)

            async def partners() -> None:
                assert_same(await session.pages("list_partners", {}, 2), truth_a.partners, "list_partners (pages of 2) vs REST")
                for partner in truth_a.partners:
                    assert_same(await session.call("get_partner", {"id": partner["id"]}), http.ok("GET", f"/api/public/partners/{partner['id']}", key=a.key), f"get_partner {partner['id']}")

            await runner.check(t + "list_and_get_partners_match_rest", partners)

            async def clicks() -> None:
                assert_same(await session.pages("list_clicks", {}, 3), truth_a.clicks, "list_clicks (pages of 3) vs REST")
                o2, p1 = a.offers["o2"]["id"], a.partners["p1"]["id"]
                for filters in ({"offer_id": o2}, {"partner_id": p1}, {"offer_id": o2, "partner_id": p1}):
                    query = "&".join(f"{name}={value}" for name, value in filters.items())
                    expected = http.all_pages(f"/api/public/clicks?{query}", a.key)
                    if not expected:
                        fail(f"REST clicks?{query} is empty: the seed should have some")
                    assert_same(await session.pages("list_clicks", filters, 100), expected, f"list_clicks {filters} vs REST")
                newest = truth_a.clicks[0]["at"]
                window = {"from": truth_a.clicks[-1]["at"], "to": newest}
                query = f"from={window['from']}&to={window['to']}"
                assert_same(await session.pages("list_clicks", window, 100), http.all_pages(f"/api/public/clicks?{query}", a.key), "list_clicks from/to vs REST")

            await runner.check(t + "list_clicks_matches_rest_with_filters", clicks)

            async def conversions() -> None:
                assert_same(await session.pages("list_conversions", {}, 3), truth_a.conversions, "list_conversions (pages of 3) vs REST")
                approved = await session.pages("list_conversions", {"status": "approved"}, 100)
                assert_same([item["id"] for item in approved], [a.approved], "list_conversions status=approved")
                for filters in ({"status": "pending"}, {"offer_id": a.offers["o1"]["id"]}, {"partner_id": a.partners["p2"]["id"]}):
                    query = "&".join(f"{name}={value}" for name, value in filters.items())
                    assert_same(await session.pages("list_conversions", filters, 100), http.all_pages(f"/api/public/conversions?{query}", a.key), f"list_conversions {filters} vs REST")
                for conversion in truth_a.conversions:
                    assert_same(await session.call("get_conversion", {"id": conversion["id"]}), http.ok("GET", f"/api/public/conversions/{conversion['id']}", key=a.key), f"get_conversion {conversion['id']}")

            await runner.check(t + "list_and_get_conversions_match_rest", conversions)

            async def rules() -> None:
                assert_same(await session.pages("list_pricing_rules", {}, 25), truth_a.rules, "list_pricing_rules vs REST")
                for offer in truth_a.offers:
                    expected = http.all_pages(f"/api/public/pricing-rules?offer_id={offer['id']}", a.key)
                    assert_same(await session.pages("list_pricing_rules", {"offer_id": offer["id"]}, 25), expected, f"list_pricing_rules offer_id={offer['id']}")
                if len(truth_a.rules) != 1:
                    fail(f"expected brand A's one pricing rule, REST has {len(truth_a.rules)}")

            await runner.check(t + "list_pricing_rules_matches_rest", rules)

            async def activity() -> None:
                # Captures are long done: that slice of the log is stable.
                expected = http.all_pages("/api/public/activity?source=capture", a.key)
                if len(expected) != len(PLAN_A["clicks"]):
                    fail(f"REST activity source=capture has {len(expected)} entries, expected {len(PLAN_A['clicks'])}")
                assert_same(await session.pages("list_activity", {"source": "capture"}, 3), expected, "list_activity source=capture vs REST")
                window = {"source": "capture", "from": expected[-1]["at"], "to": expected[0]["at"]}
                got = await session.pages("list_activity", window, 100)
                assert_same(got, http.all_pages(f"/api/public/activity?source=capture&from={window['from']}&to={window['to']}", a.key), "list_activity capture from/to vs REST")
                everything = await session.pages("list_activity", {}, 100)
                sources = Counter(entry.get("source") for entry in everything)
                if sources["capture"] != len(expected) or sources["api"] == 0:
                    fail(f"list_activity without a source filter: {dict(sources)}")

            await runner.check(t + "list_activity_matches_rest", activity)

            async def stats() -> None:
                default = await session.call("get_program_stats", {})
                check_totals(default["totals"], truth_a.totals, "get_program_stats {} totals (default last 30 days)")
                if default.get("to_day") != today.isoformat():
                    fail(f"default to_day is {default.get('to_day')!r}, expected today {today.isoformat()}")
                if default.get("from_day") not in ((today - dt.timedelta(days=29)).isoformat(), (today - dt.timedelta(days=30)).isoformat()):
                    fail(f"default from_day is {default.get('from_day')!r}: not 30 days back from {today}")
                result = await session.call("get_program_stats", week)
                assert_same({"from_day": result.get("from_day"), "to_day": result.get("to_day")}, week, "get_program_stats range")
                check_totals(result["totals"], truth_a.totals, "get_program_stats totals")
                days = {row["day"]: row for row in result.get("days", [])}
                for day, expected in truth_a.days.items():
                    if day not in days:
                        fail(f"get_program_stats days lacks {day}: {short(result.get('days'))}")
                    check_totals(days[day], expected, f"get_program_stats day {day}")
                stray = [row for day, row in days.items() if day not in truth_a.days and any(totals_of(row)[name] for name in ("clicks", "conversions"))]
                if stray:
                    fail(f"get_program_stats counts days without events: {short(stray)}")
                if result.get("groups"):
                    fail(f"groups without group_by: {short(result['groups'])}")
                for group_by, truth in (("offer", truth_a.by_offer), ("partner", truth_a.by_partner)):
                    grouped = await session.call("get_program_stats", dict(week, group_by=group_by))
                    check_totals(grouped["totals"], truth_a.totals, f"get_program_stats group_by={group_by} totals")
                    groups = {row["id"]: row for row in grouped.get("groups", [])}
                    for group_id, expected in truth.items():
                        if group_id not in groups:
                            fail(f"group_by={group_by} lacks {group_id}: {short(grouped.get('groups'))}")
                        check_totals(groups[group_id], expected, f"get_program_stats {group_by} {group_id}")
                    foreign = set(groups) & ids_b
                    if foreign:
                        fail(f"group_by={group_by} shows brand B's ids {foreign}")
                # `limit` caps the groups, most clicks first; group_count still counts them all.
                capped = await session.call("get_program_stats", dict(week, group_by="partner", limit=1))
                assert_same([row["id"] for row in capped.get("groups", [])], [a.partners["p1"]["id"]], "get_program_stats group_by=partner limit=1")
                if capped.get("group_count") != len(truth_a.by_partner):
                    fail(f"group_count is {capped.get('group_count')!r}, expected {len(truth_a.by_partner)} partners with events")
                old = await session.call("get_program_stats", {"from_day": "2020-01-01", "to_day": "2020-01-31"})
                check_totals(old["totals"], empty_totals(), "get_program_stats for a month without events")

            await runner.check(t + "get_program_stats_counts_the_seed", stats)

            async def top() -> None:
                p1, p2 = a.partners["p1"]["id"], a.partners["p2"]["id"]
                default = await session.call("get_top_partners", week)
                if default.get("by") != "conversions":
                    fail(f"get_top_partners default by is {default.get('by')!r}")
                for by, leader in (("conversions", p1), ("clicks", p1), ("revenue", None), ("payout", p1)):
                    result = await session.call("get_top_partners", dict(week, by=by))
                    rows = result.get("partners", [])
                    ids = [row["partner_id"] for row in rows]
                    if set(ids) & ids_b:
                        fail(f"get_top_partners by={by} shows brand B's partners")
                    active = [partner_id for partner_id in (p1, p2)]
                    if not set(active) <= set(ids):
                        fail(f"get_top_partners by={by} lacks partners with events: {ids}")
                    if leader and ids[0] != leader:
                        fail(f"get_top_partners by={by}: first is {ids[0]}, expected {leader} ({short(rows)})")
                    for row in rows:
                        check_totals(row, truth_a.by_partner.get(row["partner_id"], empty_totals()), f"get_top_partners by={by} {row['partner_id']}")
                one = await session.call("get_top_partners", dict(week, by="clicks", limit=1))
                assert_same([row["partner_id"] for row in one.get("partners", [])], [p1], "get_top_partners limit=1")
                # Money rankings compare in one currency: only p1 earned anything in EUR.
                euro = await session.call("get_top_partners", dict(week, by="revenue", currency="EUR"))
                if euro.get("currency") != "EUR" or not euro.get("partners") or euro["partners"][0]["partner_id"] != p1:
                    fail(f"get_top_partners by=revenue currency=EUR: {short(euro)}")
                usd = await session.call("get_top_partners", dict(week, by="revenue"))
                if usd.get("currency") != "USD" or usd["partners"][0]["partner_id"] != p1:
                    fail(f"get_top_partners by=revenue (default USD): {short(usd)}")

            await runner.check(t + "get_top_partners_ranks_the_seed", top)

            async def fraud() -> None:
                result = await session.call("get_fraud_summary", week)
                assert_same({"from_day": result.get("from_day"), "to_day": result.get("to_day")}, week, "get_fraud_summary range")
                assert_same({"clicks": result.get("clicks"), "flagged_clicks": result.get("flagged_clicks")}, {"clicks": truth_a.totals["clicks"], "flagged_clicks": truth_a.totals["flagged_clicks"]}, "get_fraud_summary counts")
                signals = {kind: count for kind, count in (result.get("signals") or {}).items() if count}
                assert_same(signals, dict(truth_a.signal_kinds), "get_fraud_summary signals vs REST /fraud-signals")
                share = result.get("flagged_share")
                if share is not None and abs(share - truth_a.totals["flagged_clicks"] / truth_a.totals["clicks"]) > 1e-9:
                    fail(f"flagged_share is {share}")
                # Both bot clicks came through p1; p2 had none flagged.
                p1 = a.partners["p1"]["id"]
                flagged = [row for row in result.get("top_flagged_partners") or [] if not isinstance(row, dict) or row.get("flagged_clicks", 1)]
                expected_row = {"partner_id": p1, "clicks": truth_a.by_partner[p1]["clicks"], "flagged_clicks": truth_a.by_partner[p1]["flagged_clicks"]}
                assert_same(flagged, [expected_row], "top_flagged_partners (with flagged clicks)")
                days = result.get("days")
                if isinstance(days, list):
                    summed = Counter()
                    for row in days:
                        summed["clicks"] += row.get("clicks", 0)
                        summed["flagged_clicks"] += row.get("flagged_clicks", 0)
                        summed.update({f"signal:{kind}": count for kind, count in (row.get("signals") or {}).items()})
                    expected_sum = Counter({"clicks": truth_a.totals["clicks"], "flagged_clicks": truth_a.totals["flagged_clicks"]})
                    expected_sum.update({f"signal:{kind}": count for kind, count in truth_a.signal_kinds.items()})
                    assert_same(dict(+summed), dict(expected_sum), "get_fraud_summary days, added up")
                default = await session.call("get_fraud_summary", {})
                if default.get("clicks") != truth_a.totals["clicks"]:
                    fail(f"get_fraud_summary {{}} (last 30 days) counts {default.get('clicks')} clicks")

            await runner.check(t + "get_fraud_summary_counts_the_seed", fraud)

            async def unknown_ids() -> None:
                for tool, missing in (("get_offer", "off_0000000000000000000000"), ("get_partner", "ptr_0000000000000000000000"), ("get_conversion", "cnv_0000000000000000000000")):
                    text = await session.call_error(tool, {"id": missing})
                    lowered = text.lower()
                    if missing not in text and "not found" not in lowered and "no " not in lowered:
                        fail(f"{tool} unknown id message does not say what is missing: {text!r}")

            await runner.check(t + "unknown_ids_are_tool_errors", unknown_ids)

            async def bad_arguments() -> None:
                await session.call_error("list_offers", {"limit": 0})
                await session.call_error("list_offers", {"limit": 101})
                await session.call_error("list_clicks", {"cursor": "not-a-cursor"})
                await session.call_error("list_activity", {"source": "carrier-pigeon"})
                await session.call_error("list_conversions", {"status": "maybe"})
                await session.call_error("get_program_stats", {"from_day": "2026-13-45", "to_day": "2026-01-01"})
                await session.call_error("get_program_stats", {"from_day": week["to_day"], "to_day": week["from_day"]})
                await session.call_error("get_top_partners", dict(week, by="vibes"))
                await session.call_error("get_offer", {})
                await session.call_error("list_offers", {"bogus": 1})
                await session.call_error("get_program_stats", {"group_by": "planet"})

            await runner.check(t + "bad_arguments_are_tool_errors", bad_arguments)

            async def isolation() -> None:
                for tool, items in (("get_offer", truth_b.offers), ("get_partner", truth_b.partners), ("get_conversion", truth_b.conversions)):
                    for item in items:
                        await session.call_error(tool, {"id": item["id"]})
                seen: set[str] = set()
                for tool in ("list_offers", "list_partners", "list_conversions", "list_pricing_rules"):
                    seen |= {item["id"] for item in await session.pages(tool, {}, 100)}
                seen |= {click["click_id"] for click in await session.pages("list_clicks", {}, 100)}
                if seen & ids_b:
                    fail(f"brand A's lists show brand B's ids: {sorted(seen & ids_b)}")
                ob1, pb1 = b.offers["ob1"]["id"], b.partners["pb1"]["id"]
                for tool, filters in (("list_clicks", {"offer_id": ob1}), ("list_clicks", {"partner_id": pb1}), ("list_conversions", {"offer_id": ob1}), ("list_pricing_rules", {"offer_id": ob1})):
                    result = await session.client.call_tool(tool, filters)
                    if not result.is_error and (result.structured_content or {}).get("data"):
                        fail(f"{tool} {filters} with brand B's id shows data: {short(result.structured_content)}")

            await runner.check(t + "brand_a_never_sees_brand_b", isolation)

            # 202 is the answer to the handshake's notifications/initialized.
            if any(status not in (200, 202) for status in session.statuses):
                await runner.check(t + "all_http_answers_2xx", lambda: _raise(f"HTTP statuses seen: {Counter(session.statuses)}"))
            else:
                await runner.check(t + "all_http_answers_2xx", _noop)
    except Exception as error:  # noqa: BLE001 - a connection that fails is one failed check
        runner.record(f"{mode}_connects_with_brand_a_key", error)
        return

    async def brand_b_view() -> None:
        async with connect(url, b.key, mode) as session:
            assert_same(await session.call("whoami"), truth_b.whoami, "brand B whoami")
            assert_same(await session.pages("list_offers", {}, 100), truth_b.offers, "brand B list_offers")
            assert_same(await session.pages("list_clicks", {}, 100), truth_b.clicks, "brand B list_clicks")
            for item in truth_a.offers:
                await session.call_error("get_offer", {"id": item["id"]})
            result = await session.call("get_program_stats", week)
            check_totals(result["totals"], truth_b.totals, "brand B get_program_stats totals")
            summary = await session.call("get_fraud_summary", week)
            if summary.get("flagged_clicks") != 0 or summary.get("clicks") != 3:
                fail(f"brand B get_fraud_summary: {short(summary)}")

    await runner.check(f"{mode}_brand_b_key_sees_only_brand_b", brand_b_view)


async def _noop() -> None:
    return None


async def _raise(message: str) -> None:
    fail(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="check the client code against fastmcp_baseline.py only")
    args = parser.parse_args()
    runner = Runner()
    # A SIGTERM (a CI timeout) still stops the child servers through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    if args.baseline:
        anyio.run(run_baseline, runner)
    else:
        binary = os.environ.get("TRCKER_LOCAL_BIN", "")
        endpoint = os.environ.get("TRCKER_TEST_DYNAMODB_ENDPOINT", "")
        if not binary or not os.access(binary, os.X_OK) or not endpoint:
            runner.record(
                "environment",
                AssertionError("set TRCKER_LOCAL_BIN (the trcker-local binary) and TRCKER_TEST_DYNAMODB_ENDPOINT (moto; scripts/test starts it)"),
            )
        else:
            anyio.run(run_trcker, runner, binary, endpoint)
    print(f"(took {time.monotonic() - started:.1f} s)")
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
