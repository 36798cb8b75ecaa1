"""The store outage drill: trcker-local on DynamoDB served by a moto of its own, then moto frozen
(SIGSTOP: connections accepted, never answered), thawed, killed and started again on the same port.

Checks, on the public API, capture and MCP:
- while moto is frozen or dead, requests that need the store answer 503 with Retry-After and the
  JSON error `store_unavailable`, and no request outlives its bound: the SDK operation timeout
  (TRCKER_STORE_TIMEOUT_MS) times the store calls it makes one after another (the bound is
  asserted with a 3x margin; the times are printed, not judged);
- when moto answers again the same gateway process serves again, without a restart: after the
  freeze with the same data, after the kill (moto keeps nothing) once the tables are re-created and
  a new key is generated through the gateway.

Usage: TRCKER_LOCAL_BIN=target/debug/trcker-local .venv/bin/python scripts/moto_outage.py
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STORE_TIMEOUT_MS = 1000
TIMEOUT_S = STORE_TIMEOUT_MS / 1000
# The verify path makes one store call (the hash lookup) before it can answer 503; a request with
# a cached key makes up to four in sequence (rate counter, the handler's read, the audit write and
# its retry), each bounded by the operation timeout.
VERIFY_CALLS = 1
CACHED_KEY_CALLS = 4
MARGIN = 3
CACHE_TTL_S = 5.5  # the verify cache's default TTL (5 s), and a little


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    moto = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/moto_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return moto
        except OSError:
            time.sleep(0.2)
    moto.kill()
    raise SystemExit(f"moto did not start on port {port}")


def call(base: str, method: str, path: str, key: str | None, body=None, headers=None):
    """(status, headers, parsed JSON body, seconds)."""
    request = urllib.request.Request(base + path, method=method)
    request.add_header("User-Agent", "moto-outage/1.0")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, data=data, timeout=60) as response:
            status, got_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, got_headers, raw = error.code, error.headers, error.read()
    elapsed = time.monotonic() - start
    return status, got_headers, json.loads(raw) if raw else None, elapsed


def invoke_keys(base: str, payload: dict) -> dict:
    """The keys function through the Lambda Invoke API, signed by the SDK as `aws lambda invoke`
    signs it: trcker-local refuses an unsigned invoke (any credentials do, it checks the shape)."""
    client = boto3.client(
        "lambda", endpoint_url=base, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    response = client.invoke(FunctionName="keys", Payload=json.dumps(payload).encode())
    assert response["StatusCode"] == 200, response
    return json.loads(response["Payload"].read())


REQUESTS = {
    "public API read": ("GET", "/api/public/partners", None, {}),
    "capture": (
        "POST",
        "/api/clicks/capture",
        {"click_id": "outage-click", "sub1": "drill"},
        {},
    ),
    "MCP tools/call": (
        "POST",
        "/api/mcp",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "whoami", "arguments": {}}},
        {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"},
    ),
}


def expect_unavailable(base: str, key: str, phase: str, calls: int) -> None:
    bound = calls * TIMEOUT_S * MARGIN
    for name, (method, path, body, headers) in REQUESTS.items():
        status, got, parsed, elapsed = call(base, method, path, key, body, headers)
        print(f"  {phase}: {name}: {status} in {elapsed:.2f} s (bound {bound:.1f} s)")
        if name == "MCP tools/call" and status == 200:
            # With a cached key the whoami tool needs no store: only the guard's writes fail
            # (the limiter fails open, the audit record goes to the log).
            assert calls == CACHED_KEY_CALLS, (phase, parsed)
        else:
            assert status == 503, (phase, name, status, parsed)
            assert got.get("Retry-After") == "1", (phase, name, dict(got))
            assert parsed["error"]["code"] == "store_unavailable", (phase, name, parsed)
        assert elapsed < bound, f"{phase}: {name} took {elapsed:.2f} s, bound {bound:.1f} s"


def expect_serving(base: str, key: str, phase: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        status, _, parsed, _ = call(base, "GET", "/api/public/whoami", key)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, (phase, status, parsed)
    for name, (method, path, body, headers) in REQUESTS.items():
        if body and "click_id" in body:
            body = {**body, "click_id": f"click-{phase.replace(' ', '-')}"}
        status, _, parsed, _ = call(base, method, path, key, body, headers)
        assert status in (200, 201), (phase, name, status, parsed)
    print(f"  {phase}: serving again (whoami, partners, capture, MCP: 2xx)")


def main() -> None:
    binary = os.environ.get("TRCKER_LOCAL_BIN", str(ROOT / "target/debug/trcker-local"))
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    moto = start_moto(moto_port)
    suffix = f"{os.getpid()}-{int(time.time())}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TRCKER_KEYS_TABLE": f"outage-keys-{suffix}",
        "TRCKER_DATA_TABLE": f"outage-data-{suffix}",
        "TRCKER_STORE_TIMEOUT_MS": str(STORE_TIMEOUT_MS),
    }
    env.pop("TRCKER_PEPPER_SECRET_ID", None)
    (ROOT / ".tmp").mkdir(exist_ok=True)
    log = open(ROOT / ".tmp/moto-outage-local.err", "w")
    gateway = subprocess.Popen(
        [binary, "--store", "dynamodb", "--create-tables", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        base = None
        for line in gateway.stdout:
            if "listening on" in line:
                base = line.split("listening on ")[1].strip()
                break
        assert base, "trcker-local did not start: see .tmp/moto-outage-local.err"
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        tables = [dynamodb.describe_table(TableName=env[name])["Table"]
                  for name in ("TRCKER_KEYS_TABLE", "TRCKER_DATA_TABLE")]

        def new_key() -> str:
            invoke_keys(base, {"action": "create_brand", "brand_id": "drill", "name": "Drill"})
            return invoke_keys(base, {"action": "generate", "brand_id": "drill"})["key"]

        key = new_key()
        expect_serving(base, key, "before")

        print(f"moto frozen (SIGSTOP), store timeout {STORE_TIMEOUT_MS} ms")
        moto.send_signal(signal.SIGSTOP)
        expect_unavailable(base, key, "frozen, key cached", CACHED_KEY_CALLS)
        time.sleep(CACHE_TTL_S)
        expect_unavailable(base, key, "frozen, key lookup", VERIFY_CALLS)
        moto.send_signal(signal.SIGCONT)
        expect_serving(base, key, "thawed")

        print("moto killed (SIGKILL)")
        moto.kill()
        moto.wait()
        time.sleep(CACHE_TTL_S)
        expect_unavailable(base, key, "killed, key lookup", VERIFY_CALLS)

        print("moto started again on the same port (empty: moto keeps nothing)")
        moto = start_moto(moto_port)
        for table in tables:
            recreate(dynamodb, table)
        key = new_key()
        expect_serving(base, key, "restarted")
        print("moto outage drill: PASS")
    finally:
        gateway.terminate()
        gateway.wait()
        if moto.poll() is None:
            moto.send_signal(signal.SIGCONT)
            moto.terminate()
            moto.wait()


def recreate(dynamodb, table: dict) -> None:
    """The same table again, from the description taken before the kill."""
    arguments = {
        "TableName": table["TableName"],
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = [
        {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
         "Projection": index["Projection"]}
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        arguments["GlobalSecondaryIndexes"] = indexes
    dynamodb.create_table(**arguments)


if __name__ == "__main__":
    main()
