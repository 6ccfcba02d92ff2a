"""Workflows and activities the environment tests run (real code: the engine runs them)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Registry, activity, workflow
from cadenza.error import ActivityCancelledError, ActivityFailure

registry = Registry()
SHORT = timedelta(seconds=10)


@registry.activity()
async def add_one(value: int) -> int:
    return value + 1


@registry.activity()
def shout(text: str) -> str:
    return text.upper()


class FlakyError(Exception):
    pass


class FatalError(Exception):
    pass


#: How often each flaky key failed so far (activities run in-process in the environment).
FAILURES: dict[str, int] = {}


@registry.activity()
async def flaky(key: str, failures: int) -> int:
    """Fails ``failures`` times for ``key``, then returns the attempt it succeeded on."""
    seen = FAILURES.get(key, 0)
    if seen < failures:
        FAILURES[key] = seen + 1
        raise FlakyError(f"failure {seen + 1} of {failures}")
    return activity.info().attempt


@registry.activity()
async def fatal() -> None:
    raise FatalError("never retried")


@registry.activity()
async def hang() -> None:
    await asyncio.Event().wait()


@registry.activity()
async def progress(steps: int) -> list[int]:
    """Heartbeats each step and resumes from the last heartbeat of a previous attempt; the
    first attempt hangs after step 2, so only a heartbeat timeout moves it on."""
    done = activity.heartbeat_details(int)
    start = done[0] + 1 if done else 0
    for step in range(start, steps):
        activity.heartbeat(step)
        if activity.info().attempt == 0 and step == 2:
            await asyncio.Event().wait()
    return [start, activity.info().attempt]


@registry.activity()
async def until_cancelled() -> str:
    """Heartbeats until told to stop, then acknowledges with details."""
    while True:
        activity.heartbeat("alive")
        try:
            await asyncio.sleep(0.002)
        except asyncio.CancelledError:
            CANCEL_SEEN.append(activity.info().workflow_id)
            raise ActivityCancelledError("cleaned up") from None


@registry.activity()
async def later() -> str:
    activity.complete_async()
    PENDING_TOKENS.append(activity.info().task_token)
    return "ignored"


PENDING_TOKENS: list[str] = []
#: Workflow ids whose until_cancelled activity saw its cancellation.
CANCEL_SEEN: list[str] = []


@registry.workflow()
class Sequence:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for index in range(count):
            total += await add_one.with_options(start_to_close_timeout=SHORT).execute(index)
        await workflow.sleep(timedelta(hours=1))
        return total


@registry.workflow()
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return workflow.now().isoformat()


@registry.workflow()
class Approval:
    """Waits for an approval signal at most an hour; queryable status."""

    def __init__(self) -> None:
        self.approver: str | None = None
        self.status = "waiting"

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approver = who

    @workflow.query(name="status")
    def get_status(self) -> str:
        return self.status

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.approver is not None,
                                          timeout=timedelta(hours=1))
        except TimeoutError:
            self.status = "expired"
            return "expired"
        self.status = "approved"
        return await shout.with_options(start_to_close_timeout=SHORT).execute(
            str(self.approver))


@registry.workflow()
class Failing:
    @workflow.run
    async def run(self) -> None:
        raise ValueError("bad order")


@registry.workflow()
class Retrying:
    @workflow.run
    async def run(self, key: str, failures: int, policy: dict[str, object]) -> int:
        return await workflow.execute_activity(
            "flaky", int, key, failures, start_to_close_timeout=SHORT,
            schedule_to_close_timeout=timedelta(hours=10), retry_policy=policy)


@registry.workflow()
class CallsActivity:
    """Runs one named activity with the given timeouts (seconds) and reports how it ended."""

    @workflow.run
    async def run(self, name: str, timeouts: dict[str, float],
                  retry: dict[str, object] | None = None, args: list[object] | None = None,
                  task_list: str = "") -> str:
        options = {key: timedelta(seconds=value) for key, value in timeouts.items()}
        try:
            result = await workflow.execute_activity(name, None, *(args or []), **options,
                                                     retry_policy=retry, task_list=task_list)
        except ActivityFailure as failure:
            return f"failed: {failure.reason}"
        return f"ok: {result}"


@registry.workflow()
class Resumes:
    @workflow.run
    async def run(self) -> list[int]:
        return await workflow.execute_activity(
            "progress", list[int], 6, start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy={"initial_interval": timedelta(seconds=1), "maximum_attempts": 3})


@registry.workflow()
class CancelsActivity:
    @workflow.run
    async def run(self, wait: bool) -> str:
        task = asyncio.ensure_future(workflow.execute_activity(
            "until_cancelled", str, start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=1), wait_for_cancellation=wait))
        await workflow.sleep(timedelta(seconds=5))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"


@registry.workflow()
class Async:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity("later", str, start_to_close_timeout=timedelta(
            hours=1))


@registry.workflow()
class Local:
    @workflow.run
    async def run(self, key: str) -> int:
        return await workflow.execute_local_activity(
            flaky, int, key, 2, schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy={"initial_interval": timedelta(seconds=1), "maximum_attempts": 5})
