#!/usr/bin/env python3
"""Cold-start benchmark driver for scripts/bench-cold-start: each release function binary, and a
hello-world `lambda_http` baseline that makes the functions' two network calls at init, started
again and again against a minimal Lambda Runtime API served here on loopback, on moto as DynamoDB
and Secrets Manager.

    scripts/bench-cold-start [--runs N] ...   # builds the release binaries, then runs this

Per run (a fresh process each time, as a Lambda cold start, with its own Runtime API on a fresh
loopback port), with times taken on this side of the Runtime API:
- init: from just before exec to the first `GET /2018-06-01/runtime/invocation/next` (the
  functions fetch the pepper and build their AWS clients before that, as in AWS);
- first response: from exec to the first `POST .../invocation/{id}/response`;
- first invoke: from handing out the first event to its response (what a cold request waits on
  top of init);
- warm invoke: the same for the 2nd and later events of the run (a short pause before each, so
  whatever the previous request left running has finished, as between real requests).
And from the process's own log: every binary logs one `init finished` line (JSON, info) just
before its runtime loop (`trcker_shared::bootstrap::InitClock`), parsed from each run's log:
- in-process init: `init_us`, from the start of `main` (before the async runtime is built) to
  that line (so without the exec, the loader and the process start that `init` above counts);
- network wait: `network_us`, the part of it spent waiting on the joined pepper fetch and store
  warm-up (the baseline: the same two calls);
- init without network: `init_us - network_us` per run, the binary's own init work.
Runs of the binaries are interleaved (run 1 of each, then run 2 of each, ...) so a busy moment of
the machine does not fall on one binary only. One discarded warm-up run per binary first.

The baseline (infra/cold-start-baseline) answers "hello" but does at init what every function
does: the SDK configuration of `trcker_shared::bootstrap::load_aws_config` (same timeout and trust
settings), then, concurrently, the pepper secret's `GetSecretValue` and the warm-up `GetItem` on
the keys table. So 'init / baseline' compares the functions' own start-up against the same
network work (target `INIT_RATIO_TARGET`).

The functions, and the baseline, run with their environment as in infra/template.yaml (tables,
the pepper secret's ARN, allowed hosts), against this script's own moto on a free port. DynamoDB
and Secrets Manager get different endpoint host names (`127.0.0.1` and `localhost`), as they have
in AWS: a connection opened for the pepper fetch is not reused by the first DynamoDB call
(`--shared-endpoint` to turn this off). moto closes every connection after one response; `--tls`
puts scripts/tls_keepalive_proxy.py in between (HTTPS, keep-alive), so connections are reused and
the first call on each pays a TLS handshake, as with AWS endpoints. Setup through the same Runtime
API: the keys function creates the `demo` brand and a key, the public API function the offer
capture's event names.

Also reports each binary's size, stripped size and the size of a Lambda zip of it (the binary as
`bootstrap`). Writes .tmp/bench-cold-start.md (tables, targets), .tmp/bench-cold-start.json (every
sample) and docs/bench/cold-start.svg (chart).

Memory and CPU share (off unless asked: `--warm-invocations N`, `--cpu-shares MB,MB,...`), after
the cold runs: each binary is started once more per phase and sent one cold event and N warm ones
(its usual event, `--warm-pause-ms` before each warm one), through a keep-alive proxy that holds
every answer from moto back by `--latency-ms` (default 5, a stand-in for DynamoDB's latency:
moto alone answers in well under a millisecond, which would leave only CPU in a duration):
- full-CPU phase: peak RSS (`VmHWM`) and `VmRSS` from /proc/<pid>/status after the N warm
  invocations (target: under 40 MiB), CPU time per warm invocation (utime + stime from
  /proc/<pid>/stat over the N, divided by N), and the warm invoke's duration without a limit;
- one phase per `--cpu-shares` size: the process in a cgroup v1 CPU group (/sys/fs/cgroup/cpu)
  with `cpu.cfs_quota_us` = share x `cpu.cfs_period_us`, share = MB / 1769 (Lambda gives one
  full vCPU at 1,769 MB); the period is set to `--cfs-period-us` first (default 20 ms, the
  throttling interval observed in Lambda). The group is removed afterwards, even on error. If
  the group cannot be made, the duration is estimated from the full-CPU phase instead, per
  invocation: wall - cpu + cpu / share (said so in the output);
- cost per million requests at each size: the median warm invoke at that share, rounded up to
  whole ms as Lambda bills, x GB x the price per GB-second, plus the price per request (x86 list
  prices), and per function the MemorySize with the lowest cost (as Lambda Power Tuning picks).
Tables in the Markdown output; chart docs/bench/cost-per-million.svg (`--cost-svg`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_lambda import Process, free_port, url_answers, wait_until  # noqa: E402
from tls_keepalive_proxy import KeepAliveProxy, TlsKeepAliveProxy, make_certificate, trust_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / ".tmp"
WORK = TMP / "bench-cold-start"
REGION = "us-east-1"
ACCOUNT = "123456789012"
MCP_HOST = "api.trcker.example"  # the Host header of the sample events
RUN_TIMEOUT_S = 60.0
INIT_RATIO_TARGET = 1.2  # init median against the baseline's, which makes the same network calls
FIRST_TO_WARM_TARGET = 3.0
ZIP_TARGET_BYTES = 5 * 1024 * 1024
PEAK_RSS_TARGET_KIB = 40 * 1024  # under 40 MiB (Lambda's memory sizes are MiB)
# Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion below that.
FULL_VCPU_MB = 1769
# AWS Lambda list prices, x86, us-east-1 (first pricing tier): USD 0.0000166667 per GB-second of
# duration and USD 0.20 per million requests. Duration is billed in 1 ms steps.
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_MILLION_REQUESTS = 0.20
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_PREFIX = "trcker-bench-cpu-"
BASELINE = "cold-start-baseline"
FUNCTIONS = ("keys", "public-api", "capture", "mcp")


def log(message: str) -> None:
    print(message, flush=True)


def now_ns() -> int:
    return time.perf_counter_ns()


# ---------------------------------------------------------------------------------------------
# The Lambda Runtime API, as much of it as a function uses: next, response, error, init error.


@dataclass
class Session:
    """One function process's life: the events it gets, and when each step happened."""

    events: list[bytes]
    pause_s: float
    # Called with the event's index just before an event is handed out (after the pause).
    on_deliver: Callable[[int], None] | None = None
    next_at: list[int] = field(default_factory=list)
    delivered_at: list[int] = field(default_factory=list)
    responded_at: list[int] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A stopped function drops its connections: not an error of the benchmark.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """A Runtime API for one function process, on its own loopback port: a process stopped
    mid-request (its last poll in flight) can never take the next process's event."""

    def __init__(self, session: Session) -> None:
        self.session = session

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - the base's name
                arrived = now_ns()
                if self.path != "/2018-06-01/runtime/invocation/next" or session.ended.is_set():
                    self.reply(404, b'{"errorMessage":"not found"}')
                    return
                with session.lock:
                    session.next_at.append(arrived)
                    index = len(session.delivered_at)
                    if index < len(session.events):
                        session.delivered_at.append(0)  # claimed; the time is set below
                if index >= len(session.events):
                    # Nothing more for this process: hold the poll until the run stops it.
                    session.ended.wait(RUN_TIMEOUT_S)
                    self.close_connection = True
                    return
                if index > 0 and session.pause_s > 0:
                    time.sleep(session.pause_s)
                body = session.events[index]
                if session.on_deliver is not None:
                    session.on_deliver(index)
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": f"bench-{index}",
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                    "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench",
                    "Lambda-Runtime-Trace-Id": f"Root=1-00000000-{secrets.token_hex(12)};Sampled=0",
                }
                session.delivered_at[index] = now_ns()
                self.reply(200, body, headers)

            def do_POST(self) -> None:  # noqa: N802 - the base's name
                body = self.read_body()
                arrived = now_ns()
                match = re.fullmatch(r"/2018-06-01/runtime/invocation/bench-(\d+)/(response|error)", self.path)
                if self.path == "/2018-06-01/runtime/init/error":
                    session.error = f"init error: {body.decode(errors='replace')}"
                    session.done.set()
                elif match and match.group(2) == "error":
                    session.error = f"invocation {match.group(1)} error: {body.decode(errors='replace')}"
                    session.done.set()
                elif match:
                    with session.lock:
                        if int(match.group(1)) != len(session.responses):
                            session.error = f"response to bench-{match.group(1)} out of order"
                        session.responded_at.append(arrived)
                        session.responses.append(body)
                        if len(session.responses) == len(session.events):
                            session.done.set()
                else:
                    self.reply(404, b'{"errorMessage":"not found"}')
                    return
                self.reply(202, b'{"status":"OK"}')

            def read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.session.ended.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Hooks:
    """What a run does beside feeding events (the warm invocations' measurements): with the process
    just started, with each event about to be handed out, and with every response in (the process
    still alive, before it is stopped)."""

    started: Callable[[subprocess.Popen[bytes]], None] | None = None
    deliver: Callable[[subprocess.Popen[bytes], int], None] | None = None
    finished: Callable[[subprocess.Popen[bytes]], None] | None = None


