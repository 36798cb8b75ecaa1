#!/usr/bin/env python3
"""Cold-start benchmark driver for scripts/bench-cold-start: each release function binary, and a
hello-world `lambda_http` baseline, started again and again against a minimal Lambda Runtime API
served here on loopback, on moto as DynamoDB and Secrets Manager.

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
Runs of the binaries are interleaved (run 1 of each, then run 2 of each, ...) so a busy moment of
the machine does not fall on one binary only. One discarded warm-up run per binary first.

The functions run with their environment as in infra/template.yaml (tables, the pepper secret's
ARN, allowed hosts), against this script's own moto on a free port. DynamoDB and Secrets Manager
get different endpoint host names (`127.0.0.1` and `localhost`), as they have in AWS: a connection
opened for the pepper fetch is not reused by the first DynamoDB call (`--shared-endpoint` to turn
this off). moto closes every connection after one response; `--tls` puts
scripts/tls_keepalive_proxy.py in between (HTTPS, keep-alive), so connections are reused and the
first call on each pays a TLS handshake, as with AWS endpoints. Setup through the same Runtime API: the keys function creates the `demo` brand and a
key, the public API function the offer capture's event names.

Also reports each binary's size, stripped size and the size of a Lambda zip of it (the binary as
`bootstrap`). Writes .tmp/bench-cold-start.md (tables, targets), .tmp/bench-cold-start.json (every
sample) and docs/bench/cold-start.svg (chart).
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
from tls_keepalive_proxy import TlsKeepAliveProxy, make_certificate, trust_bundle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / ".tmp"
WORK = TMP / "bench-cold-start"
REGION = "us-east-1"
ACCOUNT = "123456789012"
MCP_HOST = "api.trcker.example"  # the Host header of the sample events
RUN_TIMEOUT_S = 60.0
INIT_RATIO_TARGET = 1.5
FIRST_TO_WARM_TARGET = 3.0
ZIP_TARGET_BYTES = 5 * 1024 * 1024
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


def run_process(binary: Path, env: dict[str, str], events: list[bytes], pause_s: float, log_file: Any) -> tuple[Session, int]:
    """Starts `binary` against a fresh Runtime API, feeds it `events`, stops it (SIGKILL, as a
    frozen container is reclaimed); the session and the time of exec."""
    session = Session(events, pause_s)
    runtime = RuntimeApi(session)
    env = {**env, "AWS_LAMBDA_RUNTIME_API": runtime.address}
    started = now_ns()
    process = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=WORK)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not session.done.wait(0.05):
            if process.poll() is not None:
                session.error = session.error or f"exited with status {process.returncode} after {len(session.responses)} of {len(events)} responses"
                break
            if time.monotonic() > deadline:
                session.error = f"no response {len(session.responses) + 1} within {RUN_TIMEOUT_S:.0f} s"
                break
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
    event["requestContext"]["http"]["sourceIp"] = f"198.51.{100 + invocation}.{1 + run % 250}"
    event["requestContext"]["requestId"] = f"bench-capture-{run}-{invocation}"
    return event


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
    BASELINE: Spec(BASELINE, 128, whoami_event, http_ok(200), "hello world, `GET /api/public/whoami` event", lambda bench: {}),
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

    # -- environment ----------------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if self.proxy is not None and self.trust_bundle is not None and self.proxy_cert is not None:
            # HTTPS with keep-alive, as AWS endpoints: see scripts/tls_keepalive_proxy.py. The
            # proxy's certificate is self-signed, so the functions cannot use their built-in
            # Amazon roots: they trust that one certificate instead (system mode, an empty
            # certificate directory), the nearest stand-in for the built-in store's cost.
            env["AWS_ENDPOINT_URL_DYNAMODB"] = f"https://127.0.0.1:{self.proxy.port}"
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"https://localhost:{self.proxy.port}"
            env["TRCKER_TLS_ROOTS"] = "system"
            env["SSL_CERT_FILE"] = str(self.proxy_cert)
            env["SSL_CERT_DIR"] = str(self.empty_cert_dir())
        elif self.args.shared_endpoint:
            env["AWS_ENDPOINT_URL"] = self.endpoint
        else:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{self.moto_port}"
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://localhost:{self.moto_port}"
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

    def function_env(self, spec: Spec) -> dict[str, str]:
        """What Lambda and infra/template.yaml give the function; nothing from this shell."""
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
        env.update(self.aws_env())
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
        self.proxy_cert = cert
        self.trust_bundle = trust_bundle(WORK, cert)
        self.proxy = TlsKeepAliveProxy(self.moto_port, cert, key)
        log(f"HTTPS keep-alive proxy to moto on 127.0.0.1:{self.proxy.port} (DynamoDB) and localhost:{self.proxy.port} (Secrets Manager)")

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
        session, started = run_process(target.path, self.function_env(spec), events, self.args.pause_ms / 1000, log_file)
        log_file.flush()
        if session.error:
            raise RuntimeError(f"{target.label}, run {run}: {session.error}\n{tail(WORK / f'{target.label}.log')}")
        for index, body in enumerate(session.responses):
            try:
                answer = json.loads(body)
            except ValueError:
                answer = body.decode(errors="replace")
            if not spec.ok(answer):
                raise RuntimeError(f"{target.label}, run {run}, invocation {index + 1}: unexpected answer {str(answer)[:1500]}")
        if run < 0:
            return
        ms = 1e-6
        target.init_ms.append((session.next_at[0] - started) * ms)
        target.first_response_ms.append((session.responded_at[0] - started) * ms)
        target.first_invoke_ms.append((session.responded_at[0] - session.delivered_at[0]) * ms)
        target.warm_invoke_ms.extend((session.responded_at[i] - session.delivered_at[i]) * ms for i in range(1, len(events)))

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        if self.moto is not None:
            self.moto.stop()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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


def report(bench: Bench, targets: list[Target], started: str, loads: tuple[str, str]) -> str:
    args = bench.args
    baselines = {target.label: target for target in targets if target.spec.name == BASELINE}
    lines = [
        "# Cold start (scripts/bench-cold-start)",
        "",
        f"Run {started}; {args.runs} runs per binary (plus one discarded warm-up), {1 + args.warm_invokes} invocations per run "
        f"(a {args.pause_ms} ms pause before each warm one); machine: {machine()}; load average at start {loads[0]}, at end {loads[1]}.",
        f"Release profile: {release_profile()}.",
        "Endpoints: " + endpoints_note(args),
        "",
        "Times in ms, median / p90. init: exec to the first `invocation/next`; first response: exec to the first response; "
        "first invoke: first event handed out to its response; warm invoke: the same for later events.",
        "",
        "| binary | request | init | first response | first invoke | warm invoke | init / baseline | first / warm invoke |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in targets:
        baseline = baselines.get(target.label.replace(target.spec.name, BASELINE, 1)) or baselines.get(BASELINE)
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
    lines += ["", "| binary | built | stripped | zip (`bootstrap`) |", "|---|---|---|---|"]
    for target in targets:
        sizes = target.sizes
        lines.append(f"| `{target.label}` | {mib(sizes['built'])} | {mib(sizes['stripped'])} | {mib(sizes['zip'])} ({sizes['zip']:,} B) |")
    lines += ["", "Targets:", "", "| target | binary | measured | |", "|---|---|---|---|"]
    for target in targets:
        if target.spec.name == BASELINE:
            continue
        baseline = baselines.get(target.label.replace(target.spec.name, BASELINE, 1)) or baselines.get(BASELINE)
        if baseline:
            ratio = median(target.init_ms) / median(baseline.init_ms)
            lines.append(f"| init median <= {INIT_RATIO_TARGET}x baseline | `{target.label}` | {ratio:.2f}x ({fmt_ms(median(target.init_ms))} vs {fmt_ms(median(baseline.init_ms))} ms) | {verdict(ratio <= INIT_RATIO_TARGET)} |")
        ratio = median(target.first_invoke_ms) / median(target.warm_invoke_ms)
        lines.append(f"| first invoke <= {FIRST_TO_WARM_TARGET:.0f}x warm invoke (medians) | `{target.label}` | {ratio:.2f}x ({fmt_ms(median(target.first_invoke_ms))} vs {fmt_ms(median(target.warm_invoke_ms))} ms) | {verdict(ratio <= FIRST_TO_WARM_TARGET)} |")
        zipped = target.sizes["zip"]
        lines.append(f"| zip <= 5 MiB | `{target.label}` | {mib(zipped)} | {verdict(zipped <= ZIP_TARGET_BYTES)} |")
    return "\n".join(lines) + "\n"


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
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 34}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle" fill="#555">{tick:g}</text>')
        tick += step
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
    args = parser.parse_args()
    if args.runs < 1 or args.warm_invokes < 1:
        parser.error("--runs and --warm-invokes must be at least 1")
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
    finally:
        bench.stop()
    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = report(bench, targets, started, (load_start, load_end))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    samples = {
        target.label: {"path": str(target.path), "sizes": target.sizes, "init_ms": target.init_ms, "first_response_ms": target.first_response_ms, "first_invoke_ms": target.first_invoke_ms, "warm_invoke_ms": target.warm_invoke_ms}
        for target in targets
    }
    args.out.with_suffix(".json").write_text(json.dumps({"started": started, "args": {k: str(v) for k, v in vars(args).items()}, "targets": samples}, indent=1))
    chart(targets, args.svg, f"{started}; {args.runs} runs per binary; {machine()}")
    print(text)
    log(f"results: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}; chart: {args.svg.relative_to(ROOT) if args.svg.is_relative_to(ROOT) else args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
