"""werkzeug serving for the local stack's listeners: kept-alive HTTP/1.1, whole bodies, a 400
for bad framing.

Both listeners of the stack, the HTTP API (:mod:`cadenza.local.runtime`) and the embedded moto
(:mod:`cadenza.local.moto_server`), are WSGI applications served by werkzeug's threaded server
with the request handler here. werkzeug's own handler answers every request with ``Connection:
close`` (it cannot find the end of a body the application did not read), so every call would
open a new TCP connection. This handler reads the whole request body first (by
``Content-Length``, or by its chunks), hands the application a stream of exactly those bytes,
frames the response by ``Content-Length`` and keeps the connection open. A ``Content-Length``
that is not a number, or a chunked body whose framing is broken, is answered 400 with a JSON
error naming what is wrong and the connection is closed (where the next request would start is
unknown), instead of the connection being dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from cadenza.error import BadRequestError, PayloadTooLargeError, ServiceError

__all__ = [
    "IDLE_SECONDS", "KeepAliveHandler", "WsgiApp", "close_connections", "request_headers", "serve",
]

log = logging.getLogger("cadenza.local.wsgi")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: A kept-alive connection with no request for this long is closed (the client reconnects).
IDLE_SECONDS = 120
#: Headers the handler sets itself, from the body it sends.
_FRAMING = {"content-length", "transfer-encoding", "connection"}
#: Longest chunk-size line accepted (hex digits and extensions).
_CHUNK_LINE = 1024


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler with persistent HTTP/1.1 connections: the body is read in
    full first and the response is framed by Content-Length.

    ``max_body_bytes`` (None: no limit) refuses a larger body with 413 before reading it.
    """

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    max_body_bytes: int | None = None

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

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the applications log what they want (cadenza dev --verbose)

    # -- the body

    def _read_body(self) -> bytes:
        """The request's body; raises BadRequestError (400) or PayloadTooLargeError (413)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunks()
        text = (self.headers.get("Content-Length") or "").strip()
        if not text:
            return b""
        if not text.isdigit():
            raise BadRequestError(f"Content-Length {text[:40]!r} is not a number of bytes",
                                  field="Content-Length")
        length = int(text)
        self._check_size(length)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise BadRequestError(f"the body ended after {len(body)} of the {length} bytes "
                                  "Content-Length announced", field="Content-Length")
        return body

    def _read_chunks(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            if len(line) > _CHUNK_LINE or not line.endswith(b"\n") or not size_text or any(
                    c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise BadRequestError(f"malformed chunk size line {line[:40]!r}",
                                      field="Transfer-Encoding")
            size = int(size_text, 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not trailer.endswith(b"\n"):
                        raise BadRequestError("the chunked body ends without its last line",
                                              field="Transfer-Encoding")
            total += size
            self._check_size(total)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequestError("a chunk is shorter than its size line says",
                                      field="Transfer-Encoding")
            chunks.append(chunk)

    def _check_size(self, size: int) -> None:
        limit = self.max_body_bytes
        if limit is not None and size > limit:
            raise PayloadTooLargeError(
                f"the request body is {size} bytes; the limit is {limit} bytes",
                field="body", limit=limit, size=size)

    # -- one exchange

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = self._read_body()
        except ServiceError as error:
            # Where the next request would start is unknown: answer, then close.
            self.close_connection = True
            payload = json.dumps(error.to_wire()).encode()
            self._send(f"{error.status} {'Bad Request' if error.status == 400 else 'Error'}",
                       [("Content-Type", "application/json")], payload)
            return
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        self.environ = environ
        status, headers, payload = self._call_app(environ)
        self._send(status, headers, payload)

    def _send(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
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
            if self.close_connection:
                self.send_header("Connection", "close")
            if not no_body:
                # One write for headers and body (end_headers would send the headers alone).
                self._headers_buffer.append(b"\r\n" + payload)  # type: ignore[attr-defined]
                self.flush_headers()
            else:
                self.end_headers()
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as error:
            self.close_connection = True
            self.connection_dropped(error, getattr(self, "environ", None))

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
            log.exception("the application failed on %s %s", self.command, self.path)
            return ("500 Internal Server Error", [("Content-Type", "application/json")],
                    b'{"message":"Internal Server Error"}')
        if not started:
            return "500 Internal Server Error", [], b""
        return started[0], started[1], b"".join(written)


def request_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A WSGI request's headers as (lower-case name, value) pairs, as they were sent."""
    headers = [(key[5:].replace("_", "-").lower(), str(value))
               for key, value in environ.items() if key.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key])))
    return headers


def serve(host: str, port: int, app: WsgiApp,
          handler: type[KeepAliveHandler] = KeepAliveHandler) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` bound to ``host``:``port`` (0: a free port), not
    yet serving. Raises OSError when the port cannot be bound (werkzeug would print and exit).
    """
    if port:
        # werkzeug reports a taken port by printing and calling sys.exit(1): find out first.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    try:
        server = make_server(host, port, app, threaded=True, request_handler=handler)
    except SystemExit as exc:
        raise OSError(98, f"cannot listen on {host}:{port}") from exc
    server.cadenza_connections = set()  # type: ignore[attr-defined]
    return server


def close_connections(server: BaseWSGIServer) -> None:
    """End the kept-alive connections of a stopped server (their threads then exit)."""
    for connection in list(getattr(server, "cadenza_connections", ())):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
