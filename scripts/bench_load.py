"""Load benchmark driver for scripts/bench-load: wrk against trcker-local (release build).

Three phases, all in one run so the ratios compare like with like:
1. saturation, in-memory store: health (the baseline), then each authenticated route, wrk with
   as many connections as it takes to saturate; requests/s, latency, errors, the ratio to health;
2. paced, in-memory store: each route again at half of its own saturation rate, for its p99;
3. DynamoDB backend on moto: the authenticated routes again, with the CPU time moto and the
   gateway each used, to show which part of the time is ours and which the emulator's.
Peak RSS of the in-memory gateway is read from /proc (VmHWM) at the end of phases 1 and 2.
Writes .tmp/bench-load.md (tables) and docs/bench/load.svg (chart).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / ".tmp"
LOCAL = ROOT / "target/release/trcker-local"
LUA = ROOT / "scripts/wrk-load.lua"
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
USER_AGENT = "Mozilla/5.0 (bench-load)"
RATIO_TARGET = 0.70
P99_TARGET_MS = 5.0
RSS_TARGET_MB = 40.0
# moto serves one request at a time (scripts/moto_server.py); 32 connections queue past the SDK's
# 2 s operation timeout and turn into 503s, so the DynamoDB phase runs with a few connections.
MOTO_CONNECTIONS = int(os.environ.get("MOTO_CONNECTIONS", "4"))


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    mode: str  # wrk-load.lua WRK_MODE: get | capture | mcp
    auth: str  # none | bearer | x-api-key
    label: str


ROUTES = [
    Route("health", "/api/public/health", "get", "none", "health `GET /api/public/health` (no auth, no audit)"),
    Route("whoami", "/api/public/whoami", "get", "bearer", "whoami `GET /api/public/whoami`"),
    Route("list-clicks", "/api/public/clicks?limit=25", "get", "bearer", "list clicks `GET /api/public/clicks?limit=25`"),
    Route("capture", "/api/clicks/capture", "capture", "x-api-key", "capture `POST /api/clicks/capture` (new click each time)"),
    Route("mcp-tools-call", "/api/mcp", "mcp", "bearer", "MCP `tools/call list_offers` (limit 25)"),
]


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def parse_wrk(output: str) -> WrkResult:
    def field(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            return match.group(1)
        if default is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return default

    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        rps=float(field(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=millis(field(r"^\s+50%\s+(\S+)")),
        p99_ms=millis(field(r"^\s+99%\s+(\S+)")),
        requests=int(field(r"^\s+(\d+) requests in")),
        non_2xx=int(field(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


class Gateway:
    """trcker-local on a free loopback port; the memory store prints its demo key."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.out = TMP / f"bench-load-{name}.out"
        self.err = TMP / f"bench-load-{name}.err"
        full_env = dict(os.environ)
        full_env.update(env)
        # Budgets far above what wrk can send, so the benchmark measures serving, not refusing.
        # One trusted hop: capture sends a client address in X-Forwarded-For, as a CDN would.
        full_env.update(
            TRCKER_RATE_LIMIT_PER_MINUTE="1000000000",
            TRCKER_CAPTURE_RATE_LIMIT_PER_MINUTE="1000000000",
            TRCKER_TRUSTED_PROXY_HOPS="1",
        )
        self.process = subprocess.Popen(
            [str(LOCAL), "--port", str(self.port), *args],
            stdout=self.out.open("w"),
            stderr=self.err.open("w"),
            env=full_env,
        )
        deadline = time.monotonic() + 60
        while "listening on" not in self.out.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"trcker-local did not start:\n{self.err.read_text()}")
            time.sleep(0.1)
        match = re.search(r"^demo key: (\S+)$", self.out.read_text(), re.MULTILINE)
        self.key = match.group(1) if match else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def call(self, method: str, path: str, body: object | None = None, key: str | None = None) -> dict:
        request = urllib.request.Request(
            self.origin + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
            | ({"Authorization": f"Bearer {key or self.key}"} if (key or self.key) else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else {}


def run_wrk(
    gateway: Gateway, route: Route, seconds: int, paced_connections_count: int | None = None, connections: int = CONNECTIONS
) -> WrkResult:
    connections = paced_connections_count or connections
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"User-Agent: {USER_AGENT}", "-s", str(LUA)]
    if route.auth == "bearer":
        args += ["-H", f"Authorization: Bearer {gateway.key}"]
    elif route.auth == "x-api-key":
        args += ["-H", f"x-api-key: {gateway.key}"]
    env = dict(os.environ, WRK_MODE=route.mode)
    if paced_connections_count is not None:
        env["WRK_DELAY_MS"] = str(PACED_DELAY_MS)
    output = subprocess.run([*args, gateway.origin + route.path], env=env, capture_output=True, text=True, check=True).stdout
    (TMP / f"wrk-{route.name}{'-paced' if paced_connections_count is not None else ''}.txt").write_text(output)
    return parse_wrk(output)


def seed_dynamodb(gateway: Gateway) -> None:
    """A brand, its key, the offer and partner capture names, and some clicks to list."""
    import boto3  # in the venv (moto and checkov bring it)

    # Signed by the SDK, as `aws lambda invoke` signs it: trcker-local refuses an unsigned invoke.
    keys = boto3.client("lambda", endpoint_url=gateway.origin, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")

    def invoke(payload: dict) -> dict:
        return json.loads(keys.invoke(FunctionName="keys", Payload=json.dumps(payload).encode())["Payload"].read())

    invoke({"action": "create_brand", "brand_id": "bench", "name": "Bench"})
    generated = invoke({"action": "generate", "brand_id": "bench", "label": "bench"})
    gateway.key = generated["key"]
    gateway.call("POST", "/api/public/partners", {"name": "Alice Media", "email": "alice@media.example", "slug": "alice-media", "status": "active"})
    gateway.call(
        "POST",
        "/api/public/offers",
        {
            "name": "Summer Sale",
            "slug": "summer-sale",
            "destination_url": "https://shop.example/summer-sale",
            "default_payout": {"type": "flat", "amount": 10, "currency": "USD"},
        },
    )


PACED_DELAY_MS = 4


def paced_connections(target_rps: float, p50_ms: float) -> int:
    """Connections that, each pausing PACED_DELAY_MS before every request, send about target_rps.

    wrk's delay() has whole-millisecond resolution, so the pause is fixed and the connection count
    sets the rate: rate = connections * 1000 / (pause + latency). The latency of a paced request
    is estimated as half its latency at saturation; the achieved rate is measured and reported.
    """
    return max(2, round(target_rps * (PACED_DELAY_MS + p50_ms / 2) / 1000))


def chart(saturation: dict[str, WrkResult], moto: dict[str, tuple[WrkResult, float]], path: Path) -> None:
    """A horizontal bar chart (SVG) of requests/s per route, memory store and moto, with the 70% line."""
    names = [route.name for route in ROUTES]
    health = saturation["health"].rps
    top = max(result.rps for result in saturation.values()) * 1.1
    row, left, width = 34, 150, 560
    height = 70 + row * len(names) + 40
    scale = width / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 150}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">trcker-local requests/s (wrk -c{CONNECTIONS}, 2 vCPU shared with wrk)</text>',
        '<rect x="10" y="32" width="12" height="10" fill="#4878a8"/><text x="26" y="41">in-memory store</text>',
        '<rect x="140" y="32" width="12" height="10" fill="#e8a040"/><text x="156" y="41">DynamoDB on moto</text>',
        f'<line x1="{left + RATIO_TARGET * health * scale:.1f}" y1="50" x2="{left + RATIO_TARGET * health * scale:.1f}" y2="{height - 30}" stroke="#c03030" stroke-dasharray="4,3"/>',
        f'<text x="{left + RATIO_TARGET * health * scale + 4:.1f}" y="{height - 18}" fill="#c03030">70% of health</text>',
    ]
    for index, name in enumerate(names):
        y = 60 + index * row
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{name}</text>')
        memory = saturation[name].rps
        parts.append(f'<rect x="{left}" y="{y}" width="{memory * scale:.1f}" height="12" fill="#4878a8"/>')
        parts.append(f'<text x="{left + memory * scale + 4:.1f}" y="{y + 11}">{memory:,.0f} ({memory / health:.0%})</text>')
        if name in moto:
            rps = moto[name][0].rps
            parts.append(f'<rect x="{left}" y="{y + 14}" width="{max(rps * scale, 1):.1f}" height="10" fill="#e8a040"/>')
            parts.append(f'<text x="{left + max(rps * scale, 1) + 4:.1f}" y="{y + 23}">{rps:,.0f}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=int, default=30, help="seconds per route and phase (default 30)")
    parser.add_argument("--skip-moto", action="store_true", help="leave out phase 3 (DynamoDB on moto)")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 1
    TMP.mkdir(exist_ok=True)
    seconds = options.seconds

    gateway = Gateway("memory", [], {})
    rss_start = rss_mb(gateway.process.pid, "VmRSS")
    saturation: dict[str, WrkResult] = {}
    paced: dict[str, tuple[WrkResult, float, int]] = {}
    try:
        for route in ROUTES:
            saturation[route.name] = run_wrk(gateway, route, seconds)
            print(f"saturation {route.name}: {saturation[route.name].rps:,.0f} req/s", flush=True)
        for route in ROUTES:
            target = saturation[route.name].rps / 2
            connections = paced_connections(target, saturation[route.name].p50_ms)
            result = run_wrk(gateway, route, seconds, connections)
            paced[route.name] = (result, result.rps / saturation[route.name].rps, connections)
            print(f"paced {route.name}: {result.rps:,.0f} req/s, p99 {result.p99_ms:.2f} ms", flush=True)
        rss_end = rss_mb(gateway.process.pid, "VmRSS")
        rss_peak = rss_mb(gateway.process.pid, "VmHWM")
    finally:
        gateway.stop()

    moto: dict[str, tuple[WrkResult, float]] = {}
    if not options.skip_moto:
        moto = moto_phase(seconds)

    health = saturation["health"].rps
    lines = [
        f"wrk -t2 -c{CONNECTIONS}, {seconds} s per route and phase; trcker-local release build; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"| route | saturation req/s | ratio to health | p50 / p99 at saturation | paced req/s (share of saturation; each connection pauses {PACED_DELAY_MS} ms per request) | p99 paced | errors (non-2xx + socket) |",
        "|---|---|---|---|---|---|---|",
    ]
    for route in ROUTES:
        result = saturation[route.name]
        paced_result, share, connections = paced[route.name]
        errors = result.non_2xx + result.socket_errors + paced_result.non_2xx + paced_result.socket_errors
        lines.append(
            f"| {route.label} | {result.rps:,.0f} | {result.rps / health:.2f} | {result.p50_ms:.2f} / {result.p99_ms:.2f} ms "
            f"| {paced_result.rps:,.0f} ({share:.0%}, {connections} connections) | {paced_result.p99_ms:.2f} ms | {errors} |"
        )
    lines += ["", f"In-memory gateway RSS: start {rss_start:.1f} MB, end {rss_end:.1f} MB, peak (VmHWM) {rss_peak:.1f} MB."]
    verdicts = [
        f"- ratio >= {RATIO_TARGET:.0%} of health: "
        + ", ".join(f"{route.name} {'met' if saturation[route.name].rps / health >= RATIO_TARGET else 'NOT met'}" for route in ROUTES[1:]),
        f"- p99 < {P99_TARGET_MS:g} ms at about half of saturation: "
        + ", ".join(f"{route.name} {'met' if paced[route.name][0].p99_ms < P99_TARGET_MS else 'NOT met'}" for route in ROUTES),
        f"- peak RSS < {RSS_TARGET_MB:g} MB: {'met' if rss_peak < RSS_TARGET_MB else 'NOT met'} ({rss_peak:.1f} MB)",
        "- zero errors: "
        + ("met" if all(r.non_2xx + r.socket_errors == 0 for r in [*saturation.values(), *(p for p, _, _ in paced.values())]) else "NOT met"),
    ]
    lines += ["", "Targets:", *verdicts]
    if moto:
        lines += [
            "",
            f"DynamoDB backend (trcker-local --store dynamodb) on moto, wrk -c{MOTO_CONNECTIONS}, saturation:",
            "",
            "| route | req/s | p50 / p99 | errors | moto's share of the CPU time (moto / (moto + gateway)) |",
            "|---|---|---|---|---|",
        ]
        for name, (result, share) in moto.items():
            lines.append(
                f"| {name} | {result.rps:,.0f} | {result.p50_ms:.2f} / {result.p99_ms:.2f} ms | {result.non_2xx + result.socket_errors} | {share:.0%} |"
            )
    report = "\n".join(lines) + "\n"
    (TMP / "bench-load.md").write_text(report)
    chart(saturation, moto, ROOT / "docs/bench/load.svg")
    print(report)
    print("chart: docs/bench/load.svg")
    return 0


def moto_phase(seconds: int) -> dict[str, tuple[WrkResult, float]]:
    """Phase 3: the DynamoDB store on a moto server of its own, with each side's CPU time."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    aws_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TRCKER_KEYS_TABLE": "bench-keys",
        "TRCKER_DATA_TABLE": "bench-data",
    }
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/moto_server.py"), str(port)],
        stdout=(TMP / "bench-load-moto.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    results: dict[str, tuple[WrkResult, float]] = {}
    gateway = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if moto.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto did not start; see .tmp/bench-load-moto.log")
                time.sleep(0.2)
        gateway = Gateway("dynamodb", ["--store", "dynamodb", "--create-tables"], aws_env)
        seed_dynamodb(gateway)
        # Clicks to list: one short capture run first.
        capture = next(route for route in ROUTES if route.name == "capture")
        run_wrk(gateway, capture, 3)
        for route in ROUTES[1:]:
            moto_before, gateway_before = cpu_seconds(moto.pid), cpu_seconds(gateway.process.pid)
            result = run_wrk(gateway, route, seconds, connections=MOTO_CONNECTIONS)
            moto_used = cpu_seconds(moto.pid) - moto_before
            gateway_used = cpu_seconds(gateway.process.pid) - gateway_before
            results[route.name] = (result, moto_used / max(moto_used + gateway_used, 1e-9))
            print(f"moto {route.name}: {result.rps:,.0f} req/s, moto share {results[route.name][1]:.0%}", flush=True)
    finally:
        if gateway:
            gateway.stop()
        moto.terminate()
        moto.wait(timeout=10)
    return results


if __name__ == "__main__":
    sys.exit(main())
