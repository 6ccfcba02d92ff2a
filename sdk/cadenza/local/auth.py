"""SigV4 verification for the local stack (`cadenza dev --auth iam`), as API Gateway's IAM
authorizer does it for the deployed API.

The deployed API never runs this: API Gateway checks every signature before a Lambda function
is invoked. Locally, the runtime calls :func:`verify_sigv4` on each request before it reaches
the api function, so an unsigned, badly signed, expired or replayed request is refused for
real. The signature is recomputed with botocore's :class:`~botocore.auth.SigV4Auth` (the signer
the client uses) from the request's exact bytes and the local stack's own credentials.

SigV4 alone accepts the same signed request any number of times for 5 minutes; the local
verifier also refuses a signature it has already accepted (:class:`SeenSignatures`). The
client signs a random ``x-cadenza-nonce`` header into every request, so two identical calls in
the same second still carry two signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, quote

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from ..core.limits import MAX_BODY_BYTES
from ..error import (
    BadRequestError,
    CredentialScopeError,
    InvalidAccessKeyError,
    PayloadTooLargeError,
    ReplayedRequestError,
    RequestExpiredError,
    ServiceError,
    SignatureMismatchError,
    UnsignedRequestError,
)
from .wsgi import request_headers

__all__ = ["MAX_CLOCK_SKEW", "SERVICE", "SeenSignatures", "SigV4Middleware", "verify_sigv4"]

#: The service name API Gateway's signatures are scoped to.
SERVICE = "execute-api"
#: How far X-Amz-Date may be from the verifier's clock, either way (as AWS allows).
MAX_CLOCK_SKEW = timedelta(minutes=5)

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


class SeenSignatures:
    """Signatures accepted recently, each kept until its request would expire anyway.

    Thread-safe: the local API serves requests on several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        # (forget after, signature), in insertion order. An entry behind one not yet due may
        # be kept a little longer than needed: harmless, it would be refused as expired.
        self._order: deque[tuple[datetime, str]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, signature: str, *, valid_until: datetime, now: datetime) -> bool:
        """Record ``signature``; False when it was already recorded (a replay)."""
        with self._lock:
            while self._order and self._order[0][0] < now:
                self._seen.discard(self._order.popleft()[1])
            if signature in self._seen:
                return False
            self._seen.add(signature)
            self._order.append((valid_until, signature))
            return True


_DEFAULT_SEEN = SeenSignatures()


