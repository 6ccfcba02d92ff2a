"""Workflows and activities of the end-to-end activity tests (timeouts, retries, heartbeats,
cancellation, completion by token). Short timeouts: every case ends within seconds.

Activities that run in the test process report what they saw through module-level records,
keyed by workflow id (each test has its own run, so parallel tests never share an entry).
The worker subprocess (worker_process.py) imports this module too; what it does is seen only
through the engine (describe, history).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from cadenza import Registry, RetryPolicy, activity, workflow
from cadenza.error import ActivityCancelledError, ActivityFailure

reg = Registry()

#: A heartbeat timeout short enough for quick tests, long enough that a healthy activity's
#: throttled heartbeats (one per 80% of it) never miss it on a loaded machine.
HEARTBEAT = timedelta(seconds=3)
#: Bound on loops that wait for a cancellation, so a broken engine cannot hang a worker.
GIVE_UP_SECONDS = 20.0


class FlakyError(Exception):
    pass


class FatalError(Exception):
    pass


#: How often each flaky key failed so far.
FAILURES: dict[str, int] = {}
#: Workflow id -> task token of its running activity (set when the activity starts).
TOKENS: dict[str, str] = {}
#: Workflow id -> what the activity saw when told to stop: activity.is_cancelled() then.
SAW_STOP: dict[str, bool] = {}
#: Workflow id -> when (time.monotonic()) the slow activity returned its late result.
FINISHED: dict[str, float] = {}


@reg.activity()
async def flaky(key: str, failures: int) -> int:
    """Fails ``failures`` times for ``key``, then returns the attempt it succeeded on."""
    seen = FAILURES.get(key, 0)
    if seen < failures:
        FAILURES[key] = seen + 1
        raise FlakyError(f"failure {seen + 1} of {failures}")
    return activity.info().attempt


@reg.activity()
def fatal(order: str) -> None:
    raise FatalError(f"order {order} can never be shipped")


@reg.activity()
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    FINISHED[activity.info().workflow_id] = time.monotonic()
    return "late"


@reg.activity()
async def echo(message: str) -> str:
    return message


@reg.activity()
async def resumable(steps: int, period: float) -> list[int]:
    """Heartbeats each step done; a later attempt resumes after the last step heartbeated.
    Returns ``[first step of this attempt, attempt]``."""
    done = activity.heartbeat_details(int)
    start = done[0] + 1 if done and done[0] is not None else 0
    for step in range(start, steps):
        await asyncio.sleep(period)
        activity.heartbeat(step)
    return [start, activity.info().attempt]


@reg.activity()
async def until_cancelled_async() -> str:
    """Heartbeats until a heartbeat's answer says stop (asyncio.CancelledError here)."""
    info = activity.info()
    TOKENS[info.workflow_id] = info.task_token
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        activity.heartbeat("alive")
        try:
            await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            SAW_STOP[info.workflow_id] = activity.is_cancelled()
            raise ActivityCancelledError("async cleaned up") from None
    return "never cancelled"


@reg.activity()
def until_cancelled_sync() -> str:
    """The same for a sync activity (a thread): it polls wait_for_cancelled between beats."""
    info = activity.info()
    TOKENS[info.workflow_id] = info.task_token
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        activity.heartbeat("alive")
        if activity.wait_for_cancelled(timedelta(seconds=0.1)):
            SAW_STOP[info.workflow_id] = activity.is_cancelled()
            raise ActivityCancelledError("sync cleaned up")
    return "never cancelled"


@reg.activity()
async def parks(order: str) -> str:
    """Completed later, by task token, from anywhere."""
    info = activity.info()
    TOKENS[info.workflow_id] = info.task_token
    activity.complete_async()
    return "ignored"


@reg.workflow()
class RetriesUntilSuccess:
    @workflow.run
    async def run(self, key: str, failures: int) -> int:
        return await flaky.with_options(
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
        ).execute(key, failures)


@reg.workflow()
class FailsFatally:
    @workflow.run
    async def run(self, order: str) -> str:
        try:
            await fatal.with_options(
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1),
                                         maximum_attempts=5,
                                         non_retryable_error_reasons=["FatalError"]),
            ).execute(order)
        except ActivityFailure as failure:
            return f"failed: {failure.reason}"
        return "shipped"


@reg.workflow()
class CallsActivity:
    """Runs one named activity with the given timeouts (seconds) and reports how it ended;
    with ``hold``, it then stays open until the "finish" signal."""

    def __init__(self) -> None:
        self.finish = False

    @workflow.signal(name="finish")
    def on_finish(self) -> None:
        self.finish = True

    @workflow.run
    async def run(self, name: str, timeouts: dict[str, float], args: list[object],
                  task_list: str = "", hold: bool = False) -> str:
        options: dict[str, Any] = {key: timedelta(seconds=value)
                                   for key, value in timeouts.items()}
        try:
            result: Any = await workflow.execute_activity(name, None, *args, **options,
                                                     task_list=task_list)
            outcome = f"ok: {result}"
        except ActivityFailure as failure:
            outcome = f"failed: {failure.reason}"
        if hold:
            await workflow.wait_condition(lambda: self.finish)
        return outcome


@reg.workflow()
class Resumes:
    @workflow.run
    async def run(self, steps: int, period: float) -> list[int]:
        return await resumable.with_options(
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
        ).execute(steps, period)


@reg.workflow()
class CancelsOnSignal:
    """Cancels its activity's task when signalled, waiting for the acknowledgement."""

    def __init__(self) -> None:
        self.cancel = False

    @workflow.signal(name="cancel")
    def on_cancel(self) -> None:
        self.cancel = True

    @workflow.run
    async def run(self, name: str) -> str:
        task: asyncio.Future[str] = asyncio.ensure_future(workflow.execute_activity(
            name, str, start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=HEARTBEAT, wait_for_cancellation=True))
        await workflow.wait_condition(lambda: self.cancel)
        task.cancel()
        try:
            return f"finished: {await task}"
        except asyncio.CancelledError:
            return "cancelled"


@reg.workflow()
class AwaitsActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            name, str, start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=HEARTBEAT)


@reg.workflow()
class Echo:
    @workflow.run
    async def run(self, message: str) -> str:
        return await echo.with_options(start_to_close_timeout=timedelta(seconds=5)).execute(
            message)
