#!/usr/bin/env python3
"""End to end under a Lambda runtime emulator: the four real function binaries served by
`cargo lambda watch` (the Lambda Runtime API, HTTP routes from `[workspace.metadata.lambda.watch.
router]` in Cargo.toml, the same as the HTTP API's), on moto as DynamoDB and Secrets Manager.

    scripts/e2e-lambda        # builds what it needs, then runs this with the venv's python

This script, by itself, expects the debug binaries (`keys`, `public-api`, `capture`, `mcp`,
`trcker-local`) to be built and `cargo-lambda` to be in the venv (scripts/e2e-lambda sees to both).

It starts moto on a free loopback port; creates the pepper secret there the way CloudFormation's
GenerateSecretString would (a random password) and the two tables from the definitions the store
code uses (`trcker-local --store dynamodb --create-tables`: the data table with its stream); then
runs `cargo lambda watch` on another free loopback port with each function's environment as in AWS
(the pepper's ARN in TRCKER_PEPPER_SECRET_ID, read through Secrets Manager at init), and runs the
flow: every step asserts, and a failure prints the step, the response and the end of the
emulator's log. Watch, the functions it started, trcker-local and moto are always stopped.

Watch has no event source mapping, so nothing runs the stream function: the trcker-local that
created the tables stays up (on a free loopback port nothing else calls) as the data table's stream
consumer. It polls the stream through the DynamoDB Streams API and derives from it what the stream
function derives on AWS (the capture's activity record, scores, signals, rollups), within about a
second; the steps that read derived data wait for it up to DERIVED_TIMEOUT_S.

Secret hygiene over the whole run: every response (HTTP, Lambda Invoke, the MCP SDK's) is kept, the
functions log at TRACE (`TRCKER_E2E_RUST_LOG` to change), and the last steps probe every surface
with bad, unknown and revoked keys, then read every log line the functions, watch, trcker-local and
moto printed and every DynamoDB item: no plaintext key (`tk_` + 40 alphanumerics) may appear
anywhere but in its one generation response, the pepper nowhere, and no error echoes the token.

The last line is `test result: ok. N passed; 0 failed; (lambda emulator e2e)`, or FAILED with the
counts (exit status 1).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = "(lambda emulator e2e)"
REGION = "us-east-1"
# The revocation bound under test: short, so the revocation step is quick.
CACHE_TTL_MS = 1000
# How long the revocation step keeps probing before it gives up. The bound it enforces is the TTL
# itself: any request sent more than CACHE_TTL_MS after the revoke call returned must get 401.
REVOCATION_MARGIN_S = 4.0
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
REST_UA = "trcker-e2e-lambda/1.0"
SHOP_ORIGIN = "https://shop.example"
# cargo-lambda 1.9.2 fills the request context of every HTTP request with these, whatever the
# client: `requestContext.http.sourceIp` and `.userAgent`. The functions take the source IP and the
# user agent from the request context, as API Gateway sets it (there: the caller's address and
# User-Agent), so these are what must show in clicks and the activity log; the browser User-Agent
# header the test sends must not (the header is only a fallback when the context has none).
EMULATOR_SOURCE_IP = "127.0.0.1"
EMULATOR_USER_AGENT = "cargo-lambda"
# How long the first request may wait for a function to start (watch runs `cargo run --bin …`,
# which is only a freshness check once scripts/e2e-lambda has built the binaries).
FUNCTION_START_TIMEOUT_S = float(os.environ.get("TRCKER_E2E_START_TIMEOUT_S", "600"))
# The functions' log level for the run: TRACE by default, so the hygiene check also covers what
# the AWS SDK and the HTTP stack log about each request.
FUNCTION_RUST_LOG = os.environ.get("TRCKER_E2E_RUST_LOG", "trace")
# How long a step waits for what the stream consumer derives (trcker-local polls the stream every
# 250 ms: within about a second), polling every DERIVED_POLL_S. Each poll is an API request, which
# the activity log records and the key's rate budget (100 a minute) counts.
DERIVED_TIMEOUT_S = 10.0
DERIVED_POLL_S = 0.5
# A plaintext key, as docs/ARCHITECTURE.md defines it (shared/src/testing/ also looks for shorter key material).
KEY_SHAPED = re.compile(r"tk_[0-9A-Za-z]{40}")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksummed_key(random_part: str) -> str:
    """A well-formed key (34 random characters + their CRC32 in 6 base62 digits) that no store holds."""
    value = zlib.crc32(random_part.encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[value % 62] + digits
        value //= 62
    return f"tk_{random_part}{digits}"


class StepFailed(AssertionError):
    """A failed assertion, with the response that failed it."""

    def __init__(self, message: str, response: Any = None) -> None:
        super().__init__(message)
        self.response = response


def fail(message: str, response: Any = None) -> None:
    raise StepFailed(message, response)


def short(value: Any, limit: int = 1500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# HTTP through the emulator.


class Response:
    def __init__(self, method: str, url: str, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.method, self.url, self.status, self.headers, self.raw = method, url, status, headers, raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def describe(self) -> str:
        body = self.raw.decode(errors="replace")
        return f"{self.method} {self.url} -> {self.status}\n  headers: {self.headers}\n  body: {short(body)}"


class Http:
    def __init__(self, base: str, transcript: list[tuple[str, str]]) -> None:
        self.base = base
        # Every answer of the run, for the secret-hygiene step: (what, headers and body as text).
        self.transcript = transcript

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Response:
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        url = self.base + path
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("User-Agent", REST_UA)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                status, answer_headers, raw = answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, dict(error.headers), error.read()
        except (TimeoutError, socket.timeout) as error:
            # The emulator keeps a request waiting while its function is not there to take it
            # (e.g. it failed at init): the function's error is in the watch log.
            fail(f"{method} {path}: no answer within {timeout:.0f} s ({error}); a function that failed to start leaves the emulator waiting")
        response = Response(method, url, status, {name.lower(): value for name, value in answer_headers.items()}, raw)
        self.transcript.append((f"{method} {path} -> {status}", json.dumps(response.headers) + "\n" + raw.decode(errors="replace")))
        return response

    def expect(self, status: int | tuple[int, ...], method: str, path: str, **kwargs: Any) -> Response:
        response = self.request(method, path, **kwargs)
        wanted = status if isinstance(status, tuple) else (status,)
        if response.status not in wanted:
            fail(f"{method} {path}: expected HTTP {wanted}, got {response.status}", response.describe())
        return response


# ---------------------------------------------------------------------------------------------
# Processes: moto, trcker-local (the tables, then the stream consumer), cargo lambda watch.


class Process:
    """A child in its own session with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, first_signal: int = signal.SIGTERM, grace: float = 15.0) -> None:
        if self.alive():
            try:
                os.kill(self.process.pid, first_signal)
                self.process.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
        self.log_file.close()