def verify_sigv4(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    credentials: Credentials | ReadOnlyCredentials,
    region: str,
    now: datetime,
    seen: SeenSignatures | None = None,
) -> None:
    """Return when the request is signed with ``credentials`` for ``region``; raise otherwise.

    ``path`` and ``query`` are as sent (still percent-encoded, the query without ``?``);
    ``body`` is the exact bytes received. Raises an :class:`~cadenza.error.AuthError`
    subclass (403): :class:`UnsignedRequestError`, :class:`SignatureMismatchError` (also for
    a body that is not the one signed), :class:`InvalidAccessKeyError`,
    :class:`CredentialScopeError` (another region, service or day), :class:`RequestExpiredError`
    (X-Amz-Date more than 5 minutes off ``now``) or :class:`ReplayedRequestError` (a signature
    ``seen`` before; the process's own memory when None). Only a request that passes every
    check is remembered, so refused garbage cannot crowd the memory.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    received: dict[str, list[str]] = {}
    for name, value in pairs:
        received.setdefault(name.lower(), []).append(value)
    authorization = _one(received, "authorization")
    amz_date = _one(received, "x-amz-date")
    if not authorization or not amz_date:
        raise UnsignedRequestError(
            "the request is not signed: the API requires SigV4 (an Authorization header and "
            "X-Amz-Date) with the credentials of a principal allowed to call it",
            region=region, service=SERVICE,
        )
    found = _AUTHORIZATION.match(authorization)
    if found is None:
        raise SignatureMismatchError("the Authorization header is not a SigV4 signature")
    scope = found["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureMismatchError("the signature's credential scope is malformed")
    access_key, day, signed_region, service, _ = scope
    if service != SERVICE:
        raise CredentialScopeError(
            f"the request is signed for the service {service!r}, not {SERVICE!r}",
            service=service, expected=SERVICE,
        )
    if signed_region != region:
        raise CredentialScopeError(
            f"the request is signed for the region {signed_region!r}; this API is in "
            f"{region!r}", region=signed_region, expected=region,
        )
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError as error:
        raise SignatureMismatchError(
            f"X-Amz-Date {amz_date!r} is not a SigV4 time (YYYYMMDDTHHMMSSZ)"
        ) from error
    if day != amz_date[:8]:
        raise CredentialScopeError(
            f"the signature is scoped to {day}, but X-Amz-Date is {amz_date}", day=day,
        )
    if not hmac.compare_digest(access_key, str(credentials.access_key)):
        raise InvalidAccessKeyError(
            "the request is signed with an access key this API does not know",
            access_key=access_key,
        )
    skew = abs(now - signed_at)
    if skew > MAX_CLOCK_SKEW:
        raise RequestExpiredError(
            f"the request was signed at {amz_date}, {int(skew.total_seconds())} s from the "
            f"API's clock; a signature is valid for {int(MAX_CLOCK_SKEW.total_seconds())} s",
            signed_at=amz_date, limit=int(MAX_CLOCK_SKEW.total_seconds()),
        )
    signed_names = found["signed"].split(";")
    if "host" not in signed_names or "x-amz-date" not in signed_names:
        raise SignatureMismatchError("the signature must cover the host and x-amz-date headers")
    missing = [name for name in signed_names if name not in received]
    if missing:
        raise SignatureMismatchError(
            f"signed headers missing from the request: {', '.join(missing)}"
        )
    content_hash = _one(received, "x-amz-content-sha256")
    if content_hash is not None and not hmac.compare_digest(
        content_hash, hashlib.sha256(body).hexdigest()
    ):  # UNSIGNED-PAYLOAD too: the body must be the one signed
        raise SignatureMismatchError("the body is not the one the signature covers")
    expected = _signature(
        method, path, query, [(name, value) for name, value in pairs
                              if name.lower() in signed_names],
        body, credentials=credentials, region=region, amz_date=amz_date,
        signed_names=signed_names,
    )
    if not hmac.compare_digest(expected, found["signature"]):
        raise SignatureMismatchError(
            "the request's signature does not match the one its method, path, query, signed "
            "headers and body give with this API's credentials"
        )
    if not (_DEFAULT_SEEN if seen is None else seen).first_use(
        found["signature"], valid_until=signed_at + MAX_CLOCK_SKEW, now=now,
    ):
        raise ReplayedRequestError(
            "this exact signed request was already received: sign each request anew"
        )


def _one(received: Mapping[str, list[str]], name: str) -> str | None:
    values = received.get(name)
    return ",".join(values) if values else None


def _signature(
    method: str,
    path: str,
    query: str,
    signed_headers: list[tuple[str, str]],
    body: bytes,
    *,
    credentials: Credentials | ReadOnlyCredentials,
    region: str,
    amz_date: str,
    signed_names: list[str],
) -> str:
    """The signature botocore gives the request: what a correct signer sent."""
    host = next(value for name, value in signed_headers if name.lower() == "host")
    request = AWSRequest(
        method=method.upper(),
        url=f"https://{host}{path or '/'}",
        data=body,
        # Decoded, so botocore encodes each name and value the canonical way (as AWS does).
        params=cast(Any, parse_qsl(query, keep_blank_values=True)),
    )
    for name, value in signed_headers:
        request.headers.add_header(name, value)
    signer = SigV4Auth(credentials, SERVICE, region)
    request.context["timestamp"] = amz_date
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(signed_names)):
        return ""  # headers botocore never signs (user-agent, expect): not a signature we give
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


class SigV4Middleware:
    """WSGI middleware for the local API (``cadenza dev --auth iam``): each request's
    signature is verified (:func:`verify_sigv4`) before ``app`` sees it, and a refused one is
    answered 403 with the typed error, as the deployed API's IAM authorization refuses it
    before the api function runs.

    The body is read here (its exact bytes are signed) and handed on unchanged; a body over
    MAX_BODY_BYTES is refused (413) by its Content-Length before it is read, and a malformed
    Content-Length is a 400.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        credentials: Credentials | ReadOnlyCredentials,
        region: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        seen: SeenSignatures | None = None,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.region = region
        self.clock = clock
        self.seen = SeenSignatures() if seen is None else seen

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            body = _read_body(environ)
            raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or _rebuilt_uri(environ)
            path, _, query = raw.partition("?")
            if "://" in path:  # an absolute-form request target
                path = "/" + path.split("://", 1)[1].partition("/")[2]
            verify_sigv4(
                environ.get("REQUEST_METHOD", "GET"), path, query, request_headers(environ), body,
                credentials=self.credentials, region=self.region, now=self.clock(),
                seen=self.seen,
            )
        except ServiceError as error:
            payload = json.dumps(error.to_wire()).encode()
            start_response(f"{error.status} {_REASONS.get(error.status, 'Error')}", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


_REASONS = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large"}


def _read_body(environ: Mapping[str, Any]) -> bytes:
    text = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if not text:
        if stream is not None and environ.get("wsgi.input_terminated"):  # chunked
            body = bytes(stream.read(MAX_BODY_BYTES + 1))
            if len(body) > MAX_BODY_BYTES:
                raise _too_large(len(body))
            return body
        return b""
    if not text.isdigit():
        raise BadRequestError(f"Content-Length {text[:40]!r} is not a number of bytes",
                              field="Content-Length")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise _too_large(length)
    return bytes(stream.read(length)) if stream is not None and length else b""


def _too_large(size: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes",
        field="body", limit=MAX_BODY_BYTES, size=size,
    )


def _rebuilt_uri(environ: Mapping[str, Any]) -> str:
    path = quote(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")),
                 safe="/")
    query = str(environ.get("QUERY_STRING", ""))
    return f"{path}?{query}" if query else path