def run_process(binary: Path, env: dict[str, str], events: list[bytes], pause_s: float, log_file: Any, hooks: Hooks | None = None) -> tuple[Session, int]:
    """Starts `binary` against a fresh Runtime API, feeds it `events`, stops it (SIGKILL, as a
    frozen container is reclaimed); the session and the time of exec."""
    hooks = hooks or Hooks()
    session = Session(events, pause_s)
    runtime = RuntimeApi(session)
    env = {**env, "AWS_LAMBDA_RUNTIME_API": runtime.address}
    started = now_ns()
    process = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=WORK)
    try:
        if hooks.deliver is not None:
            deliver = hooks.deliver
            session.on_deliver = lambda index: deliver(process, index)
        if hooks.started is not None:
            hooks.started(process)
        # The deadline is per response: a long warm phase is not cut off, a stuck one is.
        deadline, answered = time.monotonic() + RUN_TIMEOUT_S, 0
        while not session.done.wait(0.05):
            if process.poll() is not None:
                session.error = session.error or f"exited with status {process.returncode} after {len(session.responses)} of {len(events)} responses"
                break
            if len(session.responses) != answered:
                deadline, answered = time.monotonic() + RUN_TIMEOUT_S, len(session.responses)
            if time.monotonic() > deadline:
                session.error = f"no response {len(session.responses) + 1} within {RUN_TIMEOUT_S:.0f} s"
                break
        if session.error is None and hooks.finished is not None and process.poll() is None:
            hooks.finished(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        runtime.close()
    return session, started


# ---------------------------------------------------------------------------------------------
# Events: the sample events of events/, made unique where the function would dedupe them.


def load_event(path: str, key: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text().replace("{{KEY}}", key))


def http_event(base: dict[str, Any], method: str, path: str, body: Any, request_id: str) -> dict[str, Any]:
    event = json.loads(json.dumps(base))
    event["routeKey"] = f"{method} /api/public/{{proxy+}}"
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["routeKey"] = event["routeKey"]
    event["requestContext"]["requestId"] = request_id
    event["headers"]["content-type"] = "application/json"
    event["body"] = json.dumps(body)
    return event


@dataclass(frozen=True)
class Spec:
    """How to run one binary: its events, extra environment and what counts as success."""

    name: str
    memory_mb: int
    event: Callable[[str, int, int], dict[str, Any]]  # (key, run, invocation) -> event
    ok: Callable[[Any], bool]
    what: str
    extra_env: Callable[["Bench"], dict[str, str]]


def http_ok(*statuses: int) -> Callable[[Any], bool]:
    return lambda answer: isinstance(answer, dict) and answer.get("statusCode") in statuses


def whoami_event(key: str, run: int, invocation: int) -> dict[str, Any]:
    event = load_event("events/public-api/whoami.json", key)
    event["requestContext"]["requestId"] = f"bench-whoami-{run}-{invocation}"
    return event


def capture_event(key: str, run: int, invocation: int) -> dict[str, Any]:
    event = load_event("events/capture/capture-bearer.json", key)
    body = json.loads(event["body"])
    # A new click from a new address each time: the full new-click path, no duplicates, and the
    # per-address fraud counters see ordinary traffic.
    body["click_id"] = f"bench-{secrets.token_hex(4)}-{run}-{invocation}"
    body["landing_url"] = f"https://shop.example/landing?click_id={body['click_id']}"
    event["body"] = json.dumps(body)
    event["requestContext"]["http"]["sourceIp"] = source_address(run, invocation)
    event["requestContext"]["requestId"] = f"bench-capture-{run}-{invocation}"
    return event


def source_address(run: int, invocation: int) -> str:
    """A client address per (run, invocation): 198.51.x.y for the cold runs' few invocations; past
    those (the warm invocations) one of 198.18.0.0/15, the benchmarking range of RFC 2544."""
    if invocation < 150:
        return f"198.51.{100 + invocation}.{1 + run % 250}"
    number = (run * 7919 + invocation) % (1 << 17)
    return f"198.{18 + (number >> 16)}.{(number >> 8) & 255}.{number & 255}"


def mcp_event(key: str, run: int, invocation: int) -> dict[str, Any]:
    event = load_event("events/mcp/tools-call-list-offers.json", key)
    event["requestContext"]["requestId"] = f"bench-mcp-{run}-{invocation}"
    return event


def keys_event(key: str, run: int, invocation: int) -> dict[str, Any]:
    return load_event("events/keys/list.json", key)


def mcp_ok(answer: Any) -> bool:
    if not http_ok(200)(answer):
        return False
    try:
        return "result" in json.loads(answer.get("body") or "{}")
    except ValueError:
        return False


def keys_ok(answer: Any) -> bool:
    return isinstance(answer, dict) and "error" not in answer and isinstance(answer.get("keys", answer.get("data")), list)


SPECS = {
    # The baseline gets the functions' environment (tables, the pepper secret, endpoints): it makes
    # their two init calls.
    BASELINE: Spec(BASELINE, 128, whoami_event, http_ok(200), "hello world (pepper + `GetItem` at init), `GET /api/public/whoami` event", lambda bench: bench.data_env()),
    "keys": Spec("keys", 128, keys_event, keys_ok, "`list` (events/keys/list.json)", lambda bench: {}),
    "public-api": Spec("public-api", 256, whoami_event, http_ok(200), "`GET /api/public/whoami`", lambda bench: bench.data_env()),
    "capture": Spec(
        "capture",
        256,
        capture_event,
        http_ok(201),
        "`POST /api/clicks/capture`, a new click",
        lambda bench: {
            **bench.data_env(),
            "TRCKER_CAPTURE_RATE_LIMIT_PER_MINUTE": "6000",
            "TRCKER_CAPTURE_ALLOWED_ORIGINS": "https://shop.example",
            "TRCKER_TRUSTED_PROXY_HOPS": "0",
            "TRCKER_CAPTURE_IP_CLICKS_PER_HOUR": "50",
            "TRCKER_CAPTURE_REPEAT_WINDOW_SECONDS": "60",
        },
    ),
    "mcp": Spec("mcp", 256, mcp_event, mcp_ok, "`tools/call list_offers`", lambda bench: {**bench.data_env(), "TRCKER_MCP_ALLOWED_HOSTS": MCP_HOST}),
}


# ---------------------------------------------------------------------------------------------
# Measurements.


@dataclass
class Target:
    """A binary to measure: a spec and where its file is, under a label."""

    label: str
    spec: Spec
    path: Path
    init_ms: list[float] = field(default_factory=list)
    first_response_ms: list[float] = field(default_factory=list)
    first_invoke_ms: list[float] = field(default_factory=list)
    warm_invoke_ms: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    # From the `init finished` line of each cold run (empty for a build without it).
    process_init_ms: list[float] = field(default_factory=list)
    network_ms: list[float] = field(default_factory=list)
    own_init_ms: list[float] = field(default_factory=list)
    # Warm invocations (--warm-invocations): the full-CPU phase, then one phase per CPU share.
    memory_kib: dict[str, int] = field(default_factory=dict)  # VmHWM, VmRSS
    cpu_per_warm_ms: float = float("nan")
    full_cpu_ms: list[float] = field(default_factory=list)
    share_ms: dict[int, list[float]] = field(default_factory=dict)  # MemorySize (MB) -> warm invokes
    share_method: dict[int, str] = field(default_factory=dict)  # "cgroup" or "scaled"
    share_throttling: dict[int, dict[str, int]] = field(default_factory=dict)  # the group's cpu.stat


def median(values: list[float]) -> float:
    return statistics.median(values)


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def measure_sizes(target: Target) -> None:
    """Size as built, stripped (a stripped copy; equal when the profile strips) and zipped."""
    zips = WORK / "zips"
    zips.mkdir(parents=True, exist_ok=True)
    stripped = zips / f"{target.label}.bootstrap"
    shutil.copyfile(target.path, stripped)
    if shutil.which("strip"):
        # Not an ELF file (a wrapper script): measured as it is.
        subprocess.run(["strip", str(stripped)], check=False, capture_output=True)
    archive = zips / f"{target.label}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        bundle.writestr(info, stripped.read_bytes(), compresslevel=9)
    target.sizes = {"built": target.path.stat().st_size, "stripped": stripped.stat().st_size, "zip": archive.stat().st_size}
    stripped.unlink()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(4)
        self.endpoint = ""
        self.moto_port = 0
        self.moto: Process | None = None
        self.keys_table = f"trcker-bench-keys-{self.run_id}"
        self.data_table = f"trcker-bench-data-{self.run_id}"
        self.secret_arn = ""
        self.key = ""
        self.proxy: TlsKeepAliveProxy | None = None
        self.trust_bundle: Path | None = None
        self.proxy_cert: Path | None = None
        self.proxy_key: Path | None = None
        # The warm invocations' front: every answer held back by --latency-ms (with TLS under --tls).
        self.latency_proxy: KeepAliveProxy | None = None
        self.cgroup_failures: dict[int, str] = {}  # MemorySize -> why no CPU group was made

    # -- environment ----------------------------------------------------------------------------

    def aws_env(self, latency: bool = False) -> dict[str, str]:
        """The SDK's environment; `latency`: endpoints through the latency proxy (warm phases)."""
        env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        port = self.moto_port
        if latency:
            assert self.latency_proxy is not None, "start_latency_proxy() first"
            port = self.latency_proxy.port
        elif self.proxy is not None:
            port = self.proxy.port
        if self.proxy is not None and self.trust_bundle is not None and self.proxy_cert is not None:
            # HTTPS with keep-alive, as AWS endpoints: see scripts/tls_keepalive_proxy.py. The
            # proxy's certificate is self-signed, so the functions cannot use their built-in
            # Amazon roots: they trust that one certificate instead (system mode, an empty
            # certificate directory), the nearest stand-in for the built-in store's cost.
            env["AWS_ENDPOINT_URL_DYNAMODB"] = f"https://127.0.0.1:{port}"
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"https://localhost:{port}"
            env["TRCKER_TLS_ROOTS"] = "system"
            env["SSL_CERT_FILE"] = str(self.proxy_cert)
            env["SSL_CERT_DIR"] = str(self.empty_cert_dir())
        elif self.args.shared_endpoint:
            env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        else:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{port}"
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://localhost:{port}"
        if self.args.system_roots:
            # Diagnostic: the SDK client loads the system's certificate store at init, as it did
            # before the built-in Amazon roots (shows what that costs).
            env["TRCKER_TLS_ROOTS"] = "system"
            if self.trust_bundle is not None:
                env["SSL_CERT_FILE"] = str(self.trust_bundle)
                env["SSL_CERT_DIR"] = "/etc/ssl/certs"
        return env

    @staticmethod
    def empty_cert_dir() -> Path:
        empty = WORK / "no-cert-dir"
        empty.mkdir(parents=True, exist_ok=True)
        return empty

    def data_env(self) -> dict[str, str]:
        return {
            "TRCKER_DATA_TABLE": self.data_table,
            # The template's 100 per key and minute would refuse the later runs (all runs share one
            # key): raised, the guard still counts every request.
            "TRCKER_RATE_LIMIT_PER_MINUTE": "1000000",
            "TRCKER_ACTIVITY_RETENTION_DAYS": "90",
            "TRCKER_MIN_CLICK_TO_CONVERSION_SECONDS": "15",
        }

    def function_env(self, spec: Spec, latency: bool = False) -> dict[str, str]:
        """What Lambda and infra/template.yaml give the function; nothing from this shell
        (`latency`: its AWS endpoints through the latency proxy)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": f"trcker-bench-{spec.name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/trcker-bench-{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        }
        env.update(self.aws_env(latency))
        env.update(
            {
                "TRCKER_KEYS_TABLE": self.keys_table,
                "TRCKER_PEPPER_SECRET_ID": self.secret_arn,
                "TRCKER_KEY_CACHE_TTL_MS": "5000",
                "TRCKER_KEY_CACHE_CAPACITY": "10000",
                "TRCKER_LAST_USED_INTERVAL_MS": "60000",
                "TRCKER_STORE_TIMEOUT_MS": "2000",
                "RUST_LOG": "info",
            }
        )
        env.update(spec.extra_env(self))
        return env

    # -- moto, secret, tables, seed ---------------------------------------------------------------

    def start_moto(self) -> None:
        self.moto_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        env = {name: value for name, value in os.environ.items() if not name.startswith(("TRCKER_", "AWS_"))}
        self.moto = Process("moto", [sys.executable, str(ROOT / "scripts/moto_server.py"), str(self.moto_port)], env, WORK / "moto.log")
        wait_until("moto answers", lambda: url_answers(f"{self.endpoint}/moto-api/"), 60, self.moto)
        log(f"moto (DynamoDB + Secrets Manager) on {self.endpoint}")

    def start_proxy(self) -> None:
        cert, key = make_certificate(WORK)
        self.proxy_cert, self.proxy_key = cert, key
        self.trust_bundle = trust_bundle(WORK, cert)
        self.proxy = TlsKeepAliveProxy(self.moto_port, cert, key)
        log(f"HTTPS keep-alive proxy to moto on 127.0.0.1:{self.proxy.port} (DynamoDB) and localhost:{self.proxy.port} (Secrets Manager)")

    def start_latency_proxy(self) -> None:
        """The warm phases' front for moto: keep-alive, every answer --latency-ms late, with TLS
        (the same certificate) under --tls."""
        delay_s = self.args.latency_ms / 1000
        self.latency_proxy = KeepAliveProxy(self.moto_port, self.proxy_cert, self.proxy_key, delay_s)
        scheme = "HTTPS" if self.latency_proxy.tls else "HTTP"
        log(f"{scheme} keep-alive proxy to moto adding {self.args.latency_ms:g} ms to every answer on port {self.latency_proxy.port}")

    def create_secret(self) -> None:
        import boto3  # moto[server] brings it

        client = boto3.client("secretsmanager", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        password = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
        self.secret_arn = client.create_secret(Name=f"trcker-bench-pepper-{self.run_id}", SecretString=password)["ARN"]

    def create_tables(self) -> None:
        """The tables from the store code's definitions, through trcker-local --create-tables."""
        env = {name: value for name, value in os.environ.items() if not name.startswith(("TRCKER_", "AWS_"))}
        env.update(self.aws_env())
        env = {name: value for name, value in env.items() if not name.startswith(("AWS_ENDPOINT_URL", "SSL_CERT_"))}
        env.update({"AWS_ENDPOINT_URL": self.endpoint, "TRCKER_KEYS_TABLE": self.keys_table, "TRCKER_DATA_TABLE": self.data_table, "TRCKER_PEPPER_SECRET_ID": self.secret_arn, "RUST_LOG": "warn"})
        local = Process("trcker-local", [str(self.args.bin_dir / "trcker-local"), "--port", "0", "--store", "dynamodb", "--create-tables"], env, WORK / "tables.log")
        try:
            wait_until("trcker-local created the tables", lambda: "trcker-local listening on" in local.log_path.read_text(errors="replace"), 120, local)
            text = local.log_path.read_text(errors="replace")
            for table in (self.keys_table, self.data_table):
                if f"created table {table}" not in text:
                    raise RuntimeError(f"table {table} not created:\n{text}")
        finally:
            local.stop(signal.SIGINT)
        log(f"tables {self.keys_table}, {self.data_table}; pepper secret {self.secret_arn}")

    def invoke(self, name: str, events: list[dict[str, Any]]) -> list[Any]:
        """Runs the named function once over `events` (setup): the parsed responses."""
        spec = SPECS[name]
        with open(WORK / f"setup-{name}.log", "ab") as log_file:
            session, _ = run_process(self.args.bin_dir / name, self.function_env(spec), [json.dumps(event).encode() for event in events], 0.0, log_file)
        if session.error:
            raise RuntimeError(f"setup with {name}: {session.error}\n{tail(WORK / f'setup-{name}.log')}")
        return [json.loads(body) for body in session.responses]

    def seed(self) -> None:
        brand, generated = self.invoke("keys", [load_event("events/keys/create-brand.json", ""), load_event("events/keys/generate.json", "")])
        if brand.get("brand", {}).get("brand_id") != "demo" or not str(generated.get("key", "")).startswith("tk_"):
            raise RuntimeError(f"seeding the brand and key failed: {brand} {generated}")
        self.key = generated["key"]
        base = load_event("events/public-api/whoami.json", self.key)
        offer = {"name": "Summer Sale", "slug": "summer-sale", "destination_url": "https://shop.example/summer", "default_payout": {"type": "percent", "amount": 10}}
        (created,) = self.invoke("public-api", [http_event(base, "POST", "/api/public/offers", offer, "bench-seed-offer")])
        if created.get("statusCode") != 201:
            raise RuntimeError(f"seeding the offer failed: {created}")
        log("seeded brand demo, its key and offer summer-sale")

    # -- the runs ---------------------------------------------------------------------------------

    def measure(self, targets: list[Target]) -> None:
        logs = {target.label: open(WORK / f"{target.label}.log", "wb") for target in targets}  # noqa: SIM115 - closed below
        try:
            for run in range(-1, self.args.runs):  # run -1: warm-up, discarded
                for target in targets:
                    self.measure_once(target, run, logs[target.label])
                if run >= 0 and (run + 1) % 5 == 0:
                    log(f"  {run + 1}/{self.args.runs} runs done")
        finally:
            for handle in logs.values():
                handle.close()

    def measure_once(self, target: Target, run: int, log_file: Any) -> None:
        spec = target.spec
        events = [json.dumps(spec.event(self.key, run, invocation)).encode() for invocation in range(1 + self.args.warm_invokes)]
        log_file.flush()
        log_path, offset = WORK / f"{target.label}.log", os.fstat(log_file.fileno()).st_size
        session, started = run_process(target.path, self.function_env(spec), events, self.args.pause_ms / 1000, log_file)
        log_file.flush()
        check_answers(target, f"run {run}", session, log_path)
        if run < 0:
            return
        ms = 1e-6
        target.init_ms.append((session.next_at[0] - started) * ms)
        target.first_response_ms.append((session.responded_at[0] - started) * ms)
        target.first_invoke_ms.append((session.responded_at[0] - session.delivered_at[0]) * ms)
        target.warm_invoke_ms.extend((session.responded_at[i] - session.delivered_at[i]) * ms for i in range(1, len(events)))
        with open(log_path, "rb") as handle:
            handle.seek(offset)
            lines = init_finished_lines(handle.read())
        if len(lines) == 1:
            init_us, network_us = lines[0]
            target.process_init_ms.append(init_us / 1000)
            target.network_ms.append(network_us / 1000)
            target.own_init_ms.append((init_us - network_us) / 1000)
        elif lines:
            raise RuntimeError(f"{target.label}, run {run}: {len(lines)} `init finished` lines in one run, expected one")
        elif run == 0:
            log(f"  note: {target.label} logs no `init finished` line (a build from before it?): no in-process init figures")

    # -- warm invocations: memory, CPU share, cost ------------------------------------------------

    def measure_warm(self, targets: list[Target]) -> None:
        """A full-CPU phase (memory, CPU time, duration), then one phase per --cpu-shares size,
        each binary in each phase a fresh process sent one cold and N warm events."""
        args = self.args
        self.start_latency_proxy()
        remove_stale_cpu_groups()
        phases = [0, *args.cpu_shares]  # 0: no CPU limit
        logs = {target.label: open(WORK / f"{target.label}.warm.log", "wb") for target in targets}  # noqa: SIM115 - closed below
        try:
            for number, memory_mb in enumerate(phases):
                what = f"at {memory_mb} MB's CPU share ({memory_mb / FULL_VCPU_MB:.1%} of a CPU)" if memory_mb else "at full CPU"
                log(f"warm invocations {what}: {args.warm_invocations} per binary")
                for target in targets:
                    self.warm_once(target, number, memory_mb, logs[target.label])
        finally:
            for handle in logs.values():
                handle.close()
        for target in targets:
            for memory_mb in args.cpu_shares:
                if target.share_method.get(memory_mb) == "scaled":
                    # No CPU group: the full-CPU durations with their CPU time stretched to the
                    # share (the wait on the network stays as it was).
                    cpu, share = target.cpu_per_warm_ms, memory_mb / FULL_VCPU_MB
                    target.share_ms[memory_mb] = [wall - cpu + cpu / share for wall in target.full_cpu_ms]

    def warm_once(self, target: Target, number: int, memory_mb: int, log_file: Any) -> None:
        args, spec = self.args, target.spec
        run = WARM_RUN_BASE + number  # apart from the cold runs: new click ids and addresses
        events = [json.dumps(spec.event(self.key, run, invocation)).encode() for invocation in range(1 + args.warm_invocations)]
        quota: CpuQuota | None = None
        if memory_mb:
            try:
                quota = CpuQuota(f"{CGROUP_PREFIX}{self.run_id}-{memory_mb}", memory_mb / FULL_VCPU_MB, args.cfs_period_us)
            except CgroupUnavailable as error:
                self.cgroup_unavailable(target, memory_mb, str(error))
                return
        ticks: dict[str, int] = {}
        status: dict[str, int] = {}

        def started(process: subprocess.Popen[bytes]) -> None:
            if quota is not None:
                quota.add(process.pid)

        def deliver(process: subprocess.Popen[bytes], index: int) -> None:
            if index == 1:
                ticks["start"] = process_cpu_ticks(process.pid)

        def finished(process: subprocess.Popen[bytes]) -> None:
            ticks["end"] = process_cpu_ticks(process.pid)
            status.update(process_memory_kib(process.pid))

        log_file.flush()
        log_path = WORK / f"{target.label}.warm.log"
        try:
            session, _ = run_process(target.path, self.function_env(spec, latency=True), events, args.warm_pause_ms / 1000, log_file, Hooks(started, deliver, finished))
            if quota is not None:
                target.share_throttling[memory_mb] = quota.stats()
        except CgroupUnavailable as error:
            self.cgroup_unavailable(target, memory_mb, str(error))
            return
        finally:
            if quota is not None:
                quota.remove()
        log_file.flush()
        check_answers(target, f"warm phase {memory_mb or 'full CPU'}", session, log_path)
        ms = 1e-6
        durations = [(session.responded_at[i] - session.delivered_at[i]) * ms for i in range(1, len(events))]
        cpu_ms = (ticks["end"] - ticks["start"]) * 1000 / os.sysconf("SC_CLK_TCK") / args.warm_invocations
        if memory_mb:
            target.share_ms[memory_mb] = durations
            target.share_method[memory_mb] = "cgroup"
            throttling = target.share_throttling.get(memory_mb, {})
            log(
                f"  {target.label}: median {fmt_ms(median(durations))} ms, CPU {cpu_ms:.2f} ms per invocation, "
                f"throttled in {throttling.get('nr_throttled', 0)} of {throttling.get('nr_periods', 0)} periods"
            )
        else:
            target.full_cpu_ms = durations
            target.cpu_per_warm_ms = cpu_ms
            target.memory_kib = {"VmHWM": status.get("VmHWM", 0), "VmRSS": status.get("VmRSS", 0)}
            log(f"  {target.label}: median {fmt_ms(median(durations))} ms, CPU {cpu_ms:.2f} ms per invocation, peak RSS {target.memory_kib['VmHWM'] / 1024:.1f} MiB")

    def cgroup_unavailable(self, target: Target, memory_mb: int, reason: str) -> None:
        target.share_method[memory_mb] = "scaled"
        if memory_mb not in self.cgroup_failures:
            self.cgroup_failures[memory_mb] = reason
            log(f"  no CPU group for {memory_mb} MB ({reason}): its durations are scaled from the full-CPU phase instead")

    def stop(self) -> None:
        if self.latency_proxy is not None:
            self.latency_proxy.close()
        if self.proxy is not None:
            self.proxy.close()
        if self.moto is not None:
            self.moto.stop()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def check_answers(target: Target, what: str, session: Session, log_path: Path) -> None:
    """Raises unless every event was answered, and as the binary's spec expects."""
    if session.error:
        raise RuntimeError(f"{target.label}, {what}: {session.error}\n{tail(log_path)}")
    for index, body in enumerate(session.responses):
        try:
            answer = json.loads(body)
        except ValueError:
            answer = body.decode(errors="replace")
        if not target.spec.ok(answer):
            raise RuntimeError(f"{target.label}, {what}, invocation {index + 1}: unexpected answer {str(answer)[:1500]}")


def init_finished_lines(text: bytes) -> list[tuple[int, int]]:
    """(init_us, network_us) of every `init finished` log line (tracing's JSON format, the fields
    under `fields` or, flattened, at the top) in a run's output."""
    found = []
    for line in text.splitlines():
        if b"init finished" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        fields = record.get("fields", record) if isinstance(record, dict) else {}
        if fields.get("message") == "init finished" and "init_us" in fields and "network_us" in fields:
            found.append((int(fields["init_us"]), int(fields["network_us"])))
    return found


# The run numbers of the warm phases' events (the cold runs count from -1).
WARM_RUN_BASE = 100_000


def process_cpu_ticks(pid: int) -> int:
    """utime + stime of a process, all its threads, in clock ticks (/proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return int(fields[11]) + int(fields[12])


def process_memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in KiB (/proc/<pid>/status)."""
    memory = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            memory[name] = int(value.split()[0])
    return memory


class CgroupUnavailable(Exception):
    """A cgroup v1 CPU group could not be made, limited or joined."""


class CpuQuota:
    """A child group of the cgroup v1 CPU controller holding a process to `share` of one CPU:
    `cpu.cfs_quota_us` = share x `cpu.cfs_period_us`, the period set to `period_us` first (0: the
    group's default). Remove it when done, its processes ended."""

    def __init__(self, name: str, share: float, period_us: int) -> None:
        self.path = CGROUP_CPU / name
        try:
            self.path.mkdir()
        except OSError as error:
            raise CgroupUnavailable(f"mkdir {self.path}: {error.strerror or error}") from error
        try:
            if period_us:
                (self.path / "cpu.cfs_period_us").write_text(f"{period_us}\n")
            self.period_us = int((self.path / "cpu.cfs_period_us").read_text())
            self.quota_us = round(share * self.period_us)
            (self.path / "cpu.cfs_quota_us").write_text(f"{self.quota_us}\n")
        except (OSError, ValueError) as error:
            self.remove()
            raise CgroupUnavailable(f"setting the quota of {self.path}: {error}") from error

    def add(self, pid: int) -> None:
        """Moves the process, all its threads, into the group."""
        try:
            (self.path / "cgroup.procs").write_text(f"{pid}\n")
        except OSError as error:
            raise CgroupUnavailable(f"moving pid {pid} into {self.path}: {error.strerror or error}") from error

    def stats(self) -> dict[str, int]:
        """The group's `cpu.stat`: nr_periods, nr_throttled, throttled_time (ns)."""
        stats = {"period_us": self.period_us, "quota_us": self.quota_us}
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                name, _, value = line.partition(" ")
                stats[name] = int(value)
        except (OSError, ValueError):
            pass
        return stats

    def remove(self) -> None:
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # a killed process leaves its group once reaped
        log(f"warning: could not remove {self.path}: remove it by hand (rmdir)")


def remove_stale_cpu_groups() -> None:
    """Groups an interrupted earlier run left behind (empty ones only: rmdir refuses the rest)."""
    try:
        for path in CGROUP_CPU.glob(f"{CGROUP_PREFIX}*"):
            try:
                path.rmdir()
            except OSError:
                pass
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Report: Markdown tables and an SVG chart.


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=False).stdout.strip() or "rustc ?"
    return f"{os.cpu_count()} vCPU {cpu}{memory}, {platform.machine()}, Linux {platform.release()}, {rustc}"


