"""``cadenza ui --address`` as its own process in front of the local stack."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx

from cadenza.local import LocalStack
from cadenza.ui import UI_HEADER

from .test_cli import unique
from .test_dev_command import cadenza, child_environment, free_port

STARTUP_SECONDS = 60
FROM_THE_UI = {UI_HEADER: "1"}


def test_ui_command_serves_the_pages_and_forwards_the_api(local_stack: LocalStack) -> None:
    port = free_port()
    process = subprocess.Popen(
        cadenza("ui", "--address", local_stack.api_url, "--port", str(port)),
        env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                page = httpx.get(f"{base}/", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "cadenza ui did not start"
                time.sleep(0.2)
        assert page.status_code == 200 and "<title>Cadenza</title>" in page.text
        assert httpx.get(f"{base}/static/app.js", timeout=5).status_code == 200
        # The API, through the UI's forwarding: the same answers as the stack's own.
        listed = httpx.get(f"{base}/api/v1/domains/default/workflows",
                           params={"page_size": 1}, headers=FROM_THE_UI, timeout=30)
        assert listed.status_code == 200 and "executions" in listed.json()
        missing = httpx.get(f"{base}/api/v1/domains/default/workflows/{unique('nope')}",
                            headers=FROM_THE_UI, timeout=30)
        assert missing.status_code == 404
        assert missing.json()["code"] == "EntityNotExistsError"
        # Without the pages' header (another site's request): refused.
        assert httpx.get(f"{base}/api/v1/cluster", timeout=30).status_code == 403
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
    assert f"cadenza ui on http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output


def test_ui_command_on_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(cadenza("ui", "--port", str(port)), env=child_environment(),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "cadenza ui could not start" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr
    bad = subprocess.run(cadenza("ui", "--port", "99999"), env=child_environment(),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "99999 is not a port" in bad.stderr
