"""Runs moto's DynamoDB/Secrets Manager server on loopback with each request applied atomically.

moto checks a condition and then writes without a lock, so two concurrent TransactWriteItems can
both pass the same condition: something DynamoDB never allows (it serialises transactions on an
item and cancels the loser with TransactionConflict). Serialising whole requests here gives the
emulator DynamoDB's isolation, so concurrency tests judge our conditions, not moto's races.

Usage: python scripts/moto_server.py PORT
"""

import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerializedRequests:
    """WSGI middleware: one request at a time, response fully produced inside the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def main() -> None:
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        SerializedRequests(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
