"""The ``cadenza workflow`` commands, run in-process against the local stack with a live worker."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cadenza import Client, Worker
from cadenza.cli import main
from cadenza.cli.format import local_time
from cadenza.local import LocalStack

from .workflows import PARKED_TOKENS, reg


@pytest.fixture
def worker(local_stack: LocalStack, task_list: str) -> Iterator[str]:
    """A Worker of the sample registry on the test's own task list, in a thread of its own
    (the CLI runs its own event loop with asyncio.run)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        async with Client(domain="default", target=local_stack.api_url) as client, \
                Worker(client, task_list, reg, poll_wait_seconds=1):
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as error:  # pragma: no cover - reported below
            failure.append(error)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="cli-test-worker", daemon=True)
    thread.start()
    assert ready.wait(15), "worker did not start"
    assert not failure, failure
    try:
        yield task_list
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


class Cli:
    def __init__(self, address: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.address = address
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()  # drop anything printed before
        code = main([*argv, "--address", self.address])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *argv: str) -> Any:
        code, out, err = self.run(*argv, "--json")
        assert code == 0, (out, err)
        return json.loads(out)


@pytest.fixture
def cli(local_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(local_stack.api_url, capsys)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_start_result_describe_show_list(cli: Cli, worker: str) -> None:
    workflow_id = unique("cli")
    started = cli.json("workflow", "start", "SingleActivity", "--task-list", worker,
                       "--execution-timeout", "30", "-i", '"hi"', "--workflow-id", workflow_id)
    assert started["workflow_id"] == workflow_id and started["run_id"]

    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {"result": "hi"}

    described = cli.json("workflow", "describe", workflow_id)
    assert described["workflow_id"] == workflow_id
    assert described["run_id"] == started["run_id"]
    assert described["workflow_type"] == "SingleActivity"
    assert described["task_list"] == worker
    assert described["status"] == "COMPLETED"

    events = cli.json("workflow", "show", workflow_id, "--run-id", started["run_id"])
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event_type"] == "WorkflowExecutionStarted"
    assert events[0]["attributes"]["input"] == '"hi"'
    assert events[-1]["event_type"] == "WorkflowExecutionCompleted"
    assert events[-1]["attributes"]["result"] == '"hi"'
    assert described["history_length"] == len(events)

    # Listing reads visibility records, which the history stream writes a moment later.
    deadline = time.monotonic() + 15
    while True:
        listed = cli.json("workflow", "list")
        mine = [r for r in listed if r["workflow_id"] == workflow_id]
        if (mine and mine[0]["status"] == "COMPLETED") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r["run_id"], r["status"], r["workflow_type"]) for r in mine] == [
        (started["run_id"], "COMPLETED", "SingleActivity")]
    closed = cli.json("workflow", "list", "--status", "closed", "--type", "SingleActivity")
    assert started["run_id"] in {r["run_id"] for r in closed}
    assert all(r["workflow_type"] == "SingleActivity" for r in closed)
    by_query = cli.json("workflow", "list", "-q", f"WorkflowID = '{workflow_id}'")
    assert [r["run_id"] for r in by_query] == [started["run_id"]]
    page = cli.json("workflow", "list", "--page", "--page-size", "1", "-q",
                    f"WorkflowID = '{workflow_id}' AND CloseStatus = 'COMPLETED'")
    assert [r["run_id"] for r in page["executions"]] == [started["run_id"]]
    assert page["next_page_token"] is None


def test_rich_output_names_the_events(cli: Cli, worker: str) -> None:
    workflow_id = unique("rich")
    code, out, _ = cli.run("workflow", "start", "SingleActivity", "--tl", worker,
                           "--execution-timeout", "30", "-i", '"shown"', "--wid", workflow_id)
    assert code == 0 and workflow_id in out
    code, out, _ = cli.run("workflow", "result", workflow_id, "--timeout", "30")
    assert code == 0 and '"shown"' in out

    code, out, _ = cli.run("workflow", "show", workflow_id)
    assert code == 0
    for name in ("WorkflowExecutionStarted", "DecisionTaskScheduled", "ActivityTaskScheduled",
                 "ActivityTaskCompleted", "WorkflowExecutionCompleted"):
        assert name in out, out
    code, out, _ = cli.run("workflow", "describe", workflow_id)
    assert code == 0 and "COMPLETED" in out and "SingleActivity" in out


