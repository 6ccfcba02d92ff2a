"""Workflows for the workflow-API tests: children, external signals and cancels, chains.

Written as a user of the Cadence Python client writes them (the names are the contract), so
the same module runs on the in-memory environment here and on the local stack in tests/e2e.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from cadenza import Registry, workflow
from cadenza.error import WorkflowFailure

api = Registry()

MINUTE = timedelta(minutes=1)


@api.workflow()
class Child:
    """Returns its input doubled, fails on a negative one, waits for 'go' when asked to."""

    def __init__(self) -> None:
        self.go = False
        self.pings: list[str] = []

    @workflow.run
    async def run(self, value: int, wait: bool = False) -> int:
        if wait:
            await workflow.wait_condition(lambda: self.go)
        if value < 0:
            raise ValueError(f"negative: {value}")
        return value * 2

    @workflow.signal(name="go")
    def on_go(self) -> None:
        self.go = True

    @workflow.signal(name="ping")
    def on_ping(self, text: str) -> None:
        self.pings.append(text)
        if text == "done":
            self.go = True

    @workflow.query(name="pings")
    def get_pings(self) -> list[str]:
        return self.pings


@api.workflow()
class Parent:
    """Runs a child to completion and returns what it returned or how it failed."""

    @workflow.run
    async def run(self, value: int, child_id: str = "") -> Any:
        options: dict[str, Any] = {"execution_start_to_close_timeout": MINUTE}
        if child_id:
            options["workflow_id"] = child_id
        try:
            return await workflow.execute_child_workflow("Child", int, value, **options)
        except WorkflowFailure as failure:
            return f"child failed: {failure.reason}"
        except Exception as error:
            return f"{type(error).__name__}"


@api.workflow()
class ParentThatLeaves:
    """Starts a waiting child with a close policy, then completes without waiting for it."""

    @workflow.run
    async def run(self, child_id: str, policy: str) -> str:
        child = await workflow.start_child_workflow(
            "Child", int, 1, True, workflow_id=child_id, parent_close_policy=policy,
            execution_start_to_close_timeout=MINUTE)
        return child.run_id


@api.workflow()
class ParentThatSignals:
    """Starts a waiting child, signals it through its future, and returns its result."""

    @workflow.run
    async def run(self, child_id: str) -> int:
        child = await workflow.start_child_workflow(
            "Child", int, 5, True, workflow_id=child_id, execution_start_to_close_timeout=MINUTE)
        await child.signal("ping", "done")
        return await child


@api.workflow()
class Signaller:
    """Signals another workflow; returns 'sent' or the failure's reason."""

    @workflow.run
    async def run(self, target: str, text: str) -> str:
        try:
            await workflow.signal_external_workflow(target, "ping", text)
        except WorkflowFailure as failure:
            return f"failed: {failure.reason}"
        return "sent"


@api.workflow()
class Counter:
    """Continues as new until it reaches ``limit``; each run adds one."""

    @workflow.run
    async def run(self, count: int, limit: int) -> int:
        if count < limit:
            workflow.continue_as_new(count + 1, limit)
        return count


@api.workflow()
class Flaky:
    """Fails until its attempt reaches ``succeed_at``; returns the attempt it succeeded on."""

    @workflow.run
    async def run(self, succeed_at: int) -> int:
        attempt = workflow.info().attempt
        if attempt < succeed_at:
            raise RuntimeError(f"attempt {attempt} fails")
        return attempt


@api.workflow()
class Ticker:
    """One cron period: returns the minute it ran in."""

    @workflow.run
    async def run(self) -> str:
        return workflow.now().strftime("%H:%M")


@api.workflow()
class Tagger:
    """Upserts a search attribute, then waits for a signal."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, tag: str) -> str:
        workflow.upsert_search_attributes({"CustomKeywordField": tag})
        await workflow.wait_condition(lambda: self.done)
        return tag

    @workflow.signal(name="done")
    def on_done(self) -> None:
        self.done = True


@api.workflow()
class Napper:
    """Sleeps, so a run has timers and decision tasks to reset to."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(timedelta(seconds=10))
        await workflow.sleep(timedelta(seconds=10))
        await asyncio.sleep(0)
        return self.notes

    @workflow.signal(name="note")
    def on_note(self, text: str) -> None:
        self.notes.append(text)


@api.workflow()
class Marked:
    """Markers: a side effect, a mutable side effect and a version, across decision tasks."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[Any]:
        token = workflow.side_effect(lambda: "drawn-once", str)
        version = workflow.get_version("new-greeting", workflow.DEFAULT_VERSION, 2)
        first = workflow.mutable_side_effect("setting", lambda: 1, int)
        await workflow.wait_condition(lambda: self.go)
        second = workflow.mutable_side_effect("setting", lambda: 1, int)
        return [token, version, first, second]

    @workflow.signal(name="go")
    def on_go(self) -> None:
        self.go = True


@api.workflow()
class Canceller:
    """Asks another workflow to cancel; returns 'requested' or the failure's reason."""

    @workflow.run
    async def run(self, target: str) -> str:
        try:
            await workflow.request_cancel_external_workflow(target)
        except WorkflowFailure as failure:
            return f"failed: {failure.reason}"
        return "requested"


@api.workflow()
class ParentOfStranger:
    """Starts a child of a type no worker knows and waits for it to start."""

    @workflow.run
    async def run(self, child_id: str) -> str:
        child = await workflow.start_child_workflow(
            "NoSuchWorkflow", str, workflow_id=child_id, parent_close_policy="ABANDON",
            execution_start_to_close_timeout=MINUTE)
        return child.run_id


@api.workflow()
class Inbox:
    """Waits for ``count`` signals; returns how many arrived and how many were distinct."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @workflow.run
    async def run(self, count: int) -> list[int]:
        await workflow.wait_condition(lambda: len(self.seen) >= count)
        return [len(self.seen), len(set(self.seen))]

    @workflow.signal(name="item")
    def on_item(self, value: int) -> None:
        self.seen.append(value)


@api.activity()
async def square(value: int) -> int:
    return value * value


@api.workflow()
class FanOut:
    """Runs ``count`` activities at once; returns the sum of their results."""

    @workflow.run
    async def run(self, count: int) -> int:
        results = await asyncio.gather(*(
            workflow.execute_activity("square", int, value,
                                      start_to_close_timeout=timedelta(seconds=60))
            for value in range(count)))
        return sum(results)
