#!/usr/bin/env python3
"""The keys function on trcker-local through the AWS CLI's own `aws lambda invoke --endpoint-url`
(awscli from scripts/requirements-test.txt, in .venv), and the same Invoke path driven the way a
web page could drive it (issue 19), over real sockets against the real binary:

    TRCKER_LOCAL_BIN=target/debug/trcker-local .venv/bin/python infra/local/tests/python/test_aws_cli_invoke.py

It starts trcker-local on a free loopback port with the memory store, then:

- creates a brand, generates its key, lists and rotates keys with `aws lambda invoke`, and uses
  the generated key on the public API: the CLI's signed calls get through;
- `aws lambda invoke --no-sign-request` is refused (`signature_required`) and writes nothing, and
  an unknown function name is Lambda's `ResourceNotFoundException`;
- a page's simple request (text/plain, cross-site `Origin`, no preflight) and any request marked
  with `Sec-Fetch-Site` are refused (`cross_site_request`), signed or not;
- a DNS-rebinding page's requests (a foreign `Host`, here with a real SigV4 signature for that
  host) are refused (`host_not_allowed`) on the Invoke path, the public API, capture, MCP and the
  stats route; so is an absolute-form request target naming a foreign host;
- none of those refused requests created a brand or a key.

The last line is `test result: ok. N passed; 0 failed; (aws cli)`, or FAILED with the counts
(exit status 1). The gateway this script started is always stopped.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[4]
AWS = ROOT / ".venv/bin/aws"
SUFFIX = "(aws cli)"
FUNCTION = "keys"
INVOKE_PATH = f"/2015-03-31/functions/{FUNCTION}/invocations"
REGION = "us-east-1"
# Any credentials: trcker-local checks the signature's shape, not the signature (there is no
# secret to check it against locally).
ACCESS_KEY, SECRET_KEY = "AKIDLOCALTEST", "local-secret"
FOREIGN_HOST = "evil.example"


class Runner:
    """Named checks, one line each, and a cargo-like closing line (scripts/test counts it)."""

    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[tuple[str, str]] = []

    def check(self, name: str, body: Callable[[], Any]) -> None:
        try:
            body()
        except Exception as error:  # noqa: BLE001 - every failure is a test result
            if isinstance(error, AssertionError):
                message = str(error) or "assertion failed"
            else:
                frames = "".join(traceback.format_tb(error.__traceback__)[-3:]).rstrip()
                message = f"{type(error).__name__}: {error}\n{frames}"
            self.failures.append((name, message))
            print(f"test {name} ... FAILED\n    {message.replace(chr(10), chr(10) + '    ')}", flush=True)
            return
        self.passed += 1
        print(f"test {name} ... ok", flush=True)

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


class Gateway:
    """trcker-local on a free loopback port (memory store); always stopped by `stop`."""

    def __init__(self, binary: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="trcker-local-cli-", suffix=".log", delete=False)
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRCKER_")}
        env.setdefault("RUST_LOG", "warn")
        self.process = subprocess.Popen(
            [binary, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self.port: int | None = None
        found = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("trcker-local listening on http://127.0.0.1:") and self.port is None:
                    self.port = int(line.rsplit(":", 1)[1])
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(timeout=60)
        if self.port is None:
            self.stop()
            log = Path(self.log.name).read_text(errors="replace")
            fail(f"trcker-local did not start: stdout {self.lines!r}; stderr:\n{log[-3000:]}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

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


class Cli:
    """`aws lambda invoke --endpoint-url` against the gateway, with credentials and region of its
    own and no configuration files: nothing of the machine's AWS set-up is read or reached."""

    def __init__(self, endpoint: str, work: Path) -> None:
        self.endpoint = endpoint
        self.work = work
        self.env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "TRCKER_"))}
        self.env.update(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": str(work / "no-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_PAGER": "",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        self.calls = 0
        # PyPI has the CLI's version 1 only. Both versions make the same signed Invoke request
        # (botocore); version 2 needs `--cli-binary-format raw-in-base64-out` to send --payload
        # as it is, which version 1 does by default and does not know.
        version = subprocess.run([str(AWS), "--version"], env=self.env, capture_output=True, text=True, timeout=60)
        self.version = (version.stdout or version.stderr).strip()
        self.binary_format = [] if self.version.startswith("aws-cli/1.") else ["--cli-binary-format", "raw-in-base64-out"]

    def run(self, payload: dict[str, Any], *extra: str, function: str = FUNCTION) -> tuple[int, str, str, Any]:
        """(exit status, stdout, stderr, the payload the function answered or None)."""
        self.calls += 1
        out = self.work / f"out-{self.calls}.json"
        argv = [
            str(AWS), "lambda", "invoke",
            "--endpoint-url", self.endpoint,
            "--function-name", function,
            *self.binary_format,
            "--cli-connect-timeout", "10", "--cli-read-timeout", "30",
            "--payload", json.dumps(payload),
            *extra,
            str(out),
        ]  # fmt: skip
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)
        answer = json.loads(out.read_text()) if out.exists() and out.stat().st_size else None
        return done.returncode, done.stdout, done.stderr, answer

    def ok(self, payload: dict[str, Any]) -> Any:
        status, stdout, stderr, answer = self.run(payload)
        if status != 0:
            fail(f"aws lambda invoke {payload} exited {status}: {stderr.strip()}")
        if json.loads(stdout).get("StatusCode") != 200:
            fail(f"aws lambda invoke {payload}: {stdout.strip()}")
        if not isinstance(answer, dict) or "error" in answer:
            fail(f"aws lambda invoke {payload} answered {answer}")
        return answer