def wait_until(what: str, check: Callable[[], bool], timeout: float, process: Process | None = None, interval: float = 0.2) -> float:
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited ({process.process.returncode}) before {what}:\n{process.tail()}")
        if time.monotonic() - started > timeout:
            tail = f":\n{process.tail()}" if process is not None else ""
            raise RuntimeError(f"{what}: not within {timeout:.0f} s{tail}")
        time.sleep(interval)


def url_answers(url: str, expect: tuple[int, ...] = (200,), timeout: float = 5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status in expect
    except urllib.error.HTTPError as error:
        return error.code in expect
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


def method_answers(method: str, url: str, timeout: float) -> bool:
    """Whether anything at all (any HTTP status) answers `method url`."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


def leftover_function_pids(watch_port: int) -> list[int]:
    """Processes watch started for our functions (their Runtime API names our port), still alive."""
    pids = []
    marker = f":{watch_port}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(var.startswith(b"AWS_LAMBDA_RUNTIME_API=") and marker in var for var in environ):
            pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------------------------------------
# The run.


class Run:
    def __init__(self) -> None:
        self.tmp = ROOT / ".tmp"
        self.tmp.mkdir(exist_ok=True)
        self.run_id = secrets.token_hex(4)
        self.moto: Process | None = None
        self.local: Process | None = None
        self.watch: Process | None = None
        self.watch_port = 0
        self.endpoint = ""
        self.keys_table = f"trcker-e2e-keys-{self.run_id}"
        self.data_table = f"trcker-e2e-data-{self.run_id}"
        self.secret_arn = ""
        self.http: Http | None = None
        self.state: dict[str, Any] = {}
        self.passed = 0
        self.failed: list[str] = []
        self.timings: list[tuple[str, float]] = []
        self.transcript: list[tuple[str, str]] = []
        self.pepper = ""

    # -- infrastructure ---------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def base_env(self) -> dict[str, str]:
        # Nothing from the caller's TRCKER_*/AWS_* may leak into the functions: they get exactly
        # the configuration below, as a deployed function gets its template's.
        env = {name: value for name, value in os.environ.items() if not name.startswith(("TRCKER_", "AWS_"))}
        env.update(self.aws_env())
        return env

    def start_moto(self) -> None:
        started = time.monotonic()
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.moto = Process("moto", [sys.executable, str(ROOT / "scripts/moto_server.py"), str(port)], self.base_env(), self.tmp / "e2e-lambda-moto.log")
        wait_until("moto answers", lambda: url_answers(f"{self.endpoint}/moto-api/"), 60, self.moto)
        self.timings.append(("moto up", time.monotonic() - started))
        log(f"moto (DynamoDB + Secrets Manager) on {self.endpoint}")

    def create_secret(self) -> None:
        import boto3  # moto[server] brings it

        client = boto3.client("secretsmanager", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        # What CloudFormation's GenerateSecretString does: a random password as the SecretString.
        password = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
        self.pepper = password
        created = client.create_secret(Name=f"trcker-e2e-pepper-{self.run_id}", SecretString=password)
        self.secret_arn = created["ARN"]
        log(f"pepper secret {self.secret_arn}")

    def create_tables(self) -> None:
        """The tables from the store code's definitions, through trcker-local --create-tables, which
        then stays up as the data table's stream consumer (what the event source mapping and the
        stream function are on AWS) until stop()."""
        started = time.monotonic()
        binary = os.environ.get("TRCKER_LOCAL_BIN", str(ROOT / "target/debug/trcker-local"))
        env = self.base_env()
        env.update(
            {
                "TRCKER_KEYS_TABLE": self.keys_table,
                "TRCKER_DATA_TABLE": self.data_table,
                "TRCKER_PEPPER_SECRET_ID": self.secret_arn,
                "RUST_LOG": "warn",
            }
        )
        # --port 0: a free loopback port, which nothing calls (the flow goes through watch).
        local = Process("trcker-local", [binary, "--port", "0", "--store", "dynamodb", "--create-tables"], env, self.tmp / "e2e-lambda-local.log")
        self.local = local
        wait_until("trcker-local created the tables", lambda: "trcker-local listening on" in local.log_path.read_text(errors="replace"), 120, local)
        text = local.log_path.read_text(errors="replace")
        for table in (self.keys_table, self.data_table):
            if f"created table {table}" not in text:
                raise RuntimeError(f"table {table} not created:\n{text}")
        self.timings.append(("tables created, stream consumer up", time.monotonic() - started))
        log(f"tables {self.keys_table}, {self.data_table}; trcker-local consumes the data table's stream (log: {local.log_path.relative_to(ROOT)})")

    def function_env(self) -> dict[str, str]:
        hosts = f"127.0.0.1:{self.watch_port},localhost:{self.watch_port}"
        env = self.aws_env()
        env.update(
            {
                "TRCKER_KEYS_TABLE": self.keys_table,
                "TRCKER_DATA_TABLE": self.data_table,
                "TRCKER_PEPPER_SECRET_ID": self.secret_arn,
                "TRCKER_KEY_CACHE_TTL_MS": str(CACHE_TTL_MS),
                "TRCKER_MCP_ALLOWED_HOSTS": hosts,
                "TRCKER_CAPTURE_ALLOWED_ORIGINS": SHOP_ORIGIN,
                "RUST_LOG": FUNCTION_RUST_LOG,
            }
        )
        return env

    def start_watch(self) -> None:
        started = time.monotonic()
        self.watch_port = free_port()
        env_file = self.tmp / f"e2e-lambda-{self.run_id}.env"
        # A file, not --env-var: cargo-lambda splits --env-var values on commas.
        env_file.write_text("".join(f"{name}={value}\n" for name, value in self.function_env().items()))
        self.state["env_file"] = env_file
        env = self.base_env()
        env["PATH"] = f"{ROOT / '.venv/bin'}{os.pathsep}{env.get('PATH', '')}"
        argv = [
            "cargo", "lambda", "watch",
            "--invoke-address", "127.0.0.1",
            "--invoke-port", str(self.watch_port),
            "--ignore-changes",
            # API Gateway forwards OPTIONS to capture (no CORS configured on the API): so must the
            # emulator, instead of answering preflights itself.
            "--disable-cors",
            "--env-file", str(env_file),
        ]
        self.watch = Process("cargo lambda watch", argv, env, self.tmp / "e2e-lambda-watch.log")
        base = f"http://127.0.0.1:{self.watch_port}"
        self.http = Http(base, self.transcript)
        # The emulator's own HTTP server first, then the public API function through the router
        # (watch starts a function on its first request: `cargo run --bin public-api`).
        wait_until("cargo lambda watch listens", lambda: self._port_open(), 120, self.watch)
        listening = time.monotonic() - started
        wait_until(
            "GET /api/public/health through the emulator",
            lambda: url_answers(f"{base}/api/public/health", timeout=FUNCTION_START_TIMEOUT_S),
            FUNCTION_START_TIMEOUT_S,
            self.watch,
            interval=0.5,
        )
        self.timings.append(("watch listening", listening))
        self.timings.append(("watch + public-api ready", time.monotonic() - started))
        # Start capture and mcp as well (each is a `cargo run --bin …`, which may wait for cargo's
        # build lock), so that the steps' request timeouts measure the functions, not their start.
        for method, path in (("OPTIONS", "/api/clicks/capture"), ("GET", "/api/mcp")):
            wait_until(
                f"{method} {path} through the emulator",
                lambda method=method, path=path: method_answers(method, f"{base}{path}", FUNCTION_START_TIMEOUT_S),
                FUNCTION_START_TIMEOUT_S,
                self.watch,
                interval=0.5,
            )
        self.timings.append(("watch + capture and mcp ready", time.monotonic() - started))
        log(f"cargo lambda watch on {base} (log: {self.watch.log_path.relative_to(ROOT)})")

    def _port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.watch_port)) == 0

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop(signal.SIGINT, grace=20)
            for pid in leftover_function_pids(self.watch_port):
                try:
                    os.kill(pid, signal.SIGKILL)
                    log(f"(stopped function process {pid} that outlived watch)")
                except ProcessLookupError:
                    pass
        if self.local is not None:
            self.local.stop(signal.SIGINT)
        if self.moto is not None:
            self.moto.stop()
        env_file = self.state.get("env_file")
        if env_file is not None:
            env_file.unlink(missing_ok=True)

    # -- steps --------------------------------------------------------------------------------

    def step(self, name: str, body: Callable[[], None]) -> bool:
        started = time.monotonic()
        try:
            body()
        except Exception as error:  # noqa: BLE001 - every failure is a test result
            elapsed = time.monotonic() - started
            self.failed.append(name)
            if isinstance(error, AssertionError):
                message = str(error) or "assertion failed"
            else:
                frames = "".join(traceback.format_tb(error.__traceback__)[-3:]).rstrip()
                message = f"{type(error).__name__}: {error}\n{frames}"
            log(f"test {name} ... FAILED ({elapsed:.2f} s)\n  {message}")
            response = getattr(error, "response", None)
            if response is not None:
                log(f"  response: {response if isinstance(response, str) else short(response)}")
            if self.watch is not None:
                log(f"  --- {self.watch.log_path.relative_to(ROOT)} (last lines) ---\n{self.watch.tail(40)}")
            return False
        elapsed = time.monotonic() - started
        self.passed += 1
        self.timings.append((name, elapsed))
        log(f"test {name} ... ok ({elapsed:.2f} s)")
        return True

    def invoke_cli(self, event_file: str) -> Any:
        """`cargo lambda invoke keys --data-file …`: the CLI's Lambda Invoke API call."""
        env = self.base_env()
        env["PATH"] = f"{ROOT / '.venv/bin'}{os.pathsep}{env.get('PATH', '')}"
        argv = [
            "cargo", "lambda", "invoke", "keys",
            "--invoke-address", "127.0.0.1",
            "--invoke-port", str(self.watch_port),
            "--data-file", event_file,
            "--output-format", "json",
        ]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=FUNCTION_START_TIMEOUT_S, stdin=subprocess.DEVNULL)
        self.transcript.append((f"cargo lambda invoke keys --data-file {event_file}", done.stdout + "\n" + done.stderr))
        if done.returncode != 0:
            fail(f"{' '.join(argv)} exited {done.returncode}", f"stdout: {done.stdout}\nstderr: {done.stderr}")
        try:
            return json.loads(done.stdout)
        except ValueError:
            fail(f"{' '.join(argv)} printed no JSON", f"stdout: {done.stdout}\nstderr: {done.stderr}")

    def invoke_api(self, payload: dict[str, Any]) -> Any:
        """The Lambda Invoke API through the AWS SDK (boto3), as `aws lambda invoke` calls it."""
        import boto3

        client = boto3.client("lambda", endpoint_url=self.http.base, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        answer = client.invoke(FunctionName="keys", Payload=json.dumps(payload).encode())
        body = answer["Payload"].read()
        self.transcript.append((f"Invoke keys {payload.get('action')}", body.decode(errors="replace")))
        if answer.get("StatusCode") != 200 or answer.get("FunctionError"):
            fail(f"Invoke keys {payload.get('action')}: status {answer.get('StatusCode')}, FunctionError {answer.get('FunctionError')}", body.decode(errors="replace"))
        return json.loads(body)

    def run_steps(self) -> None:
        http = self.http
        assert http is not None
        s = self.state

        def keys_invoke_api() -> None:
            brand = self.invoke_cli("events/keys/create-brand.json")
            if brand.get("brand", {}).get("brand_id") != "demo":
                fail("create_brand did not create brand demo", brand)
            generated = self.invoke_cli("events/keys/generate.json")
            if not str(generated.get("key", "")).startswith("tk_") or not generated.get("key_id") or not generated.get("fingerprint"):
                fail("generate returned no key", generated)
            s["key"], s["key_id"], s["fingerprint"] = generated["key"], generated["key_id"], generated["fingerprint"]
            listed = self.invoke_api({"action": "list", "brand_id": "demo"})
            if [item.get("key_id") for item in listed.get("data", listed.get("keys", []))] != [s["key_id"]]:
                fail("list does not show exactly the generated key", listed)

        def whoami() -> None:
            answer = http.expect(200, "GET", "/api/public/whoami", key=s["key"]).json
            expected = {"brand_id": "demo", "key_id": s["key_id"], "fingerprint": s["fingerprint"]}
            if answer != expected:
                fail(f"whoami is not {expected}", answer)
            refused = http.expect(401, "GET", "/api/public/whoami")
            if not refused.headers.get("www-authenticate", "").lower().startswith("bearer"):
                fail("401 without WWW-Authenticate: Bearer", refused.describe())

        def routes() -> None:
            # Exactly the template's routes reach a function; the emulator answers the rest.
            preflight = http.expect(204, "OPTIONS", "/api/clicks/capture", headers={"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"})
            if preflight.headers.get("access-control-allow-origin") != SHOP_ORIGIN:
                fail("the preflight was not answered by capture", preflight.describe())
            other_origin = http.expect(403, "OPTIONS", "/api/clicks/capture", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
            if (other_origin.json or {}).get("error", {}).get("code") != "origin_not_allowed":
                fail("an unlisted origin's preflight was not refused by capture", other_origin.describe())
            for method in ("GET", "DELETE"):
                answer = http.expect(401, method, "/api/mcp", headers={"Accept": "application/json, text/event-stream"})
                if (answer.json or {}).get("error", {}).get("code") != "unauthorized":
                    fail(f"{method} /api/mcp did not reach mcp", answer.describe())
            for method, path in (("PUT", "/api/mcp"), ("GET", "/api/clicks/capture"), ("GET", "/api/other"), ("POST", "/api/keys")):
                answer = http.request(method, path, key=s["key"])
                looks_like_ours = isinstance(answer.json, dict) and isinstance(answer.json.get("error"), dict) and "code" in answer.json["error"]
                if answer.status < 400 or looks_like_ours:
                    fail(f"{method} {path} reached a function; the HTTP API has no such route", answer.describe())

        def partner_and_offer() -> None:
            partner = http.expect(201, "POST", "/api/public/partners", key=s["key"], body={"name": "Carol Reviews", "email": "carol@reviews.example", "slug": "carol-reviews"}).json
            offer = http.expect(
                201,
                "POST",
                "/api/public/offers",
                key=s["key"],
                body={"name": "Winter Sale", "slug": "winter-sale", "destination_url": "https://shop.example/winter", "default_payout": {"type": "percent", "amount": 15}},
            ).json
            if not str(partner.get("id", "")) or partner.get("slug") != "carol-reviews":
                fail("partner not created", partner)
            if not str(offer.get("id", "")) or offer.get("slug") != "winter-sale":
                fail("offer not created", offer)
            s["partner"], s["offer"] = partner, offer
            listed = http.expect(200, "GET", "/api/public/offers", key=s["key"]).json
            if [item["id"] for item in listed["data"]] != [offer["id"]]:
                fail("GET /api/public/offers does not list the offer", listed)

        def capture_click() -> None:
            s["click_id"] = f"e2e-click-{self.run_id}"
            # As the snippet sends it: x-api-key, text/plain (no preflight from a page), a browser UA.
            body = json.dumps({"click_id": s["click_id"], "offer": "winter-sale", "partner": "carol-reviews", "sub1": "e2e", "landing_url": f"https://shop.example/winter?click_id={s['click_id']}"}).encode()
            answer = http.expect(
                201,
                "POST",
                "/api/clicks/capture",
                raw_body=body,
                headers={"x-api-key": s["key"], "Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER_UA, "Origin": SHOP_ORIGIN},
            )
            if answer.json != {"status": "recorded", "click_id": s["click_id"]}:
                fail("capture did not record the click", answer.describe())
            if answer.headers.get("access-control-allow-origin") != SHOP_ORIGIN:
                fail("capture's answer to an allowed origin has no Access-Control-Allow-Origin", answer.describe())
            click = http.expect(200, "GET", f"/api/public/clicks/{s['click_id']}", key=s["key"]).json
            for field, expected in (("offer_id", s["offer"]["id"]), ("partner_id", s["partner"]["id"]), ("source_ip", EMULATOR_SOURCE_IP), ("user_agent", EMULATOR_USER_AGENT)):
                if click.get(field) != expected:
                    fail(f"the click's {field} is not {expected!r}", click)
            s["click"] = click

        def conversion() -> None:
            created = http.expect(201, "POST", "/api/public/conversions", key=s["key"], body={"click_id": s["click_id"], "amount": 120, "currency": "USD", "txn_id": f"order-{self.run_id}"}).json
            if created.get("click_id") != s["click_id"] or created.get("partner_id") != s["partner"]["id"] or created.get("offer_id") != s["offer"]["id"]:
                fail("the conversion is not attributed to the click's partner and offer", created)
            payout = created.get("payout") or {}
            if abs(float(payout.get("amount", -1)) - 18.0) > 1e-9:
                fail("the payout is not 15 % of 120", created)
            again = http.expect((200, 201), "POST", "/api/public/conversions", key=s["key"], body={"click_id": s["click_id"], "amount": 120, "currency": "USD", "txn_id": f"order-{self.run_id}"}).json
            if again.get("id") != created.get("id") or again.get("duplicate") is not True:
                fail("the same txn_id again is not the original with duplicate: true", again)
            s["conversion"] = created

        def activity() -> None:
            # The API's records first: the polls below add records of their own.
            api = http.expect(200, "GET", "/api/public/activity?source=api&limit=25", key=s["key"]).json["data"]
            # Newest first: the duplicate (200), then the one that created the conversion (201).
            posted = next((entry for entry in api if entry.get("target") == "/api/public/conversions" and entry.get("method") == "POST" and entry.get("status") == 201), None)
            if posted is None:
                fail("no POST /api/public/conversions answered 201 in the activity log", api)
            expected = {"fingerprint": s["fingerprint"], "key_id": s["key_id"], "source_ip": EMULATOR_SOURCE_IP, "user_agent": EMULATOR_USER_AGENT, "status": 201}
            wrong = {field: posted.get(field) for field, value in expected.items() if posted.get(field) != value}
            if wrong:
                fail(f"the API request's activity record differs from {expected}: {wrong}", posted)
            # The capture's record is derived from the data table's stream (by the trcker-local
            # consumer here, the stream function on AWS): it appears within about a second.
            started = time.monotonic()
            while True:
                captures = http.expect(200, "GET", "/api/public/activity?source=capture&limit=10", key=s["key"]).json["data"]
                capture = next((entry for entry in captures if entry.get("target") == "/api/clicks/capture" and entry.get("method") == "POST"), None)
                if capture is not None:
                    break
                if self.local is None or not self.local.alive():
                    code = None if self.local is None else self.local.process.returncode
                    fail(f"no capture in the activity log, and the stream consumer (trcker-local) is not running (exit {code})", self.local.tail() if self.local is not None else captures)
                if time.monotonic() - started > DERIVED_TIMEOUT_S:
                    tail = self.local.tail()
                    fail(f"no capture in the activity log {DERIVED_TIMEOUT_S:.0f} s after the capture: the stream consumer (trcker-local) derived none", f"activity: {short(captures)}\n  --- {self.local.log_path.relative_to(ROOT)} (last lines) ---\n{tail}")
                time.sleep(DERIVED_POLL_S)
            log(f"  the capture's activity record derived from the stream within {time.monotonic() - started:.2f} s of this step")
            expected = {"fingerprint": s["fingerprint"], "key_id": s["key_id"], "source_ip": EMULATOR_SOURCE_IP, "user_agent": EMULATOR_USER_AGENT, "status": 201, "outcome": "ok"}
            wrong = {field: capture.get(field) for field, value in expected.items() if capture.get(field) != value}
            if wrong:
                fail(f"the capture's activity record differs from {expected}: {wrong}", capture)

        def mcp_tool() -> None:
            import anyio

            anyio.run(self.mcp_checks)

        def rotate_and_revoke() -> None:
            rotated = self.invoke_api({"action": "generate", "brand_id": "demo", "label": "rotated"})
            new_key = rotated.get("key", "")
            if not new_key.startswith("tk_") or rotated.get("key_id") == s["key_id"]:
                fail("generate (rotation) returned no new key", rotated)
            s["new_key"] = new_key
            for key, key_id in ((s["key"], s["key_id"]), (new_key, rotated["key_id"])):
                answer = http.expect(200, "GET", "/api/public/whoami", key=key).json
                if answer.get("key_id") != key_id:
                    fail("during rotation both keys work, each as itself", answer)
            revoked = self.invoke_api({"action": "revoke", "brand_id": "demo", "key_id": s["key_id"]})
            if revoked.get("key", {}).get("status") != "revoked":
                fail("revoke did not revoke", revoked)
            revoked_at = time.monotonic()
            deadline = revoked_at + CACHE_TTL_MS / 1000 + REVOCATION_MARGIN_S
            # Every function holds its own verdict cache: each must refuse the old key in time.
            probes = {
                "public-api": lambda: http.request("GET", "/api/public/whoami", key=s["key"]),
                "capture": lambda: http.request("POST", "/api/clicks/capture", raw_body=json.dumps({"click_id": f"e2e-after-revoke-{self.run_id}", "offer": "winter-sale"}).encode(), headers={"x-api-key": s["key"], "Content-Type": "text/plain", "User-Agent": BROWSER_UA}),
                "mcp": lambda: http.request("POST", "/api/mcp", key=s["key"], body={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}, headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}),
            }
            refused_after: dict[str, float] = {}
            last: dict[str, Response] = {}
            while len(refused_after) < len(probes) and time.monotonic() < deadline:
                for name, probe in probes.items():
                    if name in refused_after:
                        continue
                    sent_after = time.monotonic() - revoked_at
                    last[name] = probe()
                    if last[name].status == 401:
                        refused_after[name] = time.monotonic() - revoked_at
                    elif sent_after > CACHE_TTL_MS / 1000:
                        fail(f"{name} accepted the revoked key in a request sent {sent_after:.2f} s after revocation, past the cache TTL of {CACHE_TTL_MS} ms", last[name].describe())
                time.sleep(0.1)
            late = [name for name in probes if name not in refused_after]
            if late:
                fail(f"the revoked key still works on {late} {CACHE_TTL_MS / 1000 + REVOCATION_MARGIN_S:.1f} s after revocation (cache TTL {CACHE_TTL_MS} ms)", "\n".join(last[name].describe() for name in late))
            message = (last["public-api"].json or {}).get("error", {}).get("message", "")
            if "revoked" not in message:
                fail("the 401 does not say the key was revoked", last["public-api"].describe())
            log("  revoked key refused after " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in refused_after.items()) + f" (cache TTL {CACHE_TTL_MS / 1000:.1f} s)")
            answer = http.expect(200, "GET", "/api/public/whoami", key=new_key).json
            if answer.get("key_id") != rotated["key_id"]:
                fail("the new key does not work after the old one was revoked", answer)
            log_entries = http.expect(200, "GET", "/api/public/activity?source=api&limit=25", key=new_key).json["data"]
            if not any(entry.get("key_id") == s["key_id"] and entry.get("outcome") == "revoked_key" and entry.get("status") == 401 for entry in log_entries):
                fail("the refused attempt with the revoked key is not in the activity log", log_entries)

        steps: list[tuple[str, Callable[[], None]]] = [
            ("keys_generate_through_invoke_api", keys_invoke_api),
            ("public_api_whoami", whoami),
            ("routes_match_the_http_api", routes),
            ("public_api_create_partner_and_offer", partner_and_offer),
            ("capture_click_with_x_api_key", capture_click),
            ("public_api_record_conversion", conversion),
            ("activity_shows_fingerprint_ip_and_user_agent", activity),
            ("mcp_tools_through_python_sdk", mcp_tool),
            ("rotate_then_revoke_within_cache_ttl", rotate_and_revoke),
            ("error_responses_never_echo_the_token", self.no_token_echo),
            ("no_plaintext_key_in_any_log_item_or_other_response", self.secret_hygiene),
        ]
        self.total = len(steps)
        for index, (name, body) in enumerate(steps):
            if not self.step(name, body):
                skipped = [later for later, _ in steps[index + 1 :]]
                if skipped:
                    log(f"(not run after that failure: {', '.join(skipped)})")
                return

    def no_token_echo(self) -> None:
        """Bad, unknown, revoked and misplaced keys on every surface: refused, and never echoed."""
        http = self.http
        s = self.state
        live, revoked = s["new_key"], s["key"]
        typo = live[:-1] + ("A" if live[-1] != "A" else "B")
        unknown = checksummed_key("".join(secrets.choice(BASE62) for _ in range(34)))
        presented = {
            "revoked": revoked,
            "unknown (valid checksum)": unknown,
            "checksum typo": typo,
            "truncated": live[:-4],
            "one character too many": live + "x",
            "lower-cased": live.lower(),
        }
        mcp_headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        mcp_body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        probes: list[tuple[str, str, Response]] = []
        for name, token in presented.items():
            probes.append((name, token, http.request("GET", "/api/public/partners", key=token)))
            probes.append((name, token, http.request("POST", "/api/mcp", key=token, body=mcp_body, headers=mcp_headers)))
            probes.append((name, token, http.request("POST", "/api/clicks/capture", raw_body=b'{"click_id":"echo-probe"}', headers={"x-api-key": token, "Content-Type": "text/plain"})))
        # A key in the URL, and two different keys at once.
        probes.append(("key in the query string", live, http.request("GET", f"/api/public/whoami?api_key={live}", key=live)))
        # A key in the path, plain, with its prefix percent-encoded, or 30 characters of it: refused
        # before the path is stored or logged (the review found `%74k_…` stored undecoded).
        probes.append(("key as a path segment", live, http.request("GET", f"/api/public/partners/{live}", key=live)))
        probes.append(("percent-encoded key in the path", live, http.request("GET", f"/api/public/partners/%74k_{live[3:]}", key=live)))
        probes.append(("key fragment in the path", live, http.request("GET", f"/api/public/partners/{live[:30]}", key=live)))
        probes.append(("conflicting headers", unknown, http.request("POST", "/api/clicks/capture", raw_body=b'{"click_id":"echo-probe"}', headers={"Authorization": f"Bearer {live}", "x-api-key": unknown, "Content-Type": "text/plain"})))
        for name, token, response in probes:
            if "path" in name:
                if (response.status, (response.json or {}).get("error", {}).get("code")) != (400, "credentials_in_url"):
                    fail(f"{name}: expected 400 credentials_in_url, got {response.status}", response.describe())
            elif response.status not in (400, 401):
                fail(f"{name}: expected a 4xx refusal, got {response.status}", response.describe())
            text = json.dumps(response.headers) + response.raw.decode(errors="replace")
            # The distinctive middle of the token: no echo, whole or in part.
            if token[3:23] in text or token[3:23].lower() in text.lower():
                fail(f"{name}: the answer echoes the presented token", response.describe())
            if not (response.json or {}).get("error", {}).get("code"):
                fail(f"{name}: the refusal has no stable error code", response.describe())
        log(f"  {len(probes)} refusals, none echoes its token")

    def secret_hygiene(self) -> None:
        """Every log line, every stored item and every answer of the run, searched for plaintext keys."""
        import boto3

        s = self.state
        generated = [s["key"], s["new_key"]]
        # 1. Every item of both tables, while moto still runs.
        client = boto3.client("dynamodb", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        items: list[str] = []
        for table in (self.keys_table, self.data_table):
            for page in client.get_paginator("scan").paginate(TableName=table):
                items.extend(json.dumps(item, sort_keys=True) for item in page["Items"])
        dump = "\n".join(items)
        if s["fingerprint"] not in dump or "KEYHASH#" not in dump or s["click_id"] not in dump:
            fail("the table dump misses the run's keys or click: it was not read", short(dump))
        # 2. Every log line: the functions (through watch), watch itself, trcker-local (the tables
        # and the stream consumer), moto.
        logs = {process.name: process.log_path.read_text(errors="replace") for process in (self.watch, self.local, self.moto) if process is not None}
        function_lines = logs.get("cargo lambda watch", "")
        for expected in ("key management request", "API key generated", "API key revoked", "request refused before authentication"):
            if expected not in function_lines:
                fail(f"the functions' log lines were not captured: no {expected!r}", function_lines[-3000:])
        places = [(f"DynamoDB items ({len(items)})", dump)] + [(f"the {name} log ({len(text.splitlines())} lines)", text) for name, text in logs.items()]
        for what, text in places:
            found = KEY_SHAPED.findall(text)
            if found:
                fail(f"{what} holds a key-shaped string", [match[:8] + "…" for match in found])
            for key in generated:
                if key[3:23] in text:
                    fail(f"{what} holds part of a generated key")
            if self.pepper and self.pepper in text:
                fail(f"{what} holds the pepper")
        # 3. Every answer: each generated key in exactly one (its generation), nothing else key-shaped.
        carrying = [(what, KEY_SHAPED.findall(text)) for what, text in self.transcript]
        carrying = [(what, found) for what, found in carrying if found]
        for key in generated:
            holders = [what for what, found in carrying if key in found]
            if len(holders) != 1:
                fail(f"a generated key appears in {len(holders)} answers, not just its generation", holders)
        strays = [(what, found) for what, found in carrying if any(match not in generated for match in found) or len(found) != 1]
        if strays:
            fail("answers carry key-shaped strings that are not their own generation", [(what, len(found)) for what, found in strays])
        generations = sorted(what for what, _ in carrying)
        if len(generations) != len(generated) or not all("generate" in what or "generate.json" in what for what in generations):
            fail("only the generation answers may carry a key", generations)
        total_lines = sum(len(text.splitlines()) for text in logs.values())
        log(f"  searched {len(self.transcript)} answers, {total_lines} log lines, {len(items)} DynamoDB items: keys only in {generations}")

    async def mcp_checks(self) -> None:
        from mcp import Client
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        s = self.state
        url = f"{self.http.base}/api/mcp"
        for mode in ("auto", "legacy"):
            statuses: list[int] = []

            async def remember(response: Any) -> None:
                statuses.append(response.status_code)
                # Read here so the hygiene step sees every answer the SDK got (httpx caches it).
                await response.aread()
                self.transcript.append((f"MCP SDK {response.request.method} {response.url} -> {response.status_code}", json.dumps(dict(response.headers)) + "\n" + response.text))

            http = create_mcp_http_client(headers={"Authorization": f"Bearer {s['key']}"})
            http.event_hooks = {"response": [remember]}
            async with http:
                async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                    version = client.protocol_version
                    tools = {tool.name for tool in (await client.list_tools()).tools}
                    if not {"list_offers", "get_program_stats", "whoami"} <= tools:
                        fail(f"mode={mode}: tools/list lacks list_offers, get_program_stats or whoami", sorted(tools))
                    offers = await client.call_tool("list_offers", {})
                    if offers.is_error or not offers.structured_content:
                        fail(f"mode={mode}: list_offers failed", str(offers))
                    ids = [item.get("id") for item in offers.structured_content.get("data", [])]
                    if ids != [s["offer"]["id"]]:
                        fail(f"mode={mode}: list_offers does not list the offer {s['offer']['id']}", offers.structured_content)
                    stats = await client.call_tool("get_program_stats", {})
                    if stats.is_error or not stats.structured_content:
                        fail(f"mode={mode}: get_program_stats failed", str(stats))
                    totals = stats.structured_content.get("totals", stats.structured_content)
                    if totals.get("clicks") != 1 or totals.get("conversions") != 1:
                        fail(f"mode={mode}: get_program_stats does not count one click and one conversion", stats.structured_content)
            if any(status >= 300 for status in statuses):
                fail(f"mode={mode}: HTTP statuses the SDK saw: {statuses}")
            log(f"  mcp mode={mode}: protocol {version}, {len(tools)} tools, HTTP {sorted(set(statuses))}")

    def finish(self) -> int:
        total = getattr(self, "total", 0)
        log("\ntimings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings))
        if self.failed or self.passed != total:
            failed = max(len(self.failed), 1)
            log(f"\ntest result: FAILED. {self.passed} passed; {failed} failed; {SUFFIX}")
            return 1
        log(f"\ntest result: ok. {self.passed} passed; 0 failed; {SUFFIX}")
        return 0


def main() -> int:
    # SIGTERM/SIGHUP end the run like Ctrl-C: the finally below stops watch and moto.
    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    started = time.monotonic()
    run = Run()
    set_up = False
    try:
        try:
            run.start_moto()
            run.create_secret()
            run.create_tables()
            run.start_watch()
            set_up = True
        except Exception as error:  # noqa: BLE001
            log(f"set-up failed: {error}")
            if run.watch is not None:
                log(f"--- {run.watch.log_path.relative_to(ROOT)} (last lines) ---\n{run.watch.tail(60)}")
        if set_up:
            run.run_steps()
    except KeyboardInterrupt as interruption:
        log(f"\ninterrupted ({interruption or 'Ctrl-C'}): stopping watch and moto")
        set_up = False
    finally:
        run.stop()
        log(f"(lambda emulator e2e took {time.monotonic() - started:.1f} s)")
    if not set_up:
        log(f"\ntest result: FAILED. {run.passed} passed; 1 failed; {SUFFIX}")
        return 1
    return run.finish()

if __name__ == "__main__":
    sys.exit(main())
