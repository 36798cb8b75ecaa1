#!/usr/bin/env python3
"""A loopback HTTP proxy that adds `Authorization: Bearer <key>` to every request it forwards.

The MCP conformance suite has no way to send a static bearer key, and trcker's /api/mcp refuses
every request without one (there is no switch to turn that off, on purpose). This proxy sits
between them: the suite talks to the proxy, the proxy talks to trcker-local with the brand key.

    MCP_PROXY_KEY=tk_... python3 auth_proxy.py --upstream http://127.0.0.1:3000

The key comes from the environment (not argv, which other processes can read). The first line
printed is `auth-proxy listening on http://127.0.0.1:PORT`. Everything else passes through as
sent, including `Host` and `Origin` (so the suite's DNS-rebinding checks reach the server
unchanged) and an `Authorization` header the client sent itself is replaced. Responses are
streamed back as they arrive (Server-Sent Events included). Python standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: urllib.parse.SplitResult
    key: str
    timeout_seconds: float = 120.0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("MCP_PROXY_VERBOSE"):
            sys.stderr.write("auth-proxy: " + (format % args) + "\n")

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self) -> None:
        body = self._body()
        headers = {}
        for name, value in self.headers.items():
            if name.lower() in HOP_BY_HOP or name.lower() in ("authorization", "content-length"):
                continue
            headers[name] = value
        headers["Authorization"] = f"Bearer {self.key}"
        if body is not None:
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=self.timeout_seconds)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body)
            response = connection.getresponse()
        except OSError as error:
            connection.close()
            message = f"auth-proxy: upstream unreachable: {error}".encode()
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return
        try:
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() in HOP_BY_HOP:
                    continue
                self.send_header(name, value)
            chunked = length is None and self.command != "HEAD" and response.status not in (204, 304)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                data = response.read1(65536) if chunked else response.read(65536)
                if not data:
                    break
                if chunked:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                else:
                    self.wfile.write(data)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            connection.close()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = _forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the server's origin, e.g. http://127.0.0.1:3000")
    parser.add_argument("--port", type=int, default=0, help="loopback port to listen on (0: a free one)")
    args = parser.parse_args()
    key = os.environ.get("MCP_PROXY_KEY", "")
    if not key:
        raise SystemExit("auth-proxy: set MCP_PROXY_KEY to the bearer key to add")
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
        raise SystemExit("auth-proxy: --upstream must be http://HOST:PORT")
    Proxy.upstream = upstream
    Proxy.key = key
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    server.daemon_threads = True
    print(f"auth-proxy listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
