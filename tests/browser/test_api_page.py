"""The API page (#/api): the HTTP API's own OpenAPI document drawn in a real browser, behind
`cadenza ui --address` (forwarded) and at the local stack's root (same origin)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI selenium is installed (dev extra): its absence fails
    pytest.importorskip("selenium", reason="selenium is not installed (it is in the dev extra)")

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from cadenza.ui import wsgi_app

from .conftest import Stack, UiServer, serve_wsgi
from .test_ui import click, css, press, wait

COMPLETE = "/api/v1/tasks/activity/complete"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def openapi(stack: Stack) -> dict[str, Any]:
    """The document as the API serves it, read here without the browser."""
    with urllib.request.urlopen(f"{stack.api_url}/api/v1/openapi.json", timeout=30) as answer:
        document: dict[str, Any] = json.load(answer)
    return document


def routes_of(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def listed_routes(driver: WebDriver, expected: int) -> set[tuple[str, str]]:
    """The (method, path) of every route the page lists, once it lists ``expected`` of them."""
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "details.op")) >= expected)
    rows = driver.find_elements(By.CSS_SELECTOR, "details.op")
    return {(str(row.get_attribute("data-method")), str(row.get_attribute("data-path")))
            for row in rows}


def operation(driver: WebDriver, method: str, path: str) -> WebElement:
    return css(driver, f"details.op[data-method='{method}'][data-path='{path}']")


def expand(driver: WebDriver, method: str, path: str) -> WebElement:
    row = operation(driver, method, path)
    if row.get_attribute("open") is None:
        click(driver, row.find_element(By.CSS_SELECTOR, "summary"))
    wait(driver).until(lambda d: operation(d, method, path).get_attribute("open") is not None)
    return operation(driver, method, path)


def field_cells(row: WebElement, field: str) -> list[str]:
    line = row.find_element(By.CSS_SELECTOR, f".request-body tr.field-row[data-field='{field}']")
    return [cell.text for cell in line.find_elements(By.TAG_NAME, "td")]


def test_the_api_page_lists_every_route_of_the_document(browser: WebDriver, ui: UiServer,
                                                        stack: Stack) -> None:
    document = openapi(stack)
    expected = routes_of(document)
    browser.get(f"{ui.url}/#/")
    press(browser, "#nav-api")
    assert listed_routes(browser, len(expected)) == expected
    page = css(browser, "#app").text
    for path in document["paths"]:
        assert path in page
    # Grouped by path prefix (the document has no tags): the activity task routes together.
    group = css(browser, "section.api-group[data-group='/api/v1/tasks/activity']")
    paths_in_group = {row.get_attribute("data-path")
                      for row in group.find_elements(By.CSS_SELECTOR, "details.op")}
    assert paths_in_group == {path for path in document["paths"]
                              if path.startswith("/api/v1/tasks/activity/")}
    # Every summary the document gives is on its route's row.
    summary = document["paths"][COMPLETE]["post"]["summary"].replace("``", "")
    assert summary in operation(browser, "POST", COMPLETE).find_element(
        By.CSS_SELECTOR, ".op-text").text


def test_expanding_complete_activity_shows_its_body_fields_and_a_curl_example(
        browser: WebDriver, ui: UiServer, stack: Stack) -> None:
    document = openapi(stack)
    browser.get(f"{ui.url}/#/api")
    row = expand(browser, "POST", COMPLETE)
    name, kind, required, description = field_cells(row, "task_token")
    assert (name, kind, required) == ("task_token", "string", "required")
    schema_ref = document["paths"][COMPLETE]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"]
    model = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    # The $ref is resolved: every field of the model is a row, the optional ones said so.
    shown = {line.get_attribute("data-field") for line in
             row.find_elements(By.CSS_SELECTOR, ".request-body tr.field-row")}
    assert shown == set(model["properties"])
    assert field_cells(row, "result")[2] == "optional"
    assert str(model["properties"]["task_token"]["x-maxBytes"]) in description
    statuses = {line.get_attribute("data-status")
                for line in row.find_elements(By.CSS_SELECTOR, "tr.response-row")}
    assert statuses == set(document["paths"][COMPLETE]["post"]["responses"])
    # The curl example targets the API itself (not this UI server) with the required fields.
    curl = row.find_element(By.CSS_SELECTOR, "pre.curl").text
    assert curl.startswith(f"curl -X POST '{stack.api_url}{COMPLETE}'")
    assert '"task_token":"<task_token>"' in curl
    assert "--aws-sigv4" in row.text


def test_a_nested_ref_is_drawn_as_its_own_table(browser: WebDriver, ui: UiServer) -> None:
    """CompleteDecisionBody.decisions is an array of DecisionBody: its fields open below."""
    browser.get(f"{ui.url}/#/api/complete_decision_task")
    row = css(browser, "details.op[data-operation-id='complete_decision_task'][open]")
    decisions = row.find_element(By.CSS_SELECTOR,
                                 ".request-body tr.field-row[data-field='decisions']")
    assert "array of DecisionBody" in decisions.text
    nested = row.find_element(By.CSS_SELECTOR, ".request-body details.nested")
    click(browser, nested.find_element(By.TAG_NAME, "summary"))
    inner = wait(browser).until(lambda d: row.find_element(
        By.CSS_SELECTOR, "details.nested tr.field-row[data-field='decision_type']"))
    assert "required" in inner.text


def test_the_api_page_at_the_local_stacks_root(browser: WebDriver, stack: Stack) -> None:
    """`cadenza dev`: the UI mounted beside the API, the document read from the same origin."""
    expected = routes_of(openapi(stack))
    browser.get(f"{stack.api_url}/#/api")
    assert listed_routes(browser, len(expected)) == expected
    row = expand(browser, "POST", COMPLETE)
    assert field_cells(row, "task_token")[:3] == ["task_token", "string", "required"]
    assert row.find_element(By.CSS_SELECTOR, "pre.curl").text.startswith(
        f"curl -X POST '{stack.api_url}{COMPLETE}'")


def curl_of(driver: WebDriver, method: str, path: str) -> str:
    return str(expand(driver, method, path).find_element(By.CSS_SELECTOR, "pre.curl").text)


def run_curl(example: str) -> tuple[int, dict[str, Any]]:
    """The example as a shell runs it, with the answer's status appended."""
    done = subprocess.run(["bash", "-c", example + " -s -w '\\n%{http_code}'"],
                          capture_output=True, text=True, timeout=60, check=True)
    body, _, status = done.stdout.rpartition("\n")
    answer: dict[str, Any] = json.loads(body)
    return int(status), answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples_reach_the_api_as_written(browser: WebDriver, ui: UiServer) -> None:
    """Copied into a shell, an example is a request the API parses: the cluster answers, and
    completing an activity with the placeholder token is refused as a bad token (a typed 4xx
    naming no missing field), not as an unknown route or a malformed body."""
    browser.get(f"{ui.url}/#/api")
    status, cluster = run_curl(curl_of(browser, "GET", "/api/v1/cluster"))
    assert status == 200 and cluster
    status, refusal = run_curl(curl_of(browser, "POST", COMPLETE))
    assert 400 <= status < 500 and status != 404, refusal
    assert refusal["code"].endswith("Error") and "task_token" in json.dumps(refusal)


