"""Build run histories for replay tests the way the engine writes them.

``HistoryBuilder`` starts a run (WorkflowExecutionStarted + DecisionTaskScheduled) and offers
``decide(definition)``: it calls ``run_decision_task`` on the history so far, then records the
decision task as completed (DecisionTaskStarted + DecisionTaskCompleted) followed by one event
per decision, as the engine does. Activity results, timers and signals are appended with their
own methods, each scheduling a new decision task. Event timestamps advance one second per
event unless ``tick`` moves the clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cadenza.core.decisions import Decision, DecisionType
from cadenza.core.events import EventType, HistoryEvent
from cadenza.replay import DecisionTaskResult, run_decision_task
from cadenza.workflow import WorkflowDefinition

FIXTURES = Path(__file__).parent / "fixtures"
START = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
WORKFLOW_ID = "wf-1"
RUN_ID = "run-1"

_DECISION_EVENTS = {
    DecisionType.ScheduleActivityTask: "ActivityTaskScheduled",
    DecisionType.RequestCancelActivityTask: "ActivityTaskCancelRequested",
    DecisionType.StartTimer: "TimerStarted",
    DecisionType.CancelTimer: "TimerCanceled",
    DecisionType.RecordMarker: "MarkerRecorded",
    DecisionType.CompleteWorkflowExecution: "WorkflowExecutionCompleted",
    DecisionType.FailWorkflowExecution: "WorkflowExecutionFailed",
    DecisionType.CancelWorkflowExecution: "WorkflowExecutionCanceled",
    DecisionType.ContinueAsNewWorkflowExecution: "WorkflowExecutionContinuedAsNew",
    DecisionType.UpsertWorkflowSearchAttributes: "UpsertWorkflowSearchAttributes",
    DecisionType.StartChildWorkflowExecution: "StartChildWorkflowExecutionInitiated",
    DecisionType.SignalExternalWorkflowExecution: "SignalExternalWorkflowExecutionInitiated",
    DecisionType.RequestCancelExternalWorkflowExecution: (
        "RequestCancelExternalWorkflowExecutionInitiated"
    ),
}


def load_fixture(name: str) -> list[HistoryEvent]:
    data = json.loads((FIXTURES / name).read_text())
    return [HistoryEvent.from_dict(item) for item in data]


def event_type(name: str) -> Any:
    """An EventType when the engine knows the name, else the plain string (future events)."""
    try:
        return EventType(name)
    except ValueError:
        return name


class HistoryBuilder:
    def __init__(
        self,
        *,
        workflow_type: str = "Wf",
        task_list: str = "tl",
        input: str | None = None,
        start: datetime = START,
        execution_timeout_seconds: int = 3600,
        **started_attributes: Any,
    ) -> None:
        self.events: list[HistoryEvent] = []
        self.now = start
        self.add(
            "WorkflowExecutionStarted",
            workflow_type=workflow_type,
            task_list=task_list,
            input=input,
            execution_start_to_close_timeout_seconds=execution_timeout_seconds,
            task_start_to_close_timeout_seconds=10,
            **{"attempt": 0, "identity": "test", **started_attributes},
        )
        self.schedule_decision()

    # -- raw events --------------------------------------------------------------------------

    def add(self, name: str, **attributes: Any) -> int:
        event_id = len(self.events) + 1
        self.events.append(
            HistoryEvent(
                event_id=event_id,
                event_type=event_type(name),
                timestamp=self.now,
                attributes=attributes,
            )
        )
        self.now += timedelta(seconds=1)
        return event_id

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def schedule_decision(self) -> int:
        return self.add("DecisionTaskScheduled", task_list="tl", start_to_close_timeout_seconds=10)

    def last_scheduled_decision(self) -> int:
        for event in reversed(self.events):
            if event.event_type == EventType.DecisionTaskScheduled:
                return event.event_id
        raise AssertionError("no decision task scheduled")

    # -- decision tasks ------------------------------------------------------------------------

    def run(self, definition: WorkflowDefinition, **kwargs: Any) -> DecisionTaskResult:
        """Run the current decision task without recording it."""
        return run_decision_task(
            definition,
            list(self.events),
            started_at=kwargs.pop("started_at", self.now),
            workflow_id=WORKFLOW_ID,
            run_id=RUN_ID,
            **kwargs,
        )

    def decide(self, definition: WorkflowDefinition, **kwargs: Any) -> list[Decision]:
        """Run the current decision task and record it with its decisions, as the engine does."""
        started_at = self.now
        result = self.run(definition, started_at=started_at, **kwargs)
        self.record_decisions(result.decisions, started_at=started_at)
        return list(result.decisions)

    def record_decisions(
        self, decisions: Sequence[Decision], *, started_at: datetime | None = None
    ) -> None:
        scheduled = self.last_scheduled_decision()
        if started_at is not None:
            self.now = started_at
        started = self.add("DecisionTaskStarted", scheduled_event_id=scheduled, identity="w")
        completed = self.add(
            "DecisionTaskCompleted",
            scheduled_event_id=scheduled,
            started_event_id=started,
            identity="w",
        )
        for decision in decisions:
            attributes = dict(decision.attributes)
            if decision.decision_type is DecisionType.CancelTimer:
                attributes["started_event_id"] = self.timer_started_id(attributes["timer_id"])
            self.add(
                _DECISION_EVENTS[decision.decision_type],
                **attributes,
                decision_task_completed_event_id=completed,
            )

    def fail_decision_task(self, cause: str = "WORKFLOW_WORKER_UNHANDLED_FAILURE") -> None:
        scheduled = self.last_scheduled_decision()
        started = self.add("DecisionTaskStarted", scheduled_event_id=scheduled, identity="w")
        self.add(
            "DecisionTaskFailed",
            scheduled_event_id=scheduled,
            started_event_id=started,
            cause=cause,
            details="boom",
        )
        self.schedule_decision()

    # -- results -------------------------------------------------------------------------------

    def scheduled_id(self, activity_id: str) -> int:
        for event in self.events:
            if (
                event.event_type == EventType.ActivityTaskScheduled
                and event.get("activity_id") == activity_id
            ):
                return event.event_id
        raise AssertionError(f"activity {activity_id!r} was never scheduled")

    def timer_started_id(self, timer_id: str) -> int:
        for event in self.events:
            if event.event_type == EventType.TimerStarted and event.get("timer_id") == timer_id:
                return event.event_id
        raise AssertionError(f"timer {timer_id!r} was never started")

    def complete_activity(
        self, activity_id: str, result: str | None, *, schedule: bool = True
    ) -> None:
        scheduled = self.scheduled_id(activity_id)
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=0)
        self.add(
            "ActivityTaskCompleted",
            scheduled_event_id=scheduled,
            started_event_id=started,
            result=result,
        )
        if schedule:
            self.schedule_decision()

    def fail_activity(
        self, activity_id: str, reason: str, details: str | None = None, *, schedule: bool = True
    ) -> None:
        scheduled = self.scheduled_id(activity_id)
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=0)
        self.add(
            "ActivityTaskFailed",
            scheduled_event_id=scheduled,
            started_event_id=started,
            reason=reason,
            details=details,
        )
        if schedule:
            self.schedule_decision()

    def time_out_activity(self, activity_id: str, timeout_type: str) -> None:
        self.add(
            "ActivityTaskTimedOut",
            scheduled_event_id=self.scheduled_id(activity_id),
            timeout_type=timeout_type,
        )
        self.schedule_decision()

    def fire_timer(self, timer_id: str, *, schedule: bool = True) -> None:
        self.add("TimerFired", timer_id=timer_id, started_event_id=self.timer_started_id(timer_id))
        if schedule:
            self.schedule_decision()

    def signal(self, name: str, input: str | None = None, *, schedule: bool = True) -> None:
        self.add("WorkflowExecutionSignaled", signal_name=name, input=input, identity="c")
        if schedule:
            self.schedule_decision()

    def request_cancel(self) -> None:
        self.add("WorkflowExecutionCancelRequested", cause="test", identity="c")
        self.schedule_decision()

    def to_json(self) -> str:
        return json.dumps([event.to_dict() for event in self.events], indent=1)
