"""HTTPS front for moto with keep-alive, for scripts/bench_cold_start.py's `--tls` mode (and, with
a delay and with or without TLS, its warm invocations' stand-in for DynamoDB's latency).

moto's server (werkzeug) closes every connection after one response and speaks plain HTTP, so
against it every SDK call opens a new connection for nothing and a warm connection is worth
nothing. AWS endpoints speak TLS and keep connections open: the first call on a connection pays
the TCP and TLS handshakes, later calls do not. This proxy gives the functions that behaviour on
loopback: it terminates TLS (a throwaway self-signed certificate for `localhost` and `127.0.0.1`),
keeps the client's connection open, and forwards each request to moto unchanged.

The certificate is made with the `openssl` command. The functions trust it through
`TRCKER_TLS_ROOTS=system` and `SSL_CERT_FILE`: alone (the nearest stand-in for their built-in Amazon
roots) or, with `trust_bundle()`, appended to the system bundle (the cost of the system store).

`KeepAliveProxy` is the same front without TLS when given no certificate, and either can hold
every answer back by `delay_s` (scripts/bench_cold_start.py's warm invocations, `--latency-ms`):
moto answers in well under a millisecond where DynamoDB takes a few, so a function's duration
against bare moto is nearly all CPU. Each request waits in its own thread, so concurrent calls
wait side by side, as on a network.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (EC P-256) for localhost and 127.0.0.1, and its key."""
    cert, key = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def trust_bundle(directory: Path, cert: Path) -> Path:
    """The system's CA bundle with the proxy's certificate appended."""
    system = next((Path(path) for path in SYSTEM_BUNDLES if Path(path).is_file()), None)
    bundle = directory / "trust-bundle.pem"
    bundle.write_bytes((system.read_bytes() if system else b"") + b"\n" + cert.read_bytes())
    return bundle


class KeepAliveProxy:
    """Listens on a free loopback port (with TLS when given a certificate and its key), keeps the
    client's connections open and forwards every request to `upstream_port`, each answer sent
    `delay_s` after the upstream gave it."""

    def __init__(self, upstream_port: int, cert: Path | None = None, key: Path | None = None, delay_s: float = 0.0) -> None:
        context: ssl.SSLContext | None = None
        if cert is not None and key is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        self.tls = context is not None
        self.delay_s = delay_s
        self.requests = 0
        self.connections = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                # The handshake here, in the connection's thread, not in the accept loop.
                if context is not None:
                    self.request.do_handshake()
                super().setup()
                proxy.connections += 1

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests += 1
                headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    if proxy.delay_s > 0:
                        time.sleep(proxy.delay_s)
                    self.send_response(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP and name.lower() not in ("server", "date"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    # Header and body in one write (one TLS record where it fits).
                    self._headers_buffer.append(b"\r\n")
                    self.wfile.write(b"".join(self._headers_buffer) + payload)
                    self._headers_buffer = []
                    self.wfile.flush()
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = forward  # noqa: N815 - the base's names

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                connection, address = super().get_request()
                # No Nagle: a response's header and body writes must not wait for a delayed ACK.
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if context is None:
                    return connection, address
                return context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

            def handle_error(self, request: Any, client_address: Any) -> None:
                # Functions are killed mid-connection on purpose.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TlsKeepAliveProxy(KeepAliveProxy):
    """The HTTPS front: `KeepAliveProxy` with a certificate."""

    def __init__(self, upstream_port: int, cert: Path, key: Path, delay_s: float = 0.0) -> None:
        super().__init__(upstream_port, cert, key, delay_s)
