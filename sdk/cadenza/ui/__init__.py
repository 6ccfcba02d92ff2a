"""The web UI: static pages that read the HTTP API, and a WSGI app that serves them.

The pages (``assets/``: plain HTML, CSS and JavaScript, no build step and no library) call
the API under the same origin, ``/api/v1/...``. ``cadenza dev`` mounts :func:`wsgi_app` at the
root of its own port, beside the API; ``cadenza ui --address URL`` serves it alone, and then
this app also forwards ``/api/`` to that address through the client's transport, so the
browser never needs credentials or CORS: requests leave this process signed with the user's
own credentials when the client signs them (a deployed, IAM-protected API).

The forwarding is a thin pass-through: method, path (percent-encoding kept, so a ``/`` inside a
workflow id stays inside its segment), query string and JSON body go out unchanged; the answer
comes back as JSON with the service error's own status and wire body.

Because forwarded calls carry the user's credentials, only the UI's own pages may make them:
every forwarded call must carry the ``X-Cadenza-UI`` header, which another site's page cannot
add without a CORS preflight this app never grants (no cross-site form post or image can
terminate a run), and the ``Host`` must be one this app serves under (a DNS-rebound name is
refused).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import threading
from collections.abc import Callable, Collection, Coroutine, Iterable
from concurrent.futures import Future
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from .._http import Transport
from ..error import BadRequestError, ServiceError

__all__ = ["API_PREFIX", "CONFIG_PATH", "LOOPBACK_HOSTS", "UI_HEADER", "UiApp", "asset", "wsgi_app"]

#: The API's routes all live under this prefix (service/routes.py).
API_PREFIX = "/api/"
#: The UI's settings for its pages (JSON): the API's address.
CONFIG_PATH = "/ui-config.json"
#: The header the pages send with every API call (app.js); calls without it are refused.
UI_HEADER = "X-Cadenza-UI"
#: The names a UI served on this machine is reached by.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: The longest a forwarded call may take: the API's longest waits (a query's 20 s by default,
#: a history long poll) fit with room to spare.
PROXY_TIMEOUT_SECONDS = 70.0

_ASSETS = "assets"
_T = TypeVar("_T")

WsgiEnviron = dict[str, Any]
StartResponse = Callable[..., Any]


def asset(name: str) -> bytes:
    """One file of the UI's assets (package data)."""
    return resources.files(__name__).joinpath(_ASSETS, name).read_bytes()


def _asset_names() -> frozenset[str]:
    folder = resources.files(__name__).joinpath(_ASSETS)
    return frozenset(entry.name for entry in folder.iterdir() if entry.is_file())


class _LoopThread:
    """An event loop on a daemon thread: the async transport serves the WSGI threads."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cadenza-ui-proxy",
                                        daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class UiApp:
    """The WSGI callable :func:`wsgi_app` returns; :meth:`close` releases the transport."""

    def __init__(
        self,
        api_base_url: str,
        *,
        transport: Transport | None = None,
        allowed_hosts: Collection[str] | None = LOOPBACK_HOSTS,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self._allowed_hosts = (
            None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts))
        self._given_transport = transport
        self._transport: Transport | None = transport
        self._loop: _LoopThread | None = None
        self._lock = threading.Lock()
        self._assets = _asset_names()

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(API_PREFIX):
            response = self._forward(request, _raw_path(environ))
        else:
            response = self._static(request)
        return response(environ, start_response)

    def _static(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed", status=405, mimetype="text/plain")
        if request.path == CONFIG_PATH:
            return self._config()
        name = "index.html" if request.path in ("/", "/index.html") else request.path.lstrip("/")
        if name.startswith("static/"):
            name = name.removeprefix("static/")
        if name not in self._assets:
            # The pages route with the URL's fragment (#/runs/...): any other path is a typo.
            return Response(f"not found: {request.path}", status=404, mimetype="text/plain")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(asset(name), mimetype=kind)
        # The assets ship with the package: a new version is a new process, so a short cache
        # is safe and keeps a reload during development honest.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _config(self) -> Response:
        """What the pages cannot see for themselves: the API's own address (the curl examples
        of the API page name it; behind ``cadenza ui --address`` it is not the page's origin)."""
        response = _json(200, {"api_base_url": self.api_base_url})
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _forward(self, request: Request, path: str) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return _json(403, {"code": "ForbiddenError", "message": refusal})
        body: dict[str, Any] | None = None
        if request.method in ("POST", "PUT", "PATCH") and request.content_length:
            try:
                parsed = json.loads(request.get_data(cache=False) or b"null")
            except ValueError:
                return _json(400, BadRequestError("request body is not JSON",
                                                  field="body").to_wire())
            if not isinstance(parsed, dict):
                return _json(400, BadRequestError("request body must be a JSON object",
                                                  field="body").to_wire())
            body = parsed
        params = {key: value for key, value in request.args.items()}
        try:
            answer = self._run(self._transport_or_default().call(
                request.method, path, json=body, params=params, timeout=PROXY_TIMEOUT_SECONDS))
        except ServiceError as error:
            return _json(error.status, error.to_wire())
        return _json(200, answer)

    def _refusal(self, request: Request) -> str | None:
        """Why a forwarded call is refused: not from the UI's pages, or under a foreign name."""
        if request.headers.get(UI_HEADER) != "1":
            return (f"API calls through the UI need the {UI_HEADER} header its pages send; "
                    "refusing what may be another site's request")
        if self._allowed_hosts is not None:
            host = request.host.lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self._allowed_hosts:
                return (f"the UI is not served under the name {request.host!r} "
                        f"(it answers to {', '.join(sorted(self._allowed_hosts))})")
        return None

    # -- the transport ------------------------------------------------------------------------

    def _transport_or_default(self) -> Transport:
        with self._lock:
            if self._transport is None:
                # The client's own transport: whatever it does (SigV4 signing with the
                # user's credentials, retries of busy answers) the UI's requests get too.
                from ..client import Client

                self._transport = Client(target=self.api_base_url).transport
            return self._transport

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
            loop = self._loop
        return loop.run(coroutine)

    def close(self) -> None:
        """Close the transport this app made (not one it was given) and its loop."""
        with self._lock:
            loop, transport = self._loop, self._transport
            self._loop = None
            if transport is not self._given_transport:
                self._transport = None
        if loop is None:
            return
        if transport is not None and transport is not self._given_transport:
            loop.run(transport.close())
        loop.stop()


def wsgi_app(
    api_base_url: str,
    *,
    transport: Transport | None = None,
    allowed_hosts: Collection[str] | None = LOOPBACK_HOSTS,
) -> UiApp:
    """The UI as a WSGI application: the pages at ``/``, ``/api/`` forwarded to the API.

    ``api_base_url`` is the API the forwarded calls go to (``transport``, when given, carries
    them instead of the client's default one). ``allowed_hosts`` are the host names forwarded
    calls may be addressed to (default: this machine's loopback names; None: any, for a UI
    served on a network interface on purpose).
    """
    return UiApp(api_base_url, transport=transport, allowed_hosts=allowed_hosts)


def _raw_path(environ: WsgiEnviron) -> str:
    """The request's path as sent: werkzeug's server keeps it in RAW_URI (PATH_INFO is
    decoded, which would split a workflow id holding ``%2F`` in two segments)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path = str(raw).split("?", 1)[0]
        if "://" in path:  # an absolute-form request line
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path
    return quote(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")),
                 safe="/%:@!$&'()*+,;=-._~")


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