def raw_request(port: int, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """One request exactly as given: `Host` included, nothing added (http.client's skip_host)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return response.status, {name.lower(): value for name, value in response.getheaders()}, parsed
    finally:
        connection.close()


def signed_headers(host: str, path: str, body: bytes) -> dict[str, str]:
    """A real SigV4 signature for POST http://host/path, as botocore (the CLI's core) makes it."""
    request = AWSRequest(method="POST", url=f"http://{host}{path}", data=body)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", REGION).add_auth(request)
    return {"Host": host, "Authorization": request.headers["Authorization"], "X-Amz-Date": request.headers["X-Amz-Date"]}


def expect_refused(answer: tuple[int, dict[str, str], Any], code: str, what: str) -> None:
    status, headers, body = answer
    got = body.get("error", {}).get("code") if isinstance(body, dict) else None
    if status != 403 or got != code:
        fail(f"{what}: expected 403 {code}, got {status} {body!r}")
    if headers.get("x-amzn-errortype") != code:
        fail(f"{what}: x-amzn-errortype {headers.get('x-amzn-errortype')!r}, expected {code}")


def run(runner: Runner, gateway: Gateway, work: Path) -> None:
    cli = Cli(gateway.endpoint, work)
    print(f"# {cli.version}, trcker-local on {gateway.endpoint}", flush=True)
    port = gateway.port
    assert port is not None
    loopback = f"127.0.0.1:{port}"
    brand = "cli-brand"
    keys: dict[str, str] = {}

    def create_and_generate() -> None:
        created = cli.ok({"action": "create_brand", "brand_id": brand, "name": "CLI Brand"})
        if created.get("brand", {}).get("brand_id") != brand:
            fail(f"create_brand answered {created}")
        generated = cli.ok({"action": "generate", "brand_id": brand, "label": "cli"})
        if not str(generated.get("key", "")).startswith("tk_") or not generated.get("key_id"):
            fail(f"generate answered {generated}")
        keys["first"], keys["first_id"] = generated["key"], generated["key_id"]
        status, _, whoami = raw_request(port, "GET", "/api/public/whoami", {"Host": loopback, "Authorization": f"Bearer {keys['first']}"})
        if status != 200 or whoami.get("brand_id") != brand or whoami.get("key_id") != keys["first_id"]:
            fail(f"whoami with the generated key: {status} {whoami}")

    runner.check("aws_lambda_invoke_creates_a_brand_and_a_working_key", create_and_generate)

    def rotate() -> None:
        if not keys:
            fail("no key from the previous check")
        second = cli.ok({"action": "generate", "brand_id": brand, "label": "rotated"})
        listed = cli.ok({"action": "list", "brand_id": brand})
        active = sorted(item["key_id"] for item in listed.get("keys", []) if item.get("status") == "active")
        if active != sorted([keys["first_id"], second["key_id"]]):
            fail(f"list after the second generate: {listed}")
        revoked = cli.ok({"action": "revoke", "brand_id": brand, "key_id": keys["first_id"]})
        if revoked.get("key", {}).get("key_id") != keys["first_id"] or revoked["key"].get("status") != "revoked":
            fail(f"revoke answered {revoked}")
        old = raw_request(port, "GET", "/api/public/whoami", {"Host": loopback, "Authorization": f"Bearer {keys['first']}"})
        new = raw_request(port, "GET", "/api/public/whoami", {"Host": loopback, "Authorization": f"Bearer {second['key']}"})
        if old[0] != 401 or new[0] != 200:
            fail(f"after the rotation: old key {old[0]} {old[2]}, new key {new[0]} {new[2]}")

    runner.check("aws_lambda_invoke_rotates_keys", rotate)

    def unsigned_cli() -> None:
        status, _, stderr, answer = cli.run({"action": "create_brand", "brand_id": "cli-unsigned", "name": "Unsigned"}, "--no-sign-request")
        if status == 0 or "signature_required" not in stderr or "SigV4" not in stderr:
            fail(f"--no-sign-request: exit {status}, stderr {stderr.strip()!r}, payload {answer}")
        status, _, _, answer = cli.run({"action": "list", "brand_id": "cli-unsigned"})
        if status != 0 or (answer or {}).get("error", {}).get("code") != "brand_not_found":
            fail(f"the unsigned create_brand wrote a brand: {answer}")

    runner.check("aws_lambda_invoke_unsigned_is_refused_and_writes_nothing", unsigned_cli)

    def unknown_function() -> None:
        status, _, stderr, _ = cli.run({"action": "list", "brand_id": brand}, function="no-such-function")
        if status == 0 or "ResourceNotFoundException" not in stderr:
            fail(f"unknown function: exit {status}, stderr {stderr.strip()!r}")

    runner.check("aws_lambda_invoke_unknown_function_is_resource_not_found", unknown_function)

    page_brand = "page-brand"
    page_payload = json.dumps({"action": "create_brand", "brand_id": page_brand, "name": "Page"}).encode()
    generate_payload = json.dumps({"action": "generate", "brand_id": brand, "label": "page"}).encode()

    def simple_requests() -> None:
        for payload in (page_payload, generate_payload):
            # What fetch(url, {method: "POST", mode: "no-cors", body}) sends: no preflight.
            page = {
                "Host": loopback,
                "Content-Type": "text/plain;charset=UTF-8",
                "Origin": "https://evil.example",
                "Sec-Fetch-Site": "cross-site",
                "Sec-Fetch-Mode": "no-cors",
            }
            expect_refused(raw_request(port, "POST", INVOKE_PATH, page, payload), "cross_site_request", "page's simple request")
            only_origin = {"Host": loopback, "Content-Type": "text/plain", "Origin": "https://evil.example"}
            expect_refused(raw_request(port, "POST", INVOKE_PATH, only_origin, payload), "cross_site_request", "Origin alone")
            fetch_metadata = signed_headers(loopback, INVOKE_PATH, payload) | {"Sec-Fetch-Site": "same-origin"}
            expect_refused(raw_request(port, "POST", INVOKE_PATH, fetch_metadata, payload), "cross_site_request", "signed, Sec-Fetch-Site")
            unsigned = {"Host": loopback, "Content-Type": "application/json"}
            expect_refused(raw_request(port, "POST", INVOKE_PATH, unsigned, payload), "signature_required", "unsigned, no browser headers")

    runner.check("a_pages_simple_request_to_invoke_is_refused", simple_requests)

    def rebinding() -> None:
        foreign = f"{FOREIGN_HOST}:{port}"
        headers = signed_headers(foreign, INVOKE_PATH, page_payload)
        expect_refused(raw_request(port, "POST", INVOKE_PATH, headers, page_payload), "host_not_allowed", "signed invoke, foreign Host")
        for method, path, extra in (
            ("GET", "/api/public/health", {}),
            ("GET", "/api/public/whoami", {"Authorization": "Bearer tk_x"}),
            ("POST", "/api/clicks/capture", {"Content-Type": "application/json"}),
            ("POST", "/api/mcp", {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}),
            ("GET", "/_local/stats", {}),
            ("GET", "/nowhere", {}),
        ):
            answer = raw_request(port, method, path, {"Host": foreign, **extra}, b"{}" if method == "POST" else b"")
            expect_refused(answer, "host_not_allowed", f"{method} {path}, foreign Host")
        # The same routes with a loopback Host are served (or refused for other reasons).
        status, _, health = raw_request(port, "GET", "/api/public/health", {"Host": f"localhost:{port}"})
        if status != 200:
            fail(f"health with Host localhost: {status} {health}")
        status, _, stats = raw_request(port, "GET", "/_local/stats", {"Host": f"[::1]:{port}"})
        if status != 200:
            fail(f"stats with Host [::1]: {status} {stats}")
        absolute = signed_headers(loopback, INVOKE_PATH, page_payload)
        answer = raw_request(port, "POST", f"http://{foreign}{INVOKE_PATH}", absolute, page_payload)
        expect_refused(answer, "host_not_allowed", "absolute-form target naming a foreign host")

    runner.check("a_rebinding_pages_requests_are_refused_on_every_route", rebinding)

    def nothing_written() -> None:
        status, _, _, answer = cli.run({"action": "list", "brand_id": page_brand})
        if status != 0 or (answer or {}).get("error", {}).get("code") != "brand_not_found":
            fail(f"a refused request created {page_brand}: {answer}")
        listed = cli.ok({"action": "list", "brand_id": brand})
        items = listed.get("keys", [])
        labels = sorted(item.get("label") or "" for item in items)
        if "page" in labels or len(items) != 2:
            fail(f"a refused generate inserted a key: {listed}")

    runner.check("refused_requests_created_no_brand_and_no_key", nothing_written)


def main() -> int:
    runner = Runner()
    # A SIGTERM (a CI timeout) still stops the gateway through the finally block.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    binary = os.environ.get("TRCKER_LOCAL_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        runner.check("environment", lambda: fail("set TRCKER_LOCAL_BIN to the trcker-local binary (cargo build -p trcker-local)"))
    elif not os.access(AWS, os.X_OK):
        runner.check("environment", lambda: fail(f"{AWS} is missing: run scripts/python-env (awscli is in scripts/requirements-test.txt)"))
    else:
        gateway = None
        try:
            gateway = Gateway(binary)
            with tempfile.TemporaryDirectory(prefix="aws-cli-invoke-") as work:
                run(runner, gateway, Path(work))
        except AssertionError as error:
            runner.check("gateway", lambda: fail(str(error)))
        finally:
            if gateway is not None:
                gateway.stop()
    print(f"(took {time.monotonic() - started:.1f} s)")
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
