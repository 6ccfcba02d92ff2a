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
``Connection: close`` with every response, so every AWS call opened a new TCP connection; the
handler of :mod:`cadenza.local.wsgi` keeps connections open, and botocore's connection pools
reuse them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer

from cadenza.local.wsgi import KeepAliveHandler, close_connections, serve

__all__ = ["READY", "close_connections", "main", "make_moto_server"]

log = logging.getLogger("cadenza.local.moto")

#: The first word of the line the server process prints once it is listening (or failed to).
READY = "cadenza-moto"


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


class _MotoHandler(KeepAliveHandler, MotoRequestHandler):
    """moto's request handler (it keeps header spellings), with persistent HTTP/1.1
    connections (:class:`cadenza.local.wsgi.KeepAliveHandler`)."""


def make_moto_server(host: str, port: int) -> BaseWSGIServer:
    """A threaded moto server bound to ``host``:``port`` (0: a free port), not yet serving.

    Raises OSError when the port cannot be bound (werkzeug would print and exit)."""
    return serve(host, port, _RoutingCacheDispatcher(create_backend_app), _MotoHandler)


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
