"""A real headless Chromium (Debian's chromium and chromedriver, driven by Selenium) against the
web UI, served on a free port and forwarding /api/ to a local stack started here, with a worker
of the browser workflows on a task list of its own.

Without chromium the tests are skipped with the reason, except in CI (``CI`` set): .ci/run
installs the browser there, so a missing one is a failure, not a silent skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from cadenza import Client, Worker
from cadenza.local import LocalStack
from cadenza.ui import UiApp, wsgi_app

from .workflows import reg

T = TypeVar("T")

#: Chromium's flags: headless, and no background traffic (this machine's closed network
#: refuses those connections, which stalls the browser at start).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)


def _browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    return chromium, driver


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs it (apt-get install chromium chromium-driver)")
    pytest.skip(f"{reason} (install Debian's chromium and chromium-driver to run the browser "
                "tests; CI does)")


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0) as stack:
        yield stack


@dataclass
class Stack:
    """The stack's API, a worker of the browser workflows, and a way to call the client from
    synchronous tests (each call on the worker's event loop)."""

    api_url: str
    task_list: str
    call: Callable[[Callable[[Client], Awaitable[Any]]], Any]


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> Iterator[Stack]:
    task_list = f"browser-{uuid.uuid4().hex[:8]}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    client_box: dict[str, Client] = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with Client(domain="default", target=local_stack.api_url) as client:
            client_box["client"] = client
            async with Worker(client, task_list, reg):
                ready.set()
                await stop.wait()

    def thread_main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as error:  # reported by the fixture, not lost in the thread
            failure.append(error)
            ready.set()

    thread = threading.Thread(target=thread_main, name="browser-worker", daemon=True)
    thread.start()
    assert ready.wait(60), "the worker did not start"
    if failure:
        raise failure[0]

    def call(operation: Callable[[Client], Awaitable[T]]) -> T:
        async def run() -> T:
            return await operation(client_box["client"])
        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=90)

    yield Stack(api_url=local_stack.api_url, task_list=task_list, call=call)
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=30)
    loop.close()


@dataclass
class UiServer:
    url: str
    app: UiApp


def serve_wsgi(app: Any) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ui-server", daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="session")
def ui(stack: Stack) -> Iterator[UiServer]:
    """The UI as `cadenza ui --address <stack>` serves it: a port of its own, /api/ forwarded."""
    app = wsgi_app(stack.api_url)
    server, thread = serve_wsgi(app)
    yield UiServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    app.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    paths = _browser_paths()
    if paths is None:
        _missing("chromium or chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (it is in the dev extra)")
    assert paths is not None
    chromium, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="cadenza-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
