"""``cadenza dev`` as its own process: serves the API, runs workflows, stops cleanly on a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cadenza import Client, Worker

from .workflows import reg

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
STOP_SECONDS = 15


def free_port() -> int:
    """A free port whose next one is free too: `cadenza dev` puts its emulator on the API's
    port + 1 by default (other tests' random ports, in other workers, may take it)."""
    while True:
        with socket.socket() as probe, socket.socket() as after:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port >= 65535:
                continue
            try:
                after.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def child_environment() -> dict[str, str]:
    """This process's environment without the settings of a stack a fixture may have started."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("CADENZA_", "POWERTOOLS_")) and key != "AWS_ENDPOINT_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def interruptible_children() -> Iterator[None]:
    """A child inherits an ignored SIGINT (e.g. under a backgrounded test run) and Python then
    never turns Ctrl-C into KeyboardInterrupt; a handled one is reset to the default at exec."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def cadenza(*argv: str) -> list[str]:
    return [sys.executable, "-m", "cadenza.cli", *argv]


@contextmanager
def dev_process(*argv: str) -> Iterator[subprocess.Popen[str]]:
    with interruptible_children():
        process = subprocess.Popen(
            cadenza("dev", *argv), cwd=REPO, env=child_environment(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_SECONDS)


def wait_until_serving(process: subprocess.Popen[str], api_url: str) -> dict[str, object]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"cadenza dev exited with {process.returncode}:\n{out}\n{err}")
        try:
            response = httpx.get(f"{api_url}/api/v1/cluster", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"cadenza dev did not answer on {api_url} within {STARTUP_SECONDS} s")


def stop(process: subprocess.Popen[str], signum: int) -> tuple[str, str, float]:
    began = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=STOP_SECONDS)
    return out, err, time.monotonic() - began


async def test_dev_serves_workflows_refuses_a_second_instance_and_stops_on_ctrl_c() -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    with dev_process("--port", str(port)) as process:
        cluster = wait_until_serving(process, api_url)
        assert cluster["emulated"] is True and cluster["sqs_endpoint_url"]

        # A workflow through the stack the command runs, with a worker of this process.
        async with Client(domain="default", target=api_url) as client:
            async with Worker(client, "dev-command", reg, poll_wait_seconds=1):
                execution = await client.start_workflow(
                    "SingleActivity", "through dev", task_list="dev-command",
                    execution_start_to_close_timeout=timedelta(seconds=30))
                result = await client.get_workflow_result(
                    execution.workflow_id, execution.run_id, timeout=30)
            assert result == "through dev"
            events = await client.get_workflow_history(execution.workflow_id)
            assert events[-1].event_type == "WorkflowExecutionCompleted"

        # A second instance on the same port: a clear message naming it, no traceback.
        second = subprocess.run(cadenza("dev", "--port", str(port)), cwd=REPO,
                                env=child_environment(), text=True, capture_output=True,
                                timeout=STARTUP_SECONDS)
        assert second.returncode != 0
        assert f"127.0.0.1:{port}" in second.stderr.replace("\n", " ")
        assert "already in use" in second.stderr.replace("\n", " ")
        assert "--port" in second.stderr
        assert "Traceback" not in second.stderr + second.stdout
        # ... and the first one is still serving.
        assert httpx.get(f"{api_url}/api/v1/cluster", timeout=5).status_code == 200

        out, err, took = stop(process, signal.SIGINT)
    assert process.returncode == 0, (out, err)
    assert "stopping" in out
    assert "Traceback" not in out + err
    assert took < STOP_SECONDS
    # The port is free again.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_dev_stops_on_sigterm() -> None:
    port = free_port()
    with dev_process("--port", str(port)) as process:
        wait_until_serving(process, f"http://127.0.0.1:{port}")
        out, err, _ = stop(process, signal.SIGTERM)
    assert process.returncode == 0, (out, err)
    assert "stopping" in out and "Traceback" not in out + err


def test_dev_with_the_emulator_port_taken_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(cadenza("dev", "--port", "0", "--emulator-port", str(port)),
                                cwd=REPO, env=child_environment(), text=True,
                                capture_output=True, timeout=STARTUP_SECONDS)
    assert result.returncode != 0
    message = result.stderr.replace("\n", " ")
    assert f"127.0.0.1:{port}" in message and "--emulator-port" in message
    assert "Traceback" not in result.stderr + result.stdout


def test_python_dash_m_cadenza_cli_runs_the_command() -> None:
    result = subprocess.run(cadenza("--help"), cwd=REPO, env=child_environment(), text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0
    assert "dev" in result.stdout and "workflow" in result.stdout


@pytest.mark.parametrize(("flags", "says"), [
    (["--port", "99999"], "99999 is not a port"),
    (["--port", "web"], "'web' is not a port number"),
    (["--emulator-port", "-1"], "-1 is not a port"),
    (["--auth", "basic"], "invalid choice: 'basic'"),
    (["--aws-endpoint", "localhost:4566"], "is not an http:// or https:// URL"),
    (["--port", "8100", "--emulator-port", "8100"], "is the API's port"),
])
def test_bad_flags_give_a_clear_message_and_exit_code_2(flags: list[str], says: str) -> None:
    result = subprocess.run(cadenza("dev", *flags), cwd=REPO, env=child_environment(),
                            text=True, capture_output=True, timeout=STARTUP_SECONDS)
    assert result.returncode == 2
    assert says in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr + result.stdout


def test_dev_says_what_it_keeps_and_logs_requests_with_verbose() -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    with dev_process("--port", str(port), "--verbose") as process:
        cluster = wait_until_serving(process, api_url)
        # The emulator's port is the API's + 1: a restarted stack is found where it was.
        assert str(cluster["sqs_endpoint_url"]).endswith(f":{port + 1}")
        assert httpx.get(f"{api_url}/api/v1/no-such-thing", timeout=5).status_code == 404
        out, err, _ = stop(process, signal.SIGINT)
    assert process.returncode == 0, (out, err)
    text = " ".join(out.split())
    assert "keeps everything in memory" in text and "lost when cadenza dev stops" in text
    assert f"emulator (moto) on http://127.0.0.1:{port + 1}" in text
    lines = out.splitlines()
    assert any(line.startswith("GET /api/v1/cluster 200 ") and line.endswith(" ms")
               for line in lines)
    assert any(line.startswith("GET /api/v1/no-such-thing 404 ") for line in lines)
