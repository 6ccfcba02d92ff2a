"""The embedded moto server: keep-alive HTTP, cached routing, and its own process.

``python -m cadenza.local.moto_server --host 127.0.0.1 --port 0`` is what
:class:`cadenza.local.emulator.Emulator` runs: it applies the fidelity patches
(:func:`cadenza.local.fidelity.apply_embedded_moto_patches`) in that process, binds, prints one
line (``cadenza-moto ready <port>``, or ``cadenza-moto error <errno> <message>`` when the port
cannot be bound) and serves until its standard input closes: the emulator closes it to stop the
server, and the operating system closes it when the emulator's process dies, so the server
never outlives its stack. moto serves every request of a process under one interpreter lock;
in a process of its own it has a core to itself, beside the handlers and workers of the stack.

:func:`make_moto_server` is the same server for use in a thread of this process.

Keep-alive: werkzeug's development server, which moto's server mode uses, sends
``Connection: close`` with every response (its request handler cannot find the end of a request
body it did not read), so every AWS call opened a new TCP connection. The handler here reads the
whole request body before moto sees it, answers with an exact ``Content-Length`` and keeps the
connection open: botocore's connection pools then reuse their connections.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

__all__ = ["READY", "close_connections", "main", "make_moto_server"]

log = logging.getLogger("cadenza.local.moto")

#: The first word of the line the server process prints once it is listening (or failed to).
READY = "cadenza-moto"
#: A kept-alive connection with no request for this long is closed (the client reconnects).
IDLE_SECONDS = 120
#: Headers the server sets itself, from the body it sends.
_FRAMING = {"content-length", "transfer-encoding", "connection"}


class _RoutingCacheDispatcher(DomainDispatcherApplication):
    """moto's dispatcher with its per-request routing remembered.

    moto works out which service a request is for under one global lock, on every request, by
    trying each backend's patterns; that alone was a quarter of the local stack's CPU. The
    answer depends only on the signing scope, the JSON target prefix and the host, so it is
    cached by those (requests that carry no signature take moto's own path).
    """

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._routes: dict[tuple[str, str, str], Any] = {}

    def get_application(self, environ: dict[str, Any]) -> Any:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scope_start = authorization.find("Credential=")
        path = environ.get("PATH_INFO", "")
        if scope_start < 0 or path.startswith(("/moto-api", "/latest/")):
            return super().get_application(environ)
        scope = authorization[scope_start:].split(",", 1)[0].split("/", 2)[-1]
        target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
        key = (scope, target, environ.get("HTTP_HOST", ""))
        app = self._routes.get(key)
        if app is None:
            app = super().get_application(environ)
            self._routes[key] = app
        return app


class _KeepAliveHandler(MotoRequestHandler):
    """moto's request handler (it keeps header spellings), with persistent HTTP/1.1
    connections: the body is read in full first, the response is framed by Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS

    def setup(self) -> None:
        super().setup()
        # A response is headers then body: without this, Nagle's algorithm holds the body back
        # until the client acknowledges the headers, which it delays (40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections: set[socket.socket] | None = getattr(self.server, "cadenza_connections", None)
        if connections is not None:
            connections.add(self.connection)

    def finish(self) -> None:
        connections: set[socket.socket] | None = getattr(self.server, "cadenza_connections", None)
        if connections is not None:
            connections.discard(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            return  # an idle kept-alive connection closed after IDLE_SECONDS: routine
        super().log_error(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(100).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._read_body()
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        self.environ = environ
        status, headers, payload = self._call_app(environ)
        try:
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            sent_length = None
            for name, value in headers:
                lowered = name.lower()
                if lowered == "content-length":
                    sent_length = value
                if lowered not in _FRAMING:
                    self.send_header(name, value)
            no_body = self.command == "HEAD" or int(code) in (204, 304) or int(code) < 200
            if self.command == "HEAD" and sent_length is not None:
                # A HEAD answer describes the body a GET would have (S3 objects).
                self.send_header("Content-Length", sent_length)
            elif not no_body:
                self.send_header("Content-Length", str(len(payload)))
            if not no_body:
                # One write for headers and body (end_headers would send the headers alone).
                self._headers_buffer.append(b"\r\n" + payload)  # type: ignore[attr-defined]
                self.flush_headers()
            else:
                self.end_headers()
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as error:
            self.close_connection = True
            self.connection_dropped(error, environ)

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return written.append

        try:
            result: Iterable[bytes] = self.server.app(environ, start_response)
            try:
                for chunk in result:
                    written.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("moto failed on %s %s", self.command, self.path)
            return ("500 Internal Server Error", [("Content-Type", "text/plain")],
                    b"Internal Server Error")
        if not started:
            return "500 Internal Server Error", [], b""
        return started[0], started[1], b"".join(written)


def make_moto_server(host: str, port: int) -> BaseWSGIServer:
    """A threaded moto server bound to ``host``:``port`` (0: a free port), not yet serving.

    Raises OSError when the port cannot be bound (werkzeug would print and exit)."""
    if port:
        # werkzeug reports a taken port by printing and calling sys.exit(1): find out first.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    app = _RoutingCacheDispatcher(create_backend_app)
    try:
        server = make_server(host, port, app, True, request_handler=_KeepAliveHandler)
    except SystemExit as exc:
        raise OSError(98, f"cannot listen on {host}:{port}") from exc
    server.cadenza_connections = set()  # type: ignore[attr-defined]
    return server


def close_connections(server: BaseWSGIServer) -> None:
    """End the kept-alive connections of a stopped server (their threads then exit)."""
    for connection in list(getattr(server, "cadenza_connections", ())):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cadenza.local.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="moto: %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from cadenza.local.fidelity import apply_embedded_moto_patches

    apply_embedded_moto_patches()
    try:
        server = make_moto_server(args.host, args.port)
    except OSError as exc:
        print(f"{READY} error {exc.errno or 0} {exc.strerror or exc}", flush=True)
        return 2
    print(f"{READY} ready {server.server_address[1]}", flush=True)
    # Nothing else may go to the pipe the emulator reads once (a full pipe would block moto).
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the emulator stops it, after its stack

    def watch_parent() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        server.shutdown()

    threading.Thread(target=watch_parent, name="cadenza-moto-parent", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        close_connections(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
