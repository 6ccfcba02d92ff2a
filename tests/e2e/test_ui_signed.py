"""The UI's forwarding signs with the user's credentials: in front of an IAM-protected stack
(``cadenza dev --auth iam``, as API Gateway's IAM authorization does) its calls are accepted
while the same call unsigned is refused."""

from __future__ import annotations

import httpx
from werkzeug.test import Client as WsgiClient

from cadenza.local import LocalStack
from cadenza.ui import UI_HEADER, wsgi_app


def test_forwarded_calls_are_signed_for_an_iam_protected_stack() -> None:
    with LocalStack(api_port=0, auth="iam", ui=False) as stack:
        listing = f"{stack.api_url}/api/v1/domains/default/workflows"
        unsigned = httpx.get(listing, timeout=30)
        assert unsigned.status_code == 403
        app = wsgi_app(stack.api_url)
        try:
            answer = WsgiClient(app).get("/api/v1/domains/default/workflows",
                                         headers={UI_HEADER: "1"})
            assert answer.status_code == 200, answer.data
            assert answer.json is not None and answer.json["executions"] == []
            missing = WsgiClient(app).get("/api/v1/domains/default/workflows/nope",
                                          headers={UI_HEADER: "1"})
            assert missing.status_code == 404  # signed and accepted: the route answered
        finally:
            app.close()