def release_profile() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    match = re.search(r"^\[profile\.release\]\n(.*?)(?:\n\n|\n\[|\Z)", text, re.S | re.M)
    settings = [line.strip() for line in (match.group(1) if match else "").splitlines() if line.strip() and not line.startswith("#")]
    overrides = [f"{name}={value}" for name, value in sorted(os.environ.items()) if name.startswith("CARGO_PROFILE_RELEASE_")]
    packages = []
    for package, body in re.findall(r"^\[profile\.release\.package\.([\w\"*-]+)\]\n(.*?)(?=\n\n|\n\[|\Z)", text, re.S | re.M):
        lines = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]
        packages.append(f"{package.strip(chr(34))}: {', '.join(lines)}")
    return (
        ", ".join(settings)
        + (f"; per package: {'; '.join(packages)}" if packages else "")
        + (f" (overridden: {', '.join(overrides)})" if overrides else "")
    )


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MiB"


def baseline_of(target: Target, targets: list[Target]) -> Target | None:
    """The baseline of the same build (label `cold-start-baseline@LABEL`), else the default one."""
    baselines = {other.label: other for other in targets if other.spec.name == BASELINE}
    return baselines.get(target.label.replace(target.spec.name, BASELINE, 1)) or baselines.get(BASELINE)


