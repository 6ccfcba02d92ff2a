"""Group commit: concurrent changes of one run in one process share commits.

The service runs over the in-memory adapters of cadenza.testing, whose store is slowed to
5 ms a commit (about DynamoDB's), so that writers really overlap; no wall-clock assertion.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.core import (
    CompleteDecisionTask,
    Decision,
    DecisionType,
    EventType,
    RunState,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
    apply_all,
    start,
)
from cadenza.core.records import StoredBatch
from cadenza.error import StaleTaskError, WorkflowExecutionAlreadyCompletedError
from cadenza.service.engine import WorkflowService
from cadenza.service.requests import StartWorkflowRequest
from cadenza.service.tokens import TaskTokens
from cadenza.testing._memory import (
    InMemoryHistoryStore,
    InMemoryQueryAnswers,
    InMemoryTaskQueues,
    InMemoryVisibility,
    VirtualClock,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def begun() -> RunState:
    return start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=60,
        task_start_to_close_timeout_seconds=10), now=T0).state


def test_apply_all_puts_the_decision_first_and_shares_one_version() -> None:
    state = begun()
    assert state.decision is not None
    decided = CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=T0,
        decisions=(Decision(DecisionType.StartTimer,
                            {"timer_id": "t", "start_to_fire_timeout_seconds": 5}),))
    stale = CompleteDecisionTask(scheduled_event_id=99, attempt=0, history_length=3,
                                 started_at=T0)
    transition, outcomes = apply_all(
        state, [SignalWorkflow(signal_name="a"), decided, stale,
                SignalWorkflow(signal_name="b")], now=T0)
    kinds = [e.event_type for e in transition.events]
    assert kinds[:3] == [EventType.DecisionTaskStarted, EventType.DecisionTaskCompleted,
                         EventType.TimerStarted]
    assert kinds.count(EventType.WorkflowExecutionSignaled) == 2
    assert [e.event_id for e in transition.events] == list(range(3, 3 + len(kinds)))
    assert transition.state.version == state.version + 1
    assert outcomes[0] is True and outcomes[1] is True and outcomes[3] is True
    assert isinstance(outcomes[2], StaleTaskError)


def test_a_command_after_one_that_closed_the_run_gets_its_error() -> None:
    transition, outcomes = apply_all(
        begun(), [TerminateWorkflow(reason="stop"), SignalWorkflow(signal_name="late")],
        now=T0)
    assert outcomes[0] is True
    assert isinstance(outcomes[1], WorkflowExecutionAlreadyCompletedError)
    assert [e.event_type for e in transition.events] == [
        EventType.WorkflowExecutionTerminated]


def service_with_a_run(store: InMemoryHistoryStore, clock: VirtualClock,
                       workflow_id: str) -> WorkflowService:
    service = WorkflowService(
        store=store, queues=InMemoryTaskQueues(clock, lambda: None),
        visibility=InMemoryVisibility(), answers=InMemoryQueryAnswers(),
        tokens=TaskTokens("group-commit"), clock=clock.now)
    service.start_workflow(StartWorkflowRequest.from_dict("default", {
        "workflow_id": workflow_id, "workflow_type": "T", "task_list": "tl",
        "execution_start_to_close_timeout_seconds": 600}))
    return service


class SlowStore(InMemoryHistoryStore):
    """Commits take as long as a DynamoDB PutItem, so concurrent writers overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.conflicts = 0
        self._count = threading.Lock()

    def append(self, transition: Any, *, committed_at: int) -> StoredBatch:
        threading.Event().wait(0.005)
        try:
            batch = super().append(transition, committed_at=committed_at)
        except Exception:
            with self._count:
                self.conflicts += 1
            raise
        with self._count:
            self.commits += 1
        return batch


@pytest.mark.parametrize("writers", [50])
def test_concurrent_signals_to_one_run_share_commits_and_none_is_refused(writers: int) -> None:
    clock = VirtualClock(T0)
    store = SlowStore()
    service = service_with_a_run(store, clock, "hot")
    signals = 500

    def send(index: int) -> None:
        service.signal_workflow("default", "hot", signal_name="s", input=str(index),
                                request_id=f"req-{index}")

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(send, range(signals)))  # raises if any signal was refused
    events, _ = store.history_pages("default", "hot", store.latest("default", "hot").run_id,
                                    page_size=10_000)
    recorded = sorted(int(e.attributes["input"]) for e in events
                      if e.event_type is EventType.WorkflowExecutionSignaled)
    assert recorded == list(range(signals))
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    # Shared commits: far fewer than one per signal (the start is one of them).
    assert store.commits < signals / 2, (store.commits, store.conflicts)


def test_a_signal_retried_with_its_request_id_is_recorded_once() -> None:
    clock = VirtualClock(T0)
    store = InMemoryHistoryStore()
    service = service_with_a_run(store, clock, "w")
    for _ in range(3):
        service.signal_workflow("default", "w", signal_name="s", request_id="same")
    service.terminate_workflow("default", "w", reason="x", request_id="stop")
    service.terminate_workflow("default", "w", reason="x", request_id="stop")  # no error
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        service.terminate_workflow("default", "w", reason="x", request_id="another")
    events, _ = store.history_pages("default", "w", store.latest("default", "w").run_id)
    kinds = [e.event_type for e in events]
    assert kinds.count(EventType.WorkflowExecutionSignaled) == 1
    assert kinds.count(EventType.WorkflowExecutionTerminated) == 1
    assert clock.now() - T0 == timedelta(0)
