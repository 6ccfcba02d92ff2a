"""Workflows and activities the end-to-end tests run (shaped after Cadence's integration suite)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Registry, activity, workflow
from cadenza.error import ActivityFailure

reg = Registry()
TIMEOUT = timedelta(seconds=10)


@reg.activity()
async def echo(message: str) -> str:
    return message


@reg.activity()
def shout(message: str) -> str:
    return message.upper()


class InsufficientFundsError(Exception):
    pass


@reg.activity()
async def withdraw(amount: int) -> int:
    raise InsufficientFundsError(f"cannot withdraw {amount}")


@reg.workflow()
class SingleActivity:
    @workflow.run
    async def run(self, message: str) -> str:
        return await echo.with_options(schedule_to_close_timeout=TIMEOUT).execute(message)


@reg.workflow()
class MultipleActivities:
    @workflow.run
    async def run(self, message: str) -> str:
        await echo.with_options(schedule_to_close_timeout=TIMEOUT).execute("first")
        second = await echo.with_options(schedule_to_close_timeout=TIMEOUT).execute(message)
        await echo.with_options(schedule_to_close_timeout=TIMEOUT).execute("third")
        return second


@reg.workflow()
class ParallelActivities:
    @workflow.run
    async def run(self, message: str) -> list[str]:
        first = echo.with_options(schedule_to_close_timeout=TIMEOUT).execute("first")
        second = shout.with_options(schedule_to_close_timeout=TIMEOUT).execute(message)
        results = await asyncio.gather(first, second)
        return list(results)


@reg.workflow()
class ByName:
    @workflow.run
    async def run(self, message: str) -> str:
        return await workflow.execute_activity(
            "shout", str, message, start_to_close_timeout=TIMEOUT
        )


@reg.workflow()
class FailingWorkflow:
    @workflow.run
    async def run(self, amount: int) -> int:
        return await withdraw.with_options(start_to_close_timeout=TIMEOUT).execute(amount)


@reg.workflow()
class CatchingWorkflow:
    @workflow.run
    async def run(self, amount: int) -> str:
        try:
            await withdraw.with_options(start_to_close_timeout=TIMEOUT).execute(amount)
        except ActivityFailure as failure:
            return f"caught {failure.reason}"
        return "not caught"


@reg.workflow()
class WaitsForever:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@reg.activity(name="fan.produce")
def produce(count: int) -> list[int]:
    return list(range(count))


@reg.activity(name="fan.double")
def double(value: int) -> int:
    return value * 2


@reg.workflow(name="FanOut")
class FanOut:
    @workflow.run
    async def run(self, count: int) -> int:
        values = await workflow.execute_activity(
            "fan.produce", list[int], count, start_to_close_timeout=TIMEOUT
        )
        doubled = await asyncio.gather(*[
            workflow.execute_activity("fan.double", int, value, start_to_close_timeout=TIMEOUT)
            for value in values
        ])
        return sum(doubled)


@reg.workflow()
class Approval:
    """Waits for approvals by signal, then echoes who approved through an activity."""

    def __init__(self) -> None:
        self.approvers: list[str] = []

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approvers.append(who)

    @workflow.query(name="approvers")
    def current_approvers(self, prefix: str = "") -> list[str]:
        return [prefix + who for who in self.approvers]

    @workflow.run
    async def run(self, needed: int) -> str:
        await workflow.wait_condition(lambda: len(self.approvers) >= needed)
        return await echo.with_options(start_to_close_timeout=TIMEOUT).execute(
            ",".join(self.approvers)
        )


@reg.activity()
async def wait_long(seconds: int) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@reg.workflow()
class Cancellable:
    """Waits for an activity on a task list no worker polls, until it is cancelled."""

    @workflow.run
    async def run(self, activity_task_list: str) -> str:
        return await wait_long.with_options(
            start_to_close_timeout=timedelta(minutes=5), task_list=activity_task_list
        ).execute(300)


@reg.workflow()
class CleansUpOnCancel:
    """Catches the cancellation, runs a clean-up activity and completes."""

    @workflow.run
    async def run(self, activity_task_list: str) -> str:
        try:
            await wait_long.with_options(
                start_to_close_timeout=timedelta(minutes=5), task_list=activity_task_list
            ).execute(300)
        except asyncio.CancelledError:
            return await echo.with_options(start_to_close_timeout=TIMEOUT).execute("cleaned up")
        return "not cancelled"


@reg.workflow()
class Sleeper:
    @workflow.run
    async def run(self, seconds: int) -> float:
        before = workflow.now()
        await workflow.sleep(timedelta(seconds=seconds))
        return (workflow.now() - before).total_seconds()


@reg.workflow()
class ApprovalWithDeadline:
    """Waits for one approval signal at most ``seconds``; the timer is cancelled if it comes."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.signal(name="approve")
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self, seconds: int) -> str:
        try:
            await workflow.wait_condition(lambda: self.approved, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return "expired"
        return "approved"


#: Task tokens of activities completed later, outside their worker (tests read them).
PARKED_TOKENS: list[str] = []


@reg.activity()
async def park(order: str) -> str:
    PARKED_TOKENS.append(activity.info().task_token)
    activity.complete_async()
    return "ignored"  # the result comes later, through the client


@reg.workflow()
class WaitsForHuman:
    @workflow.run
    async def run(self, order: str) -> str:
        try:
            return await park.with_options(start_to_close_timeout=TIMEOUT).execute(order)
        except ActivityFailure as failure:
            return f"rejected: {failure.reason}"