def test_terminate_then_describe_shows_terminated(cli: Cli, worker: str) -> None:
    workflow_id = unique("forever")
    started = cli.json("workflow", "start", "WaitsForever", "--task-list", worker,
                       "--execution-timeout", "60", "--workflow-id", workflow_id)
    assert cli.json("workflow", "describe", workflow_id)["status"] == "OPEN"

    answer = cli.json("workflow", "terminate", workflow_id, "--reason", "enough")
    assert answer == {"terminated": workflow_id}

    described = cli.json("workflow", "describe", workflow_id, "--run-id", started["run_id"])
    assert described["status"] == "TERMINATED"
    events = cli.json("workflow", "show", workflow_id)
    assert events[-1]["event_type"] == "WorkflowExecutionTerminated"
    assert events[-1]["attributes"]["reason"] == "enough"

    # Waiting for the result of a terminated run is a workflow failure: exit code 3.
    code, out, _ = cli.run("workflow", "result", workflow_id, "--json")
    assert code == 3
    assert json.loads(out)["error"] == "WorkflowFailure"

    # Terminating it again is refused with the service's error.
    code, out, _ = cli.run("workflow", "terminate", workflow_id, "--json")
    assert code == 2
    assert json.loads(out)["error"] == "WorkflowExecutionAlreadyCompletedError"


def test_signal_reaches_the_workflow(cli: Cli, worker: str) -> None:
    workflow_id = start_approval(cli, worker, "approval")
    answer = cli.json("workflow", "signal", workflow_id, "--name", "approve", "-i", '"cy"')
    assert answer == {"signaled": workflow_id, "signal_name": "approve"}
    assert cli.json("workflow", "query", workflow_id, "--type", "approvers") == {
        "result": ["cy"]}
    assert cli.json("workflow", "result", workflow_id) == {"result": "cy"}


def test_cancel_closes_the_run_as_canceled(cli: Cli, worker: str) -> None:
    workflow_id = unique("cancel")
    cli.json("workflow", "start", "Cancellable", "--task-list", worker, "--execution-timeout",
             "60", "--workflow-id", workflow_id, "-i", json.dumps(f"{worker}-idle"))
    assert cli.json("workflow", "cancel", workflow_id) == {"cancel_requested": workflow_id}
    code, out, _ = cli.run("workflow", "result", workflow_id, "--json")
    assert code == 3 and json.loads(out)["error"] == "WorkflowFailure"
    assert cli.json("workflow", "describe", workflow_id)["status"] == "CANCELED"


@pytest.mark.parametrize("action", ["describe", "show", "result", "terminate"])
def test_unknown_workflow_exits_2(cli: Cli, action: str) -> None:
    workflow_id = unique("missing")
    code, out, _ = cli.run("workflow", action, workflow_id, "--json")
    assert code == 2
    answer = json.loads(out)
    assert answer["error"] == "EntityNotExistsError"
    assert workflow_id in answer["message"]
    # Without --json the same error goes to stderr, as one line naming the error.
    code, out, err = cli.run("workflow", action, workflow_id)
    assert code == 2 and out == ""
    assert "EntityNotExistsError" in err and "Traceback" not in err


def test_duplicate_start_exits_2(cli: Cli, task_list: str) -> None:
    workflow_id = unique("dup")
    argv = ("workflow", "start", "WaitsForever", "--task-list", task_list,
            "--execution-timeout", "30", "--workflow-id", workflow_id)
    first = cli.json(*argv)
    code, out, _ = cli.run(*argv, "--json")
    assert code == 2
    assert json.loads(out)["error"] == "WorkflowExecutionAlreadyStartedError"
    cli.json("workflow", "terminate", workflow_id, "--run-id", first["run_id"])


def test_input_that_is_not_json_is_a_clean_error(cli: Cli, task_list: str) -> None:
    workflow_id = unique("badinput")
    code, out, err = cli.run("workflow", "start", "SingleActivity", "--task-list", task_list,
                             "--execution-timeout", "30", "-i", "hi", "--workflow-id",
                             workflow_id)
    assert code == 2
    assert "--input" in err and "JSON" in err and "Traceback" not in err
    code, out, _ = cli.run("workflow", "describe", workflow_id, "--json")
    assert code == 2 and json.loads(out)["error"] == "EntityNotExistsError"


