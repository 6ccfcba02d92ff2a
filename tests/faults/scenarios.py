"""The paths the faults run through, each a workflow of the end-to-end suite (imported, not
copied): start, decision and an activity that fails once and is retried; a timer (SQS
delay); a signal racing a long timer (a Scheduler schedule, cancelled when the signal comes);
a parent with a child.

The activity has a retry policy on purpose: a fault may cost an attempt (a worker that died
holding it, an answer lost), and an attempt lost that way ends at its start-to-close timeout.
With retries the run still ends with its result; without them it fails, as Cadence's would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cadenza import Registry
from cadenza.core import EventType

from ..e2e import activity_workflows
from ..e2e.activity_workflows import RetriesUntilSuccess
from ..e2e.api_workflows import Parent, api
from ..e2e.workflows import ApprovalWithDeadline, SingleActivity, Sleeper, reg


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    args: tuple[Any, ...] = ()
    #: Sent once this event is in the run's history (None: right after the start).
    after: EventType | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    #: The paths of data flow its AWS calls belong to.
    paths: str
    registry: Registry
    workflow: type
    args: Callable[[str], list[Any]]
    expected: Callable[[Any], bool]
    expected_text: str
    signals: tuple[Signal, ...] = ()
    #: The child's workflow id, from the run's tag (a parent's scenario).
    child_id: Callable[[str], str] | None = None
    #: Options of the scenario's worker beyond runner.WORKER_OPTIONS.
    worker_options: Mapping[str, Any] = field(default_factory=dict)


def _child_id(tag: str) -> str:
    return f"{tag}-child"


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="activity",
            paths="start, decision, activity, activity failure and retry (retry timer)",
            registry=activity_workflows.reg,
            workflow=RetriesUntilSuccess,
            # Fails once (its key is the run's tag), succeeds on a later attempt.
            args=lambda tag: [tag, 1],
            expected=lambda result: isinstance(result, int) and 1 <= result <= 4,
            expected_text="the attempt that succeeded (1-4)",
        ),
        Scenario(
            name="timer",
            paths="start, decision, timer (SQS delay, timer function)",
            registry=reg,
            workflow=Sleeper,
            args=lambda tag: [1],
            expected=lambda result: isinstance(result, float) and result >= 1.0,
            expected_text="slept at least 1 s",
        ),
        Scenario(
            name="signal",
            paths="signal, long timer (Scheduler schedule), timer cancel",
            registry=reg,
            workflow=ApprovalWithDeadline,
            args=lambda tag: [1800],
            expected=lambda result: result == "approved",
            expected_text="'approved'",
            signals=(Signal("approve", after=EventType.TimerStarted),),
        ),
        Scenario(
            name="child",
            paths="child start, child started and closed reports",
            registry=api,
            workflow=Parent,
            args=lambda tag: [21, _child_id(tag)],
            expected=lambda result: result == 42,
            expected_text="42 (the child's result)",
            child_id=_child_id,
        ),
    )
}


#: Not in the sweep: an activity without a retry policy, where a lost attempt fails the run
#: (test_faults.py's known bugs reproduce with it).
ONCE = Scenario(
    name="activity-once",
    paths="start, decision, activity without retries",
    registry=reg,
    workflow=SingleActivity,
    args=lambda tag: [f"payload of {tag}"],
    expected=lambda result: isinstance(result, str) and result.startswith("payload of"),
    expected_text="the input echoed",
    # Its activity travels by the queue and is started by its own request (the known bugs
    # of that path reproduce with it), not eagerly in the decision's commit.
    worker_options={"disable_eager_execution": True},
)
ALL_SCENARIOS: dict[str, Scenario] = {**SCENARIOS, ONCE.name: ONCE}
