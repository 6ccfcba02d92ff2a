"""Client(sign=...) reaches the HTTP transport: the one switch a user needs for SigV4."""

from __future__ import annotations

from typing import Any

import pytest

from cadenza import Client
from cadenza._http import ApiTransport


def _api_transport(client: Client) -> ApiTransport:
    inner: Any = client.transport
    while not isinstance(inner, ApiTransport):
        inner = inner.inner  # RetryingTransport wraps the HTTP one
    return inner


@pytest.mark.parametrize(
    ("target", "sign", "signs_always", "may_sign"),
    [
        ("http://127.0.0.1:7933", None, False, True),   # loopback: signs once the stack asks
        ("http://127.0.0.1:7933", True, True, True),
        ("http://127.0.0.1:7933", False, False, False),
        ("https://abc.execute-api.eu-west-1.amazonaws.com", None, True, True),
        ("https://abc.execute-api.eu-west-1.amazonaws.com", False, False, False),
    ],
)
async def test_sign_option_sets_the_transports_signing(
    target: str, sign: bool | None, signs_always: bool, may_sign: bool
) -> None:
    client = Client(target=target, sign=sign)
    try:
        transport = _api_transport(client)
        assert (transport.signer is not None) is may_sign
        if transport.signer is not None:
            assert transport.signer.signing is signs_always
    finally:
        await client.close()


def test_a_misspelled_option_names_sign_among_the_options() -> None:
    with pytest.raises(TypeError, match="sign"):
        Client(signn=True)  # type: ignore[call-arg]