def test_invalid_option_value_is_a_bad_request(cli: Cli, task_list: str) -> None:
    code, out, _ = cli.run("workflow", "start", "SingleActivity", "--task-list", task_list,
                           "--execution-timeout", "0", "--json")
    assert code == 2
    assert json.loads(out)["error"] == "BadRequestError"
    code, out, _ = cli.run("workflow", "list", "-q", "Nonsense ~ 3", "--json")
    assert code == 2 and json.loads(out)["error"] == "BadRequestError"


def test_unreachable_address_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["workflow", "describe", "x", "--address", f"http://127.0.0.1:{port}"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"127.0.0.1:{port}" in captured.err and "Traceback" not in captured.err


def test_ids_and_payloads_are_printed_verbatim_not_as_markup(cli: Cli, task_list: str) -> None:
    """Rich output must not read data as markup: "[/]" used to crash it, "[b]" vanished."""
    workflow_id = unique("odd[/]id[bold]")
    code, out, err = cli.run("workflow", "start", "WaitsForever", "--task-list", task_list,
                             "--execution-timeout", "30", "--workflow-id", workflow_id,
                             "-i", '"[red]payload[/]"')
    assert code == 0, err
    assert workflow_id in out.replace("\n", "")
    for action in ("describe", "show"):
        code, out, err = cli.run("workflow", action, workflow_id)
        assert code == 0, err
        assert workflow_id in out, out
    assert "[red]payload[/]" in out  # the input attribute of WorkflowExecutionStarted
    code, out, err = cli.run("workflow", "terminate", workflow_id, "--reason", "[/] done")
    assert code == 0, err
    assert workflow_id in out.replace("\n", "")
    code, out, err = cli.run("workflow", "describe", f"{workflow_id}-[/]missing")
    assert code == 2 and out == ""
    assert f"{workflow_id}-[/]missing" in err.replace("\n", "")


# --- cadenza activity: answering for an activity completed later, by its task token ----------


def parked_token(count: int) -> str:
    """The ``count``-th token the ``park`` activity exposed (it runs in the worker's thread)."""
    deadline = time.monotonic() + 15
    while len(PARKED_TOKENS) < count:
        assert time.monotonic() < deadline, "the activity never ran"
        time.sleep(0.1)
    return PARKED_TOKENS[count - 1]


def test_heartbeat_then_complete_an_activity_by_its_token(cli: Cli, worker: str) -> None:
    seen = len(PARKED_TOKENS)
    workflow_id = unique("human")
    cli.json("workflow", "start", "WaitsForHuman", "--task-list", worker,
             "--execution-timeout", "60", "--workflow-id", workflow_id, "-i", '"o-1"')
    token = parked_token(seen + 1)

    code, out, err = cli.run("activity", "heartbeat", token, "-i", '"half"', "-i", "50")
    assert (code, err) == (0, "") and "keep going" in out
    assert cli.json("activity", "heartbeat", token) == {"cancel_requested": False}

    assert cli.json("activity", "complete", token, "-i", '"approved by ann"') == {
        "completed": True}
    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {
        "result": "approved by ann"}
    events = cli.json("workflow", "show", workflow_id)
    completed = next(e for e in events if e["event_type"] == "ActivityTaskCompleted")
    assert completed["attributes"]["result"] == '"approved by ann"'

    # The attempt is over: a heartbeat is told to stop, a second answer is refused (exit 1).
    code, out, _ = cli.run("activity", "heartbeat", token)
    assert code == 0 and "cancel requested" in out
    assert cli.json("activity", "heartbeat", token) == {"cancel_requested": True}
    code, out, _ = cli.run("activity", "complete", token, "--json")
    assert code == 1, out
    assert json.loads(out)["error"] in {"StaleTaskError",
                                        "WorkflowExecutionAlreadyCompletedError"}


def test_fail_an_activity_by_its_token(cli: Cli, worker: str) -> None:
    seen = len(PARKED_TOKENS)
    workflow_id = unique("reject")
    cli.json("workflow", "start", "WaitsForHuman", "--task-list", worker,
             "--execution-timeout", "60", "--workflow-id", workflow_id, "-i", '"o-2"')
    token = parked_token(seen + 1)

    code, out, err = cli.run("activity", "fail", token, "--reason", "out of stock",
                             "--details", "sku 42: none left")
    assert (code, err) == (0, "") and "out of stock" in out
    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {
        "result": "rejected: out of stock"}
    events = cli.json("workflow", "show", workflow_id)
    failed = next(e for e in events if e["event_type"] == "ActivityTaskFailed")
    assert failed["attributes"]["reason"] == "out of stock"
    assert failed["attributes"]["details"] == "sku 42: none left"

    code, out, _ = cli.run("activity", "fail", token, "--reason", "again", "--json")
    assert code == 1 and json.loads(out)["error"] in {
        "StaleTaskError", "WorkflowExecutionAlreadyCompletedError"}


@pytest.mark.parametrize("argv", [
    ("complete", "-i", '"x"'), ("fail", "--reason", "no"), ("heartbeat",)])
@pytest.mark.parametrize("token", ["garbage", "e30.AAAA"])  # malformed; well formed, unsigned
def test_a_garbage_token_is_a_clean_error(cli: Cli, argv: tuple[str, ...], token: str) -> None:
    action, *rest = argv
    code, out, _ = cli.run("activity", action, token, *rest, "--json")
    assert code == 1, out
    answer = json.loads(out)
    assert answer["error"] == "BadRequestError" and "task_token" in answer["message"]
    code, out, err = cli.run("activity", action, token, *rest)
    assert code == 1 and out == ""
    assert "BadRequestError" in err and "task_token" in err and "Traceback" not in err


def test_a_result_that_is_not_json_is_a_usage_error(cli: Cli) -> None:
    code, out, err = cli.run("activity", "complete", "garbage", "-i", "approved")
    assert code == 2 and out == ""
    assert "--input" in err and "JSON" in err and "Traceback" not in err


# --- reading runs: local times, live lengths, whole ids, watching, inputs from files ----------


def signal_later(address: str, workflow_id: str, who: str, *, after: float) -> threading.Thread:
    """Send the ``approve`` signal from another thread ``after`` seconds from now."""

    async def send() -> None:
        await asyncio.sleep(after)
        async with Client(domain="default", target=address) as client:
            await client.signal_workflow(workflow_id, "", "approve", who)

    thread = threading.Thread(target=asyncio.run, args=(send(),), daemon=True)
    thread.start()
    return thread


def start_approval(cli: Cli, task_list: str, prefix: str, needed: int = 1) -> str:
    """Start an ``Approval`` run that closes after ``needed`` approve signals; its id."""
    workflow_id = unique(prefix)
    cli.json("workflow", "start", "Approval", "--task-list", task_list, "--execution-timeout",
             "60", "--workflow-id", workflow_id, "-i", str(needed))
    return workflow_id


def listed(cli: Cli, workflow_id: str) -> dict[str, Any]:
    """The run of ``workflow_id`` as list shows it, once its visibility record is written."""
    deadline = time.monotonic() + 15
    while True:
        runs = cli.json("workflow", "list", "-q", f"WorkflowID = '{workflow_id}'")
        if runs or time.monotonic() > deadline:
            assert runs, "the run was never listed"
            return dict(runs[0])
        time.sleep(0.2)


def test_describe_and_list_read_well(cli: Cli, worker: str) -> None:
    # An id longer than a table's share of 80 columns.
    workflow_id = start_approval(cli, worker, "readable-" + "x" * 60, needed=2)
    cli.json("workflow", "signal", workflow_id, "--name", "approve", "-i", '"ann"')
    described = cli.json("workflow", "describe", workflow_id)
    assert described["status"] == "OPEN"

    # list's length is the run's own, not the one its visibility record had at the start.
    assert listed(cli, workflow_id)["history_length"] == described["history_length"] > 2

    code, out, err = cli.run("workflow", "describe", workflow_id)
    assert code == 0, err
    assert str(described["start_time"]) not in out  # no epoch milliseconds
    assert local_time(described["start_time"]) in out
    assert any(workflow_id in line for line in out.splitlines())  # whole, on one line
    code, out, err = cli.run("workflow", "list", "-q", f"WorkflowID = '{workflow_id}'")
    assert code == 0, err
    assert any(workflow_id in line for line in out.splitlines()), out
    assert any(described["run_id"] in line for line in out.splitlines()), out
    cli.json("workflow", "signal", workflow_id, "--name", "approve", "-i", '"bo"')
    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {"result": "ann,bo"}


def test_show_watch_follows_the_run_until_it_closes(cli: Cli, worker: str) -> None:
    workflow_id = start_approval(cli, worker, "watched")
    sender = signal_later(cli.address, workflow_id, "cy", after=1.5)
    code, out, err = cli.run("workflow", "show", workflow_id, "--watch", "--json")
    sender.join(15)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    types = [e["event_type"] for e in events]
    assert types[0] == "WorkflowExecutionStarted"
    assert "WorkflowExecutionSignaled" in types  # came while watching
    assert types[-1] == "WorkflowExecutionCompleted"


def test_describe_watch_ends_with_the_closed_run(cli: Cli, worker: str) -> None:
    workflow_id = start_approval(cli, worker, "watched-describe")
    sender = signal_later(cli.address, workflow_id, "di", after=1.5)
    code, out, err = cli.run("workflow", "describe", workflow_id, "--watch", "--json")
    sender.join(15)
    assert code == 0, err
    states = [json.loads(line) for line in out.splitlines()]
    assert states[0]["status"] == "OPEN" and states[-1]["status"] == "COMPLETED"
    lengths = [s["history_length"] for s in states]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)  # one per change
    # Without --json, on a pipe: each state as text, the last one closed.
    code, out, err = cli.run("workflow", "describe", workflow_id, "--watch")
    assert code == 0 and "COMPLETED" in out


