"""Activity timeouts, retries, heartbeats and cancellation, end to end on the local stack.

The engine enforces these server-side: deadlines and retry backoffs are messages on the
stack's timer queue, fired by functions/timer through the local Lambda runtime; workers only
start attempts, heartbeat and report. Timeouts are a few seconds so that each case ends in
seconds (tests/testing/test_activities.py covers the same rules in virtual time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cadenza import Client, Worker
from cadenza.core import HistoryEvent, TaskKind
from cadenza.error import CadenzaError, StaleTaskError, WorkflowExecutionTerminatedError
from cadenza.local import LocalStack

from .activity_workflows import FAILURES, FINISHED, SAW_STOP, TOKENS, reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}
ROOT = Path(__file__).resolve().parents[2]


def of(events: list[HistoryEvent], kind: str) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == kind]


def types(events: list[HistoryEvent]) -> list[str]:
    return [str(e.event_type) for e in events]


async def eventually(check: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def settled_after(client: Client, workflow_id: str, kind: str) -> list[HistoryEvent]:
    """The history once ``kind`` is in it and the decision it caused is completed (the run
    then waits, and nothing but a new outcome or signal can add events)."""
    async def check() -> list[HistoryEvent] | None:
        events = await client.get_workflow_history(workflow_id)
        if not of(events, kind) or events[-1].event_type != "DecisionTaskCompleted":
            return None
        return events if events[-1].event_id > of(events, kind)[0].event_id else None
    return await eventually(check, f"the decision after {kind} in {workflow_id}")


async def python(*args: str) -> str:
    """Run ``python args...`` in another process, without blocking the event loop (the
    test's workers keep running meanwhile); its stdout, stripped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


@contextlib.asynccontextmanager
async def worker_process(api_url: str, task_list: str, identity: str) \
        -> AsyncIterator[asyncio.subprocess.Process]:
    """An activity worker in a subprocess (tests/e2e/worker_process.py), polling once this
    yields; killed with SIGKILL at the end if still alive."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.e2e.worker_process", api_url, task_list, identity,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line.strip() == b"ready", line
        yield process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()


# --- retries -----------------------------------------------------------------------------------


async def test_retries_until_success_write_no_failure_to_history(
    client: Client, task_list: str,
) -> None:
    key = uuid.uuid4().hex
    async with Worker(client, task_list, reg):
        run = await client.start_workflow("RetriesUntilSuccess", key, 2, task_list=task_list,
                                          **START)
        assert await client.get_workflow_result(run.workflow_id, timeout=WAIT) == 2
    assert FAILURES[key] == 2
    events = await client.get_workflow_history(run.workflow_id)
    assert of(events, "ActivityTaskFailed") == []
    assert types(events).count("ActivityTaskScheduled") == 1
    (started,) = of(events, "ActivityTaskStarted")
    assert started.attributes["attempt"] == 2
    assert started.attributes["last_failure_reason"] == "FlakyError"
    (completed,) = of(events, "ActivityTaskCompleted")
    assert completed.attributes["result"] == "2"
    assert completed.attributes["started_event_id"] == started.event_id
    # Backoffs 1 s then 2 s: the successful attempt cannot have started before 3 s.
    scheduled = of(events, "ActivityTaskScheduled")[0]
    assert started.timestamp - scheduled.timestamp >= timedelta(seconds=3)
    assert types(events)[-1] == "WorkflowExecutionCompleted"


async def test_a_non_retryable_reason_fails_at_once(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow("FailsFatally", "o-7", task_list=task_list, **START)
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "failed: FatalError"
    events = await client.get_workflow_history(run.workflow_id)
    (started,) = of(events, "ActivityTaskStarted")
    assert started.attributes["attempt"] == 0
    (failed,) = of(events, "ActivityTaskFailed")
    assert failed.attributes["reason"] == "FatalError"
    assert "order o-7 can never be shipped" in failed.attributes["details"]
    assert failed.attributes["started_event_id"] == started.event_id
    assert types(events).index("ActivityTaskStarted") + 1 == types(events).index(
        "ActivityTaskFailed")


# --- timeouts ----------------------------------------------------------------------------------


async def test_start_to_close_timeout_and_the_late_result_is_dropped(
    client: Client, task_list: str,
) -> None:
    """The attempt runs 5 s against a 2 s start-to-close: it times out (no retry policy), the
    run stays open, and the result that comes 3 s later changes nothing."""
    async with Worker(client, task_list, reg, disable_activity_worker=True):
        async with Worker(client, task_list, reg, disable_workflow_worker=True):
            run = await client.start_workflow(
                "CallsActivity", "slow", {"start_to_close_timeout": 2}, [5], "", True,
                task_list=task_list, **START)
            at_timeout = await settled_after(client, run.workflow_id, "ActivityTaskTimedOut")
            assert run.workflow_id not in FINISHED  # the activity still runs
        # Leaving the activity worker waited for its task: the late result was reported.
        assert run.workflow_id in FINISHED
        after_late_result = await client.get_workflow_history(run.workflow_id)
        assert after_late_result == at_timeout
        await client.signal_workflow(run.workflow_id, "", "finish")
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "failed: cadenceInternal:Timeout START_TO_CLOSE"
    events = await client.get_workflow_history(run.workflow_id)
    (timed_out,) = of(events, "ActivityTaskTimedOut")
    assert timed_out.attributes["timeout_type"] == "START_TO_CLOSE"
    (started,) = of(events, "ActivityTaskStarted")
    assert started.attributes["attempt"] == 0
    assert timed_out.attributes["started_event_id"] == started.event_id
    assert of(events, "ActivityTaskCompleted") == []
    assert timed_out.timestamp - started.timestamp >= timedelta(seconds=2)  # never early


async def test_schedule_to_start_timeout_when_no_worker_polls(
    client: Client, task_list: str,
) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow(
            "CallsActivity", "echo", {"schedule_to_start_timeout": 2,
                                      "start_to_close_timeout": 5},
            ["nobody hears"], f"{task_list}-idle", task_list=task_list, **START)
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "failed: cadenceInternal:Timeout SCHEDULE_TO_START"
    events = await client.get_workflow_history(run.workflow_id)
    assert of(events, "ActivityTaskStarted") == []
    (scheduled,) = of(events, "ActivityTaskScheduled")
    assert scheduled.attributes["task_list"] == f"{task_list}-idle"
    (timed_out,) = of(events, "ActivityTaskTimedOut")
    assert timed_out.attributes["timeout_type"] == "SCHEDULE_TO_START"
    assert timed_out.attributes["scheduled_event_id"] == scheduled.event_id
    assert timed_out.timestamp - scheduled.timestamp >= timedelta(seconds=2)


# --- heartbeats --------------------------------------------------------------------------------


async def test_a_killed_workers_activity_resumes_from_its_heartbeat_on_another_worker(
    client: Client, task_list: str, local_stack: LocalStack,
) -> None:
    """Attempt 0 runs in a subprocess that is SIGKILLed mid-way; after the 2 s heartbeat
    timeout and a 1 s backoff, attempt 1 runs here and resumes after the last step the dead
    worker heartbeated."""
    async with Worker(client, task_list, reg, disable_activity_worker=True):
        async with worker_process(local_stack.api_url, task_list, "doomed-worker") as doomed:
            run = await client.start_workflow("Resumes", 20, 0.2, task_list=task_list,
                                              **START)

            async def progressed() -> int | None:
                info = await client.describe_workflow(run.workflow_id)
                pending = info.raw["pending_activities"]
                details = pending[0]["heartbeat_details"] if pending else None
                return int(details) if details and int(details) > 0 else None

            await eventually(progressed, "the subprocess to heartbeat a step past 0")
            os.kill(doomed.pid, signal.SIGKILL)
            await doomed.wait()
        # A heartbeat the server had received when the process died may still commit: read
        # the details once that settled (well within the 2 s heartbeat timeout).
        await asyncio.sleep(0.5)
        (pending,) = (await client.describe_workflow(run.workflow_id)).raw["pending_activities"]
        last_step = int(pending["heartbeat_details"])  # final: nothing heartbeats it now
        assert pending["attempt"] == 0 and pending["state"] == "STARTED"
        async with Worker(client, task_list, reg, disable_workflow_worker=True,
                          identity="second-worker"):
            start, attempt = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert 0 < last_step < 19
    assert (start, attempt) == (last_step + 1, 1)
    events = await client.get_workflow_history(run.workflow_id)
    (started,) = of(events, "ActivityTaskStarted")
    assert started.attributes["attempt"] == 1
    assert started.attributes["identity"] == "second-worker"
    assert started.attributes["last_failure_reason"] == "cadenceInternal:Timeout HEARTBEAT"
    assert of(events, "ActivityTaskTimedOut") == []
    assert of(events, "ActivityTaskFailed") == []
    (completed,) = of(events, "ActivityTaskCompleted")
    assert completed.attributes["result"] == f"[{last_step + 1},1]"


# --- cancellation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("activity", "details"), [
    ("until_cancelled_async", "async cleaned up"),
    ("until_cancelled_sync", "sync cleaned up"),
])
async def test_an_activity_learns_of_its_cancellation_through_heartbeats(
    client: Client, task_list: str, activity: str, details: str,
) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow("CancelsOnSignal", activity, task_list=task_list,
                                          **START)
        await eventually(lambda: run.workflow_id in TOKENS, "the activity to start")
        await client.signal_workflow(run.workflow_id, "", "cancel")
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "cancelled"
    assert SAW_STOP[run.workflow_id] is True  # activity.is_cancelled() when it stopped
    events = await client.get_workflow_history(run.workflow_id)
    order = types(events)
    assert order.index("ActivityTaskCancelRequested") < order.index("ActivityTaskStarted") \
        < order.index("ActivityTaskCanceled") < order.index("WorkflowExecutionCompleted")
    (scheduled,) = of(events, "ActivityTaskScheduled")
    (requested,) = of(events, "ActivityTaskCancelRequested")
    assert requested.attributes["activity_id"] == scheduled.attributes["activity_id"]
    (canceled,) = of(events, "ActivityTaskCanceled")
    assert canceled.attributes["details"] == f'"{details}"'
    assert canceled.attributes["scheduled_event_id"] == scheduled.event_id
    assert canceled.attributes["started_event_id"] == of(events, "ActivityTaskStarted")[0].event_id
    assert of(events, "ActivityTaskFailed") == of(events, "ActivityTaskTimedOut") == []


async def test_an_activity_learns_that_its_workflow_closed(
    client: Client, task_list: str,
) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow("AwaitsActivity", "until_cancelled_async",
                                          task_list=task_list, **START)
        await eventually(lambda: run.workflow_id in TOKENS, "the activity to start")
        await client.terminate_workflow(run.workflow_id, reason="operator")
        await eventually(lambda: run.workflow_id in SAW_STOP, "the activity to stop")
        with pytest.raises(WorkflowExecutionTerminatedError):
            await client.get_workflow_result(run.workflow_id, timeout=WAIT)
        terminated = await client.get_workflow_history(run.workflow_id)
    assert SAW_STOP[run.workflow_id] is True
    # A heartbeat by its token says stop too; the worker's acknowledgement changed nothing.
    assert await client.record_activity_heartbeat(TOKENS[run.workflow_id], "more") is True
    events = await client.get_workflow_history(run.workflow_id)
    assert events == terminated
    assert types(events)[-1] == "WorkflowExecutionTerminated"
    assert events[-1].attributes["reason"] == "operator"
    assert of(events, "ActivityTaskCanceled") == of(events, "ActivityTaskCompleted") == []


# --- decision tasks ----------------------------------------------------------------------------


async def test_a_dead_decision_workers_task_goes_to_another_worker_within_its_timeout(
    client: Client, task_list: str, local_stack: LocalStack,
) -> None:
    from cadenza.service import service_from_environment

    service = service_from_environment(local_stack.environment)
    began = time.monotonic()
    run = await client.start_workflow("Echo", "still here", task_list=task_list, **START)

    def take() -> list[Any]:  # a worker that takes the task for 10 s and dies
        return service.queues.receive(  # type: ignore[attr-defined,no-any-return]
            "default", task_list, TaskKind.DECISION, wait_seconds=1, visibility_timeout=10)

    (message,) = await eventually(lambda: asyncio.to_thread(take), "the first decision task")
    assert message.message.task.workflow_id == run.workflow_id
    async with Worker(client, task_list, reg):
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    elapsed = time.monotonic() - began
    print(f"dead decision worker: run completed {elapsed:.1f} s after its start")
    assert result == "still here"
    assert elapsed < 25  # the decision task timeout (10 s), not the queue's visibility (30 s)
    events = await client.get_workflow_history(run.workflow_id)
    assert types(events)[-1] == "WorkflowExecutionCompleted"
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))


# --- completion by token -----------------------------------------------------------------------

HEARTBEAT_BY_TOKEN = """
import asyncio, sys
from cadenza import Client
async def main(url, token):
    async with Client(target=url) as client:
        print(await client.record_activity_heartbeat(token, "half"))
asyncio.run(main(*sys.argv[1:3]))
"""

COMPLETE_BY_TOKEN = """
import asyncio, sys
from cadenza import Client
async def main(url, token):
    async with Client(target=url) as client:
        await client.complete_activity(token, "done")
        print("completed")
asyncio.run(main(*sys.argv[1:3]))
"""


async def test_async_completion_and_heartbeat_from_another_process(
    client: Client, task_list: str, local_stack: LocalStack,
) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow(
            "CallsActivity", "parks", {"start_to_close_timeout": 30}, ["o-1"],
            task_list=task_list, **START)
        token = await eventually(lambda: TOKENS.get(run.workflow_id), "the activity to park")
        assert await python("-c", HEARTBEAT_BY_TOKEN, local_stack.api_url, token) == "False"
        (pending,) = (await client.describe_workflow(run.workflow_id)).raw["pending_activities"]
        assert pending["state"] == "STARTED"
        assert pending["attempt"] == 0
        assert pending["heartbeat_details"] == '"half"'
        assert pending["last_heartbeat_time"] is not None
        assert await python("-c", COMPLETE_BY_TOKEN, local_stack.api_url, token) == "completed"
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "ok: done"
    events = await client.get_workflow_history(run.workflow_id)
    (completed,) = of(events, "ActivityTaskCompleted")
    assert completed.attributes["result"] == '"done"'


async def test_a_second_completion_by_token_is_stale_and_dropped(
    client: Client, task_list: str,
) -> None:
    async with Worker(client, task_list, reg):
        run = await client.start_workflow(
            "CallsActivity", "parks", {"start_to_close_timeout": 30}, ["o-2"], "", True,
            task_list=task_list, **START)
        token = await eventually(lambda: TOKENS.get(run.workflow_id), "the activity to park")
        await client.complete_activity(token, "first")
        completed_once = await settled_after(client, run.workflow_id, "ActivityTaskCompleted")
        # The run is still open (it waits for "finish"): the attempt is simply no longer there.
        with pytest.raises(StaleTaskError):
            await client.complete_activity(token, "second")
        with pytest.raises(StaleTaskError):
            await client.fail_activity(token, RuntimeError("too late"))
        assert await client.record_activity_heartbeat(token) is True
        assert await client.get_workflow_history(run.workflow_id) == completed_once
        await client.signal_workflow(run.workflow_id, "", "finish")
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    assert result == "ok: first"
    # Once the run closed, the token is refused still (a 4xx, never a server error).
    with pytest.raises(CadenzaError) as refused:
        await client.complete_activity(token, "third")
    assert 400 <= refused.value.status < 500  # type: ignore[attr-defined]
    events = await client.get_workflow_history(run.workflow_id)
    (completed,) = of(events, "ActivityTaskCompleted")
    assert completed.attributes["result"] == '"first"'
    assert types(events)[-1] == "WorkflowExecutionCompleted"
