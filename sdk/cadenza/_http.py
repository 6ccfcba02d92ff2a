"""The HTTP API's client side: JSON requests, SigV4-signed, typed errors back from the wire."""

from __future__ import annotations

import ipaddress
import os
import re
import threading
import uuid
from collections.abc import Generator
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from .error import (
    ApiUnreachableError,
    AuthError,
    InternalServiceError,
    ServiceBusyError,
    UnsignedRequestError,
    error_from_wire,
)


def path_part(value: str) -> str:
    return quote(value, safe="")


class Transport(Protocol):
    """How a client reaches the API's routes: over HTTP, or in-process (cadenza.testing)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]: ...

    async def close(self) -> None: ...


#: Pools of kept-alive connections to the API, and connections per pool. httpcore's pool
#: examines every connection it holds (and, for each idle one, counts them all again) each
#: time a request starts or ends: one pool of a hundred connections spent a third of a busy
#: process's time there. Several small pools keep that work small; a call goes to the pool with
#: the fewest calls in flight.
POOLS = 8
CONNECTIONS_PER_POOL = 32
#: An idle kept-alive connection is closed after this long (httpx: 5 s).
KEEPALIVE_SECONDS = 60.0


#: The service API Gateway's SigV4 signatures are scoped to.
SIGNING_SERVICE = "execute-api"
#: A random value signed into every request, so that two identical calls made in the same
#: second (X-Amz-Date has whole seconds) carry different signatures: the local verifier
#: refuses a signature it has seen, API Gateway ignores the header.
NONCE_HEADER = "x-cadenza-nonce"
#: ``on``/``off`` forces signing for every client of the process (the CLI, workers);
#: unset or ``auto``: the default below.
SIGNING_ENV = "CADENZA_API_SIGNING"
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def signing_wanted(target: str, sign: bool | None = None) -> bool | None:
    """True: sign every request; False: never; None: only once the API asks for it.

    By default a request to anything but a loopback address is signed; one to a loopback
    address (a local stack, credential-free unless ``cadenza dev --auth iam``) is sent unsigned
    until the local stack answers that it wants signatures (UnsignedRequestError), and then
    signed again at once and from then on.
    """
    if sign is not None:
        return sign
    setting = os.environ.get(SIGNING_ENV, "auto").strip().lower()
    if setting in {"1", "on", "true", "yes"}:
        return True
    if setting in {"0", "off", "false", "no"}:
        return False
    host = urlsplit(target).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else True
    except ValueError:
        return True


def target_region(target: str) -> str | None:
    """The region an API Gateway URL names (``https://<id>.execute-api.<region>...``)."""
    found = _EXECUTE_API_HOST.search(urlsplit(target).hostname or "")
    return found.group(1) if found else None


class SigV4Signer(httpx.Auth):
    """Signs each request with botocore's SigV4 for ``execute-api``, over the exact bytes sent.

    Credentials come from the usual AWS chain (environment, profile, SSO, container or instance
    role) through a botocore session, resolved on first use and refreshed by botocore. The
    region: the one in an API Gateway URL, else the one a local stack's refusal names, else
    the chain's configured region.
    """

    requires_request_body = True
    requires_response_body = True

    def __init__(self, target: str, *, always: bool, region: str | None = None,
                 credentials: Any = None) -> None:
        self._on = always
        self._region = region or target_region(target)
        self._lock = threading.Lock()
        self._session: Any = None
        #: botocore Credentials; None: the chain's, resolved on first use.
        self._credentials: Any = credentials

    @property
    def signing(self) -> bool:
        return self._on

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._on:
            self.sign(request)
        response = yield request
        if self._on or response.status_code != 403:
            return
        refusal = _wire_body(response)
        if refusal.get("code") != UnsignedRequestError.code:
            return
        # A local stack run with --auth iam: refused before any work, so sending it again
        # signed is safe.
        details = refusal.get("details") or {}
        if self._region is None and isinstance(details, dict) and details.get("region"):
            self._region = str(details["region"])
        self._on = True
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._frozen_credentials()
        raw_path, _, raw_query = request.url.raw_path.decode("ascii").partition("?")
        signed = AWSRequest(
            method=request.method,
            url=f"{request.url.scheme}://{request.url.netloc.decode('ascii')}{raw_path}",
            data=request.content,
            params=cast(Any, parse_qsl(raw_query, keep_blank_values=True)),
        )
        nonce = uuid.uuid4().hex
        signed.headers["host"] = request.headers["host"]
        signed.headers[NONCE_HEADER] = nonce
        SigV4Auth(credentials, SIGNING_SERVICE, self._region_name()).add_auth(signed)
        request.headers[NONCE_HEADER] = nonce
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = signed.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def _botocore_session(self) -> Any:
        with self._lock:
            if self._session is None:
                import botocore.session

                self._session = botocore.session.get_session()
            return self._session

    def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            credentials = self._botocore_session().get_credentials()
            if credentials is None:
                raise UnsignedRequestError(
                    "cannot sign the request: no AWS credentials were found (environment, "
                    "profile, SSO or role); configure some, or turn signing off (sign=False, "
                    "CADENZA_API_SIGNING=off) for an API "
                    "that does not check signatures", service=SIGNING_SERVICE,
                )
            self._credentials = credentials
        return self._credentials.get_frozen_credentials()

    def _region_name(self) -> str:
        if self._region is None:
            configured = self._botocore_session().get_config_variable("region")
            self._region = configured or "us-east-1"
        return self._region


def _wire_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json() if response.content else {}
    except ValueError:
        return {"message": response.text}
    return body if isinstance(body, dict) else {"message": str(body)}


class ApiTransport:
    """Kept-alive async HTTP connections to the API, shared by a client and its workers.

    ``sign``: True signs every request with SigV4 (an API Gateway with IAM authorization);
    False never signs; None (default): see :func:`signing_wanted`.
    """

    def __init__(self, target: str, *, timeout: float = 40.0, sign: bool | None = None,
                 region: str | None = None,
                 http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``http_transport``: httpx's own transport under the pools (tests hand in a mock)."""
        # Cadence clients name a "host:port" target; the HTTP API takes the same.
        if "://" not in target:
            target = f"http://{target}"
        self.target = target.rstrip("/")
        wanted = signing_wanted(self.target, sign)
        self.signer = (None if wanted is False
                       else SigV4Signer(self.target, always=bool(wanted), region=region))
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_POOL,
                              max_keepalive_connections=CONNECTIONS_PER_POOL // 2,
                              keepalive_expiry=KEEPALIVE_SECONDS)
        tls = httpx.create_ssl_context()  # made once (about 15 ms), shared by the pools
        self._pools = [httpx.AsyncClient(base_url=self.target, timeout=timeout, limits=limits,
                                         verify=tls, auth=self.signer,
                                         transport=http_transport)
                       for _ in range(POOLS)]
        self._in_flight = [0] * POOLS

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        in_flight = self._in_flight
        pool = in_flight.index(min(in_flight))
        in_flight[pool] += 1
        try:
            response = await self._pools[pool].request(
                method, path, json=json, params=clean,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # Nothing was sent (refused, no route, the handshake timed out): nobody serves
            # the API there, and the caller can say so.
            raise ApiUnreachableError(
                f"cannot reach the Cadenza API at {self.target}: {error}", target=self.target,
                reason=str(error) or type(error).__name__,
            ) from error
        except httpx.TransportError as error:
            # Connected, then no answer (a stack stopping mid-request, a read timeout): the
            # request may have been served; busy, so it is sent again under its request id.
            raise ServiceBusyError(
                f"no answer from the Cadenza API at {self.target}: {error}",
                target=self.target,
            ) from error
        finally:
            in_flight[pool] -= 1
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            if isinstance(body, dict) and "code" in body and body["code"] != "NotFound":
                raise error_from_wire(body)
            if response.status_code == 403:  # API Gateway's IAM refusal: {"message": ...}
                raise AuthError(
                    f"{method} {path} was refused (403): "
                    f"{body.get('message') if isinstance(body, dict) else body}; is the "
                    "request signed with credentials allowed to call this API?",
                    status=403,
                )
            raise InternalServiceError(
                f"{method} {path} answered {response.status_code}: "
                f"{body.get('message') if isinstance(body, dict) else body}",
                status=response.status_code,
            )
        return body if isinstance(body, dict) else {"value": body}

    async def close(self) -> None:
        for pool in self._pools:
            await pool.aclose()