def med_p90(values: list[float]) -> str:
    return f"{fmt_ms(median(values))} / {fmt_ms(p90(values))}" if values else "n/a"


def report(bench: Bench, targets: list[Target], started: str, loads: tuple[str, str]) -> str:
    args = bench.args
    lines = [
        "# Cold start (scripts/bench-cold-start)",
        "",
        f"Run {started}; {args.runs} runs per binary (plus one discarded warm-up), {1 + args.warm_invokes} invocations per run "
        f"(a {args.pause_ms} ms pause before each warm one); machine: {machine()}; load average at start {loads[0]}, at end {loads[1]}.",
        f"Release profile: {release_profile()}.",
        "Endpoints: " + endpoints_note(args),
        "",
        "Times in ms, median / p90. init: exec to the first `invocation/next`; first response: exec to the first response; "
        "first invoke: first event handed out to its response; warm invoke: the same for later events. "
        "The baseline makes the functions' two init calls (the pepper secret's `GetSecretValue` and a keys-table `GetItem`, concurrently), "
        "so init / baseline compares the functions' own start-up on top of the same network work.",
        "",
        "| binary | request | init | first response | first invoke | warm invoke | init / baseline | first / warm invoke |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in targets:
        baseline = baseline_of(target, targets)
        init_ratio = median(target.init_ms) / median(baseline.init_ms) if baseline else float("nan")
        warm_ratio = median(target.first_invoke_ms) / median(target.warm_invoke_ms)
        cells = [
            f"`{target.label}`",
            target.spec.what,
            *(f"{fmt_ms(median(values))} / {fmt_ms(p90(values))}" for values in (target.init_ms, target.first_response_ms, target.first_invoke_ms, target.warm_invoke_ms)),
            f"{init_ratio:.2f}x" if baseline else "n/a",
            f"{warm_ratio:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "In-process init, from each run's `init finished` log line (ms, median / p90): in-process init is `main` (before the async runtime "
        "is built) to the runtime loop; network wait is the part of it waiting on the joined pepper fetch and store warm-up (the "
        "baseline: its same two calls); init without network is `init_us - network_us` per run, the binary's own init work.",
        "",
        "| binary | in-process init | network wait | init without network | without network / baseline's |",
        "|---|---|---|---|---|",
    ]
    for target in targets:
        baseline = baseline_of(target, targets)
        ratio = "n/a"
        if baseline and baseline.own_init_ms and target.own_init_ms and target is not baseline:
            ratio = f"{median(target.own_init_ms) / median(baseline.own_init_ms):.2f}x"
        lines.append(f"| `{target.label}` | {med_p90(target.process_init_ms)} | {med_p90(target.network_ms)} | {med_p90(target.own_init_ms)} | {ratio} |")
    lines += ["", "| binary | built | stripped | zip (`bootstrap`) |", "|---|---|---|---|"]
    for target in targets:
        sizes = target.sizes
        lines.append(f"| `{target.label}` | {mib(sizes['built'])} | {mib(sizes['stripped'])} | {mib(sizes['zip'])} ({sizes['zip']:,} B) |")
    if args.warm_invocations:
        lines += warm_report(bench, targets)
    lines += ["", "Targets:", "", "| target | binary | measured | |", "|---|---|---|---|"]
    for target in targets:
        if target.spec.name == BASELINE:
            continue
        baseline = baseline_of(target, targets)
        if baseline:
            ratio = median(target.init_ms) / median(baseline.init_ms)
            lines.append(f"| init median <= {INIT_RATIO_TARGET}x baseline | `{target.label}` | {ratio:.2f}x ({fmt_ms(median(target.init_ms))} vs {fmt_ms(median(baseline.init_ms))} ms) | {verdict(ratio <= INIT_RATIO_TARGET)} |")
        ratio = median(target.first_invoke_ms) / median(target.warm_invoke_ms)
        lines.append(f"| first invoke <= {FIRST_TO_WARM_TARGET:.0f}x warm invoke (medians) | `{target.label}` | {ratio:.2f}x ({fmt_ms(median(target.first_invoke_ms))} vs {fmt_ms(median(target.warm_invoke_ms))} ms) | {verdict(ratio <= FIRST_TO_WARM_TARGET)} |")
        zipped = target.sizes["zip"]
        lines.append(f"| zip <= 5 MiB | `{target.label}` | {mib(zipped)} | {verdict(zipped <= ZIP_TARGET_BYTES)} |")
        if target.memory_kib:
            peak = target.memory_kib["VmHWM"]
            lines.append(f"| peak RSS < {PEAK_RSS_TARGET_KIB // 1024} MiB over {args.warm_invocations} warm invocations | `{target.label}` | {peak / 1024:.1f} MiB | {verdict(peak < PEAK_RSS_TARGET_KIB)} |")
    return "\n".join(lines) + "\n"


def cost_per_million(duration_ms: float, memory_mb: int) -> tuple[int, float]:
    """Lambda's price of a million requests of `duration_ms` at `memory_mb`: the billed duration
    (whole ms, rounded up) and USD (duration x GB x the GB-second price, plus the request price)."""
    billed_ms = max(1, math.ceil(duration_ms - 1e-9))
    return billed_ms, 1_000_000 * billed_ms / 1000 * memory_mb / 1024 * PRICE_PER_GB_SECOND + PRICE_PER_MILLION_REQUESTS


def cheapest(target: Target, shares: list[int]) -> tuple[int, int, float] | None:
    """(MemorySize, billed ms, USD per million) with the lowest cost; ties to the faster."""
    options = [(memory_mb, *cost_per_million(median(target.share_ms[memory_mb]), memory_mb)) for memory_mb in shares if target.share_ms.get(memory_mb)]
    return min(options, key=lambda option: (round(option[2], 9), option[1])) if options else None


def share_header(memory_mb: int) -> str:
    return f"{memory_mb} MB ({memory_mb / FULL_VCPU_MB:.1%} CPU)"


def warm_report(bench: Bench, targets: list[Target]) -> list[str]:
    """The warm phases' tables: memory, duration per CPU share, cost per million."""
    args = bench.args
    proxy = bench.latency_proxy
    scheme = "HTTPS" if proxy is not None and proxy.tls else "plain HTTP"
    lines = [
        "",
        f"## Memory and CPU share: {args.warm_invocations} warm invocations per binary and phase",
        "",
        f"Each phase starts every binary once more (a fresh process: one cold event, then {args.warm_invocations} warm ones of its usual "
        f"request, a {args.warm_pause_ms} ms pause before each), its AWS calls through a keep-alive proxy ({scheme}) that holds every "
        f"moto answer back by {args.latency_ms:g} ms, a stand-in for DynamoDB's latency. Full-CPU phase: peak RSS (`VmHWM`) and `VmRSS` "
        "from /proc/<pid>/status after the warm invocations, CPU per warm invocation (utime + stime over them, / N), warm invoke (ms, median / p90).",
        "",
        "| binary | request | peak RSS (VmHWM) | RSS after (VmRSS) | CPU per warm invocation | warm invoke, full CPU |",
        "|---|---|---|---|---|---|",
    ]
    for target in targets:
        memory = target.memory_kib
        lines.append(
            f"| `{target.label}` | {target.spec.what} | {memory.get('VmHWM', 0) / 1024:.1f} MiB | {memory.get('VmRSS', 0) / 1024:.1f} MiB | "
            f"{target.cpu_per_warm_ms:.2f} ms | {med_p90(target.full_cpu_ms)} |"
        )
    shares = args.cpu_shares
    if not shares:
        return lines
    methods = {memory_mb: {target.share_method.get(memory_mb) for target in targets} for memory_mb in shares}
    cgroup_shares = [memory_mb for memory_mb in shares if "cgroup" in methods[memory_mb]]
    scaled_shares = [memory_mb for memory_mb in shares if "scaled" in methods[memory_mb]]
    notes = []
    if cgroup_shares:
        example = next(iter(target.share_throttling.get(cgroup_shares[0], {}) for target in targets if target.share_throttling.get(cgroup_shares[0])), {})
        period = example.get("period_us", args.cfs_period_us)
        notes.append(
            f"measured in a cgroup v1 CPU group ({', '.join(f'{m} MB' for m in cgroup_shares)}): `cpu.cfs_quota_us` = MB / {FULL_VCPU_MB} x "
            f"`cpu.cfs_period_us` ({period} us), the process and all its threads in it"
        )
    if scaled_shares:
        reason = next(iter(bench.cgroup_failures.values()), "see the log")
        notes.append(
            f"**estimated, not measured** ({', '.join(f'{m} MB' for m in scaled_shares)}; no CPU group, first refusal: {reason}): each "
            "full-CPU warm invoke with its CPU time stretched to the share, wall - cpu + cpu / share, cpu = the mean CPU per warm "
            "invocation (pessimistic: under a CFS quota a short burst runs at full speed until the period's quota is spent)"
        )
    lines += [
        "",
        f"Warm invoke at Lambda's CPU share of each MemorySize (share = MB / {FULL_VCPU_MB}; ms, median / p90): " + "; ".join(notes) + ".",
        "",
        "| binary | request | " + " | ".join(share_header(memory_mb) for memory_mb in shares) + " | full CPU |",
        "|---|---|" + "---|" * (len(shares) + 1),
    ]
    for target in targets:
        cells = [med_p90(target.share_ms.get(memory_mb, [])) + (" (est.)" if target.share_method.get(memory_mb) == "scaled" else "") for memory_mb in shares]
        lines.append(f"| `{target.label}` | {target.spec.what} | " + " | ".join(cells) + f" | {med_p90(target.full_cpu_ms)} |")
    if cgroup_shares:
        lines += ["", "CFS periods in which the CPU group was throttled, of those in which it ran (`cpu.stat`):", ""]
        lines += ["| binary | " + " | ".join(f"{m} MB" for m in cgroup_shares) + " |", "|---|" + "---|" * len(cgroup_shares)]
        for target in targets:
            cells = []
            for memory_mb in cgroup_shares:
                stats = target.share_throttling.get(memory_mb)
                cells.append(f"{stats.get('nr_throttled', 0)} of {stats.get('nr_periods', 0)}" if stats else "n/a")
            lines.append(f"| `{target.label}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Cost per million requests (USD), x86 list prices: {PRICE_PER_GB_SECOND:.10f} per GB-second, {PRICE_PER_MILLION_REQUESTS:.2f} per million requests; "
        "duration = the median warm invoke at that share, rounded up to whole ms as Lambda bills (shown in brackets); GB = MB / 1024. "
        "Lowest cost: the MemorySize Lambda Power Tuning's cost strategy would pick (ties to the faster).",
        "",
        "| binary | " + " | ".join(f"{memory_mb} MB" for memory_mb in shares) + " | lowest cost |",
        "|---|" + "---|" * (len(shares) + 1),
    ]
    for target in targets:
        cells = []
        for memory_mb in shares:
            values = target.share_ms.get(memory_mb)
            if values:
                billed, usd = cost_per_million(median(values), memory_mb)
                cells.append(f"{usd:.4f} ({billed} ms)")
            else:
                cells.append("n/a")
        best = cheapest(target, shares)
        cells.append(f"**{best[0]} MB** ({best[2]:.4f})" if best else "n/a")
        lines.append(f"| `{target.label}` | " + " | ".join(cells) + " |")
    return lines


def endpoints_note(args: argparse.Namespace) -> str:
    if args.tls:
        text = (
            "HTTPS with keep-alive through scripts/tls_keepalive_proxy.py (DynamoDB at `https://127.0.0.1`, Secrets Manager "
            "at `https://localhost`): connections are reused and the first call on each pays a TLS handshake, as with AWS endpoints."
        )
    elif args.shared_endpoint:
        text = "one `AWS_ENDPOINT_URL` (plain HTTP) for both services."
    else:
        text = (
            "plain HTTP to moto, DynamoDB at `127.0.0.1` and Secrets Manager at `localhost`. moto closes the connection after every "
            "response, so each SDK call opens a new (loopback TCP) connection, with no TLS."
        )
    if args.system_roots:
        text += " DIAGNOSTIC run: the functions load the system's certificate store (`TRCKER_TLS_ROOTS=system`) instead of their built-in Amazon roots."
    return text


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def chart(targets: list[Target], path: Path, subtitle: str) -> None:
    """Horizontal bars per binary: init, first response and warm invoke medians, p90 as whiskers."""
    series = [("init (exec to first next)", "init_ms", "#4e79a7"), ("first response (exec to first response)", "first_response_ms", "#f28e2b"), ("warm invoke", "warm_invoke_ms", "#59a14f")]
    bar, gap, left, width, top = 14, 14, 190, 560, 62
    group = bar * len(series) + gap
    height = top + group * len(targets) + 40
    peak = max(p90(getattr(target, attr)) for target in targets for _, attr, _ in series)
    step = nice_step(peak / 6)
    axis_max = step * math.ceil(peak / step)
    scale = width / axis_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">Cold start: Lambda function binaries vs a hello-world lambda_http (medians, p90 whiskers)</text>',
        f'<text x="10" y="38" fill="#555">{escape(subtitle)}</text>',
    ]
    for index, (label, _, colour) in enumerate(series):
        x = left + index * 210
        parts.append(f'<rect x="{x}" y="46" width="10" height="10" fill="{colour}"/><text x="{x + 14}" y="55">{escape(label)}</text>')
    parts.extend(axis_ticks(axis_max, step, left, scale, top, height))
    parts.append(f'<text x="{left + width / 2}" y="{height - 5}" text-anchor="middle" fill="#555">milliseconds</text>')
    for row, target in enumerate(targets):
        y0 = top + row * group
        parts.append(f'<text x="{left - 8}" y="{y0 + group / 2}" text-anchor="end" dominant-baseline="middle">{escape(target.label)}</text>')
        for index, (_, attr, colour) in enumerate(series):
            values = getattr(target, attr)
            y = y0 + index * bar
            middle, high = median(values) * scale, p90(values) * scale
            parts.append(f'<rect x="{left}" y="{y}" width="{middle:.1f}" height="{bar - 2}" fill="{colour}"/>')
            parts.append(f'<line x1="{left + middle:.1f}" y1="{y + (bar - 2) / 2}" x2="{left + high:.1f}" y2="{y + (bar - 2) / 2}" stroke="#333"/>')
            parts.append(f'<line x1="{left + high:.1f}" y1="{y + 2}" x2="{left + high:.1f}" y2="{y + bar - 4}" stroke="#333"/>')
            parts.append(f'<text x="{left + high + 4:.1f}" y="{y + bar - 4}" font-size="10" fill="#333">{fmt_ms(median(values))}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def axis_ticks(axis_max: float, step: float, left: float, scale: float, top: float, height: float) -> list[str]:
    """The vertical grid lines and their labels of a horizontal bar chart, every `step` up to `axis_max`."""
    parts = []
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 34}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle" fill="#555">{tick:g}</text>')
        tick += step
    return parts