def test_show_wait_prints_the_whole_history_once_closed(cli: Cli, worker: str) -> None:
    workflow_id = start_approval(cli, worker, "waited")
    sender = signal_later(cli.address, workflow_id, "ed", after=1.0)
    code, out, err = cli.run("workflow", "show", workflow_id, "--wait", "--json")
    sender.join(15)
    assert (code, err) == (0, "")  # no spinner on a pipe
    assert json.loads(out)[-1]["event_type"] == "WorkflowExecutionCompleted"


def test_inputs_from_a_file_and_from_stdin(cli: Cli, worker: str, tmp_path: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "p" * 50_000  # too big to be comfortable in an argument list
    path = tmp_path / "input.json"
    path.write_text(json.dumps(payload))
    workflow_id = unique("from-file")
    cli.json("workflow", "start", "SingleActivity", "--task-list", worker,
             "--execution-timeout", "30", "--workflow-id", workflow_id, "-i", f"@{path}")
    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {"result": payload}

    workflow_id = start_approval(cli, worker, "from-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO('"fay"'))
    cli.json("workflow", "signal", workflow_id, "--name", "approve", "-i", "-")
    assert cli.json("workflow", "result", workflow_id, "--timeout", "30") == {"result": "fay"}


def test_ctrl_c_stops_a_watch_cleanly(cli: Cli, task_list: str) -> None:
    """``show --watch`` on a run that never closes, in its own process: Ctrl-C ends it with
    exit code 130 and no traceback."""
    import signal
    import subprocess
    import sys

    from .test_dev_command import REPO, child_environment, interruptible_children

    workflow_id = unique("watched-forever")
    cli.json("workflow", "start", "WaitsForever", "--task-list", task_list,
             "--execution-timeout", "60", "--workflow-id", workflow_id)
    with interruptible_children():
        watch = subprocess.Popen(
            [sys.executable, "-m", "cadenza.cli", "workflow", "show", workflow_id, "--watch",
             "--json", "--address", cli.address],
            cwd=REPO, env=child_environment(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())  # it is watching
        assert first["event_type"] == "WorkflowExecutionStarted"
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=15)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    cli.json("workflow", "terminate", workflow_id)


@pytest.mark.parametrize("json_output", [False, True])
def test_no_stack_at_the_address_is_one_line_with_a_hint(
    capsys: pytest.CaptureFixture[str], json_output: bool,
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    argv = ["workflow", "list", "--address", address] + (["--json"] if json_output else [])
    code = main(argv)  # the client's retries take a few seconds first
    captured = capsys.readouterr()
    assert code == 2  # `cadenza --help`: 2 a usage, connection or service error
    expected = (f"cannot reach the Cadenza API at {address}: start `cadenza dev`, or set "
                "--address / CADENZA_ADDRESS")
    if json_output:
        answer = json.loads(captured.out)
        assert answer["error"] == "ApiUnreachableError"
        assert answer["message"].startswith(expected)
    else:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith(f"ApiUnreachableError: {expected}")
        assert captured.out == ""