@pytest.fixture
def gateway_ui(stack: Stack) -> Iterator[str]:
    """The UI as `cadenza ui --address https://<id>.execute-api.<region>.amazonaws.com` would
    serve it: that address in its config, the calls carried to the local stack."""
    app = wsgi_app("https://abc123.execute-api.eu-west-1.amazonaws.com",
                   transport=ToLocalStack(stack.api_url))
    server, thread = serve_wsgi(app)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    app.close()


class ToLocalStack:
    """The transport seam carrying the page's GETs to the local stack instead (a connection
    per call, so nothing is left bound to the UI's event loop when it stops)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    async def call(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        assert method == "GET" and json is None, "the API page only reads"
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return await asyncio.to_thread(self._get, f"{self.api_url}{path}{query}", timeout)

    @staticmethod
    def _get(url: str, timeout: float | None) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=timeout or 30) as answer:
            body: dict[str, Any] = json.load(answer)
        return body

    async def close(self) -> None:
        return None


def test_a_deployed_apis_examples_are_signed(browser: WebDriver, gateway_ui: str) -> None:
    browser.get(f"{gateway_ui}/#/api")
    example = curl_of(browser, "POST", COMPLETE)
    assert example.startswith(
        f"curl -X POST 'https://abc123.execute-api.eu-west-1.amazonaws.com{COMPLETE}'")
    assert "--aws-sigv4 'aws:amz:eu-west-1:execute-api'" in example
    assert '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"' in example