def cost_chart(targets: list[Target], shares: list[int], path: Path, subtitle: str) -> None:
    """Horizontal bars per binary: USD per million requests at each MemorySize's CPU share (the
    lowest marked), the request price alone as a dashed line."""
    colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]
    rows = [target for target in targets if any(target.share_ms.get(memory_mb) for memory_mb in shares)]
    if not rows:
        return
    bar, gap, left, width, top = 14, 14, 190, 560, 62
    group = bar * len(shares) + gap
    height = top + group * len(rows) + 40
    costs = {(target.label, memory_mb): cost_per_million(median(target.share_ms[memory_mb]), memory_mb) for target in rows for memory_mb in shares if target.share_ms.get(memory_mb)}
    peak = max(usd for _, usd in costs.values())
    step = nice_step(peak / 6)
    axis_max = step * math.ceil(peak / step)
    scale = width / axis_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="15" font-weight="bold">Cost per million requests (USD, x86 list prices) at each MemorySize\'s CPU share (lowest marked)</text>',
        f'<text x="10" y="38" fill="#555">{escape(subtitle)}</text>',
    ]
    spacing = min(210, (left + width - 10) // max(1, len(shares)))
    for index, memory_mb in enumerate(shares):
        x = 10 + index * spacing
        parts.append(f'<rect x="{x}" y="46" width="10" height="10" fill="{colours[index % len(colours)]}"/><text x="{x + 14}" y="55">{escape(share_header(memory_mb))}</text>')
    parts.extend(axis_ticks(axis_max, step, left, scale, top, height))
    floor = left + PRICE_PER_MILLION_REQUESTS * scale
    parts.append(f'<line x1="{floor:.1f}" y1="{top - 4}" x2="{floor:.1f}" y2="{height - 34}" stroke="#999" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{floor + 3:.1f}" y="{height - 36}" font-size="10" fill="#777">requests alone</text>')
    parts.append(f'<text x="{left + width / 2}" y="{height - 5}" text-anchor="middle" fill="#555">USD per million requests</text>')
    for row, target in enumerate(rows):
        y0 = top + row * group
        best = cheapest(target, shares)
        parts.append(f'<text x="{left - 8}" y="{y0 + group / 2}" text-anchor="end" dominant-baseline="middle">{escape(target.label)}</text>')
        for index, memory_mb in enumerate(shares):
            if (target.label, memory_mb) not in costs:
                continue
            billed, usd = costs[(target.label, memory_mb)]
            y = y0 + index * bar
            length = usd * scale
            marked = best is not None and best[0] == memory_mb
            parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{colours[index % len(colours)]}"/>')
            label = f"{usd:.4f} ({billed} ms)" + (" lowest" if marked else "")
            weight = ' font-weight="bold"' if marked else ""
            parts.append(f'<text x="{left + length + 4:.1f}" y="{y + bar - 4}" font-size="10" fill="#333"{weight}>{escape(label)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per binary (default 20)")
    parser.add_argument("--warm-invokes", type=int, default=2, help="invocations after the first, per run (default 2)")
    parser.add_argument("--pause-ms", type=int, default=100, help="pause before each warm invocation (default 100)")
    parser.add_argument("--bin-dir", type=Path, required=True, help="the release binaries (target/release)")
    parser.add_argument("--also", action="append", default=[], metavar="LABEL=DIR", help="also measure the binaries of another build (e.g. another profile), labelled NAME@LABEL")
    parser.add_argument("--only", default="", help="comma-separated binaries to measure (default: the baseline and the four functions)")
    parser.add_argument("--shared-endpoint", action="store_true", help="one AWS_ENDPOINT_URL for both services (connections shared)")
    parser.add_argument("--system-roots", action="store_true", help="diagnostic: the functions load the system's certificate store (TRCKER_TLS_ROOTS=system) instead of the built-in Amazon roots (shows what that costs)")
    parser.add_argument("--tls", action="store_true", help="reach moto over HTTPS with keep-alive, as AWS endpoints (scripts/tls_keepalive_proxy.py)")
    parser.add_argument("--out", type=Path, default=TMP / "bench-cold-start.md", help="Markdown results")
    parser.add_argument("--svg", type=Path, default=ROOT / "docs/bench/cold-start.svg", help="chart")
    warm = parser.add_argument_group("memory and CPU share (off unless --warm-invocations is given)")
    warm.add_argument("--warm-invocations", type=int, default=0, metavar="N", help="after the cold runs, per binary and phase: one process sent one cold and N warm events; peak RSS, CPU per invocation, durations (default 0: off)")
    warm.add_argument("--cpu-shares", default="", metavar="MB,MB,...", help="MemorySizes whose CPU share (MB / 1769 of a CPU) to run the warm invocations at, in a cgroup v1 CPU quota, e.g. 128,256,512,1024; with cost per million (needs --warm-invocations)")
    warm.add_argument("--warm-pause-ms", type=int, default=25, help="pause before each warm invocation of those phases (default 25: longer than a CFS period, so each starts with a full quota, as a thawed Lambda sandbox)")
    warm.add_argument("--latency-ms", type=float, default=5.0, help="delay the warm phases' proxy adds to every moto answer (default 5, a stand-in for DynamoDB's latency)")
    warm.add_argument("--cfs-period-us", type=int, default=20_000, help="cpu.cfs_period_us of the CPU groups (default 20000: the 20 ms throttling interval observed in Lambda; 0 keeps the group's default)")
    warm.add_argument("--cost-svg", type=Path, default=ROOT / "docs/bench/cost-per-million.svg", help="cost chart (written with --cpu-shares)")
    args = parser.parse_args()
    if args.runs < 1 or args.warm_invokes < 1:
        parser.error("--runs and --warm-invokes must be at least 1")
    if args.warm_invocations < 0 or args.warm_pause_ms < 0 or args.latency_ms < 0 or args.cfs_period_us < 0:
        parser.error("--warm-invocations, --warm-pause-ms, --latency-ms and --cfs-period-us cannot be negative")
    try:
        args.cpu_shares = sorted({int(size) for size in args.cpu_shares.split(",") if size.strip()})
    except ValueError:
        parser.error(f"--cpu-shares wants MemorySizes in MB, comma-separated, got {args.cpu_shares!r}")
    if any(not 128 <= size <= 10_240 for size in args.cpu_shares):
        parser.error("--cpu-shares: Lambda's MemorySize is 128 to 10240 MB")
    if args.cpu_shares and not args.warm_invocations:
        parser.error("--cpu-shares needs --warm-invocations N")
    if args.cpu_shares and args.cfs_period_us and not 1_000 <= args.cfs_period_us <= 1_000_000:
        parser.error("--cfs-period-us: the kernel takes 1000 to 1000000")
    if args.cpu_shares and args.cfs_period_us and min(args.cpu_shares) / FULL_VCPU_MB * args.cfs_period_us < 1_000:
        parser.error(f"--cfs-period-us {args.cfs_period_us}: the quota of {min(args.cpu_shares)} MB would be under the kernel's minimum of 1000 us")
    args.bin_dir = args.bin_dir.resolve()
    return args


def main() -> int:
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    names = [name.strip() for name in args.only.split(",") if name.strip()] or [BASELINE, *FUNCTIONS]
    unknown = [name for name in names if name not in SPECS]
    if unknown:
        raise SystemExit(f"unknown binaries {unknown}; known: {sorted(SPECS)}")
    builds = [("", args.bin_dir)]
    for extra in args.also:
        label, _, directory = extra.partition("=")
        if not label or not directory:
            raise SystemExit(f"--also wants LABEL=DIR, got {extra!r}")
        builds.append((label, Path(directory).resolve()))
    targets = []
    for name in names:
        for label, directory in builds:
            path = directory / name
            if not path.is_file():
                raise SystemExit(f"{path} does not exist: build it first (scripts/bench-cold-start builds the default set)")
            targets.append(Target(f"{name}@{label}" if label else name, SPECS[name], path))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    bench = Bench(args)
    try:
        bench.start_moto()
        if args.tls:
            bench.start_proxy()
        bench.create_secret()
        bench.create_tables()
        bench.seed()
        for target in targets:
            measure_sizes(target)
        log(f"measuring {len(targets)} binaries, {args.runs} runs each (interleaved)")
        bench.measure(targets)
        if args.warm_invocations:
            bench.measure_warm(targets)
    finally:
        bench.stop()
    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = report(bench, targets, started, (load_start, load_end))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    samples = {
        target.label: {
            "path": str(target.path),
            "sizes": target.sizes,
            "init_ms": target.init_ms,
            "first_response_ms": target.first_response_ms,
            "first_invoke_ms": target.first_invoke_ms,
            "warm_invoke_ms": target.warm_invoke_ms,
            "process_init_ms": target.process_init_ms,
            "network_ms": target.network_ms,
            "own_init_ms": target.own_init_ms,
            "warm_phases": {
                "memory_kib": target.memory_kib,
                "cpu_per_warm_ms": None if math.isnan(target.cpu_per_warm_ms) else target.cpu_per_warm_ms,
                "full_cpu_ms": target.full_cpu_ms,
                "share_ms": {str(memory_mb): values for memory_mb, values in target.share_ms.items()},
                "share_method": {str(memory_mb): method for memory_mb, method in target.share_method.items()},
                "share_throttling": {str(memory_mb): stats for memory_mb, stats in target.share_throttling.items()},
            }
            if args.warm_invocations
            else None,
        }
        for target in targets
    }
    args.out.with_suffix(".json").write_text(json.dumps({"started": started, "args": {k: str(v) for k, v in vars(args).items()}, "targets": samples}, indent=1))
    chart(targets, args.svg, f"{started}; {args.runs} runs per binary; {machine()}")
    charts = [args.svg]
    if args.cpu_shares:
        cost_chart(targets, args.cpu_shares, args.cost_svg, f"{started}; {args.warm_invocations} warm invocations per binary and share, +{args.latency_ms:g} ms per store call; {machine()}")
        charts.append(args.cost_svg)
    print(text)
    shown = [str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path) for path in (args.out, *charts)]
    log(f"results: {shown[0]}; charts: {', '.join(shown[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
