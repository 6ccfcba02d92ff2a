"""Requests retried after their answer was lost change nothing the second time.

The client gives every mutating call a request id and retries a busy answer (an unreachable
API, a lost answer) with backoff; the engine recognises the id. Here a transport delivers each
mutating request, then loses its answer once, so the client sends the very same request again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import Client, Registry, activity, workflow
from cadenza.client import RetryingTransport
from cadenza.error import ServiceBusyError
from cadenza.testing import TestWorkflowEnvironment

registry = Registry()
TOKENS: list[str] = []


@registry.activity()
async def later() -> str:
    activity.complete_async()
    TOKENS.append(activity.info().task_token)
    return "unused"


@registry.workflow()
class Waits:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        result = await workflow.execute_activity(
            "later", str, start_to_close_timeout=timedelta(minutes=5))
        await workflow.wait_condition(lambda: len(self.signals) >= 2)
        return [result, *self.signals]

    @workflow.signal(name="note")
    def note(self, text: str) -> None:
        self.signals.append(text)


class LosesEveryFirstAnswer:
    """Delivers every POST, then reports its answer lost the first time (as a dropped
    connection does); the retry carries the same body, request id included."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lost: list[str] = []

    async def call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.inner.call(method, path, **options)
        key = f"{method} {path} {options.get('json')}"
        if method == "POST" and key not in self.lost:
            self.lost.append(key)
            raise ServiceBusyError("the connection dropped before the answer arrived")
        return answer

    async def close(self) -> None:
        await self.inner.close()


async def test_every_mutating_request_retried_after_a_lost_answer_changes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    TOKENS.clear()
    monkeypatch.setattr(RetryingTransport, "FIRST_PAUSE", 0.0)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with TestWorkflowEnvironment(registry, start_time=start) as env:
        lossy = LosesEveryFirstAnswer(env.client.transport)
        client = Client(domain=env.domain, transport=lossy)
        run = await client.start_workflow("Waits", task_list=env.task_list,
                                          execution_start_to_close_timeout=timedelta(hours=1))
        for _ in range(20):
            if TOKENS:
                break
            await env.sleep(timedelta(0))
        await client.complete_activity(TOKENS[0], "done")
        await client.signal_workflow(run.workflow_id, "", "note", "a")
        await client.signal_workflow(run.workflow_id, "", "note", "b")
        assert await env.client.get_workflow_result(run.workflow_id) == ["done", "a", "b"]
        # No worker decides the cancellation: the terminate below must find the run open.
        env.stop_worker(env.task_list)
        other = await client.start_workflow("Waits", task_list=env.task_list,
                                            execution_start_to_close_timeout=timedelta(hours=1))
        await client.cancel_workflow(other.workflow_id)
        await client.terminate_workflow(other.workflow_id, reason="stop")
        events = await env.client.get_workflow_history(run.workflow_id)
        closed = await env.client.get_workflow_history(other.workflow_id)
        starts = await env.client.list_workflows("WorkflowType = 'Waits'")
    kinds = [e.event_type for e in events]
    assert len(lossy.lost) >= 7  # each of those POSTs lost its first answer
    assert kinds.count("WorkflowExecutionSignaled") == 2
    assert kinds.count("ActivityTaskCompleted") == 1
    assert [e.event_type for e in closed].count("WorkflowExecutionCancelRequested") == 1
    assert [e.event_type for e in closed].count("WorkflowExecutionTerminated") == 1
    assert len(starts) == 2  # each start created one run
