"""cadenza.ui.wsgi_app: the assets it serves and its thin pass-through of /api/ to a transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client as WsgiClient

from cadenza.error import EntityNotExistsError, ServiceBusyError
from cadenza.ui import CONFIG_PATH, UI_HEADER, UiApp, asset, wsgi_app

FROM_THE_UI = {UI_HEADER: "1"}


class RecordingTransport:
    """The transport seam: records each call and answers what the test says."""

    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []
        self.closed = False

    async def call(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        self.calls.append({"method": method, "path": path, "json": json, "params": params})
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport({"executions": [], "next_page_token": None})


@pytest.fixture
def app(transport: RecordingTransport) -> Any:
    ui = wsgi_app("http://api.invalid", transport=transport)
    yield ui
    ui.close()


def test_the_pages_and_their_assets_are_served(app: UiApp) -> None:
    client = WsgiClient(app)
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'<script src="/static/app.js">' in page.data
    script = client.get("/static/app.js")
    assert script.status_code == 200 and script.mimetype in {"text/javascript",
                                                             "application/javascript"}
    assert script.data == asset("app.js")
    assert client.get("/static/app.css").mimetype == "text/css"
    assert client.get("/static/favicon.svg").mimetype == "image/svg+xml"
    assert client.get("/static/../__init__.py").status_code == 404  # only the assets
    assert client.get("/runs/x").status_code == 404  # pages route on the fragment
    assert client.post("/").status_code == 405


def test_the_pages_learn_the_apis_address_from_the_config(
        app: UiApp, transport: RecordingTransport) -> None:
    """The API page's curl examples name the API itself, not this server (behind
    ``cadenza ui --address`` they differ); reading it calls nothing through the transport."""
    answer = WsgiClient(app).get(CONFIG_PATH)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert json.loads(answer.data) == {"api_base_url": "http://api.invalid"}
    assert transport.calls == []
    assert WsgiClient(app).post(CONFIG_PATH).status_code == 405


def test_the_header_links_the_api_page(app: UiApp) -> None:
    page = WsgiClient(app).get("/").data
    assert b'href="#/api"' in page


def test_api_calls_pass_through_with_path_query_and_body(
        app: UiApp, transport: RecordingTransport) -> None:
    client = WsgiClient(app)
    listed = client.get("/api/v1/domains/default/workflows?query=WorkflowType+%3D+'A'&status=open",
                        headers=FROM_THE_UI)
    assert listed.status_code == 200
    assert listed.json == {"executions": [], "next_page_token": None}
    assert transport.calls[-1] == {
        "method": "GET", "path": "/api/v1/domains/default/workflows",
        "json": None, "params": {"query": "WorkflowType = 'A'", "status": "open"}}

    body = {"run_id": "r", "signal_name": "approve", "input": '"ann"', "request_id": "q1"}
    # A workflow id holding a slash stays one segment: the path goes out as it came in.
    client.post("/api/v1/domains/default/workflows/a%2Fb/signal", json=body, headers=FROM_THE_UI,
                environ_overrides={"RAW_URI": "/api/v1/domains/default/workflows/a%2Fb/signal"})
    assert transport.calls[-1]["path"] == "/api/v1/domains/default/workflows/a%2Fb/signal"
    assert transport.calls[-1]["json"] == body


def test_only_the_uis_own_pages_may_call_through_it(app: UiApp,
                                                    transport: RecordingTransport) -> None:
    client = WsgiClient(app)
    # Another site's form post (or image) cannot add the header: refused, nothing forwarded.
    forged = client.post("/api/v1/domains/default/workflows/w/terminate", json={"reason": "x"})
    assert forged.status_code == 403 and UI_HEADER in forged.json["message"]
    # A DNS-rebound name reaching this port is refused even with the header.
    rebound = client.get("/api/v1/cluster", headers={**FROM_THE_UI, "Host": "evil.example:7934"})
    assert rebound.status_code == 403 and "evil.example" in rebound.json["message"]
    assert transport.calls == []
    for host in ("127.0.0.1:7934", "localhost", "[::1]:7934"):
        assert client.get("/api/v1/cluster", headers={**FROM_THE_UI, "Host": host}
                          ).status_code == 200
    # Served on a network interface on purpose: any name.
    anywhere = WsgiClient(wsgi_app("http://api.invalid", transport=transport, allowed_hosts=None))
    assert anywhere.get("/api/v1/cluster", headers={**FROM_THE_UI, "Host": "box.lan:7934"}
                        ).status_code == 200


def test_service_errors_come_back_with_their_status_and_wire_body(
        transport: RecordingTransport) -> None:
    transport.answer = EntityNotExistsError("workflow execution not found", workflow_id="w")
    app = wsgi_app("http://api.invalid", transport=transport)
    client = WsgiClient(app)
    answer = client.get("/api/v1/domains/default/workflows/w", headers=FROM_THE_UI)
    assert answer.status_code == 404
    assert answer.json["code"] == "EntityNotExistsError"
    assert answer.json["message"] == "workflow execution not found"
    transport.answer = ServiceBusyError("cannot reach the Cadenza API")
    assert client.get("/api/v1/cluster", headers=FROM_THE_UI).status_code == 503
    bad = client.post("/api/v1/domains/default/workflows/w/signal", data=b"{not json",
                      content_type="application/json", headers=FROM_THE_UI)
    assert bad.status_code == 400 and bad.json["code"] == "BadRequestError"
    assert len(transport.calls) == 2  # the malformed body never left
    app.close()
    assert not transport.closed  # a transport given to the app belongs to the caller


def test_the_default_transport_is_the_clients_and_is_closed_with_the_app() -> None:
    app = wsgi_app("http://127.0.0.1:9")  # nothing listens on the discard port
    answer = WsgiClient(app).get("/api/v1/cluster", headers=FROM_THE_UI)
    assert answer.status_code == 503
    assert "cannot reach the Cadenza API at http://127.0.0.1:9" in json.loads(answer.data)[
        "message"]
    app.close()
