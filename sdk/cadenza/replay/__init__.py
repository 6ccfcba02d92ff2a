"""Deterministic replay: from a run's history to the decisions of its current decision task.

Pure code: no boto3, no clock, no randomness. The worker loads the history, calls
:func:`run_decision_task` and commits the returned decisions; a
:class:`~cadenza.error.NonDeterministicError` (or any other exception) means the decision task
must be failed, never that the run is changed.

How a history is read (see :mod:`cadenza.replay.history`): each completed decision task is
re-executed with the events it saw, at the time it started, and must make exactly the
decisions recorded after its DecisionTaskCompleted. Then the events since the last completed
task are applied at ``started_at`` and the decisions made are the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cadenza._workflow_context import WorkflowInfo
from cadenza._workflow_definition import WorkflowDefinition
from cadenza.core.decisions import Decision
from cadenza.core.events import HistoryEvent
from cadenza.data_converter import DataConverter, DefaultDataConverter
from cadenza.replay.history import ParsedHistory, parse_history
from cadenza.replay.instance import LocalActivityRequest, LocalActivityRunner, WorkflowInstance
from cadenza.replay.loop import DeterministicEventLoop, WorkflowStuckError
from cadenza.replay.sticky import StickyInstance, StickyResult, decide_sticky, replay_batch

__all__ = [
    "DecisionTaskResult",
    "DeterministicEventLoop",
    "LocalActivityRequest",
    "LocalActivityRunner",
    "StickyInstance",
    "StickyResult",
    "WorkflowStuckError",
    "run_decision_task",
    "run_query",
    "run_sticky_decision_task",
    "workflow_info_from_started",
]


@dataclass(frozen=True, slots=True)
class DecisionTaskResult:
    """The new decisions of the current decision task, in the order they were made.

    Empty when the run already closed or is waiting; a completion decision, when present, is
    last.
    """

    decisions: tuple[Decision, ...]


def run_decision_task(
    definition: WorkflowDefinition,
    history: Sequence[HistoryEvent],
    *,
    started_at: datetime,
    registry_lookup_activity: Callable[[str], Any] | None = None,
    converter: DataConverter | None = None,
    domain: str = "default",
    run_id: str,
    workflow_id: str,
    local_activity_runner: LocalActivityRunner | None = None,
) -> DecisionTaskResult:
    """Replay ``history`` and return the decisions of the decision task that starts now.

    ``history`` is the run's full history, ending with the current (not yet started) decision
    task and the events after it; ``started_at`` is the start time of that task, what
    ``workflow.now()`` returns while it runs. ``registry_lookup_activity(name)`` optionally
    returns an activity definition, whose return annotation decodes results when workflow
    code passes ``result_type=None``, and which local activities given by name run.

    Local activities requested by the current task run synchronously, inside this call, through
    ``local_activity_runner`` (default: the activity executor, one thread per attempt), so call
    this from a worker thread (``asyncio.to_thread``) rather than on the worker's event loop.
    """
    result = run_sticky_decision_task(
        definition, history, previous=None, started_at=started_at,
        registry_lookup_activity=registry_lookup_activity, converter=converter, domain=domain,
        run_id=run_id, workflow_id=workflow_id, local_activity_runner=local_activity_runner,
    )
    if result.sticky is not None:
        result.sticky.close()
    return DecisionTaskResult(decisions=result.decisions)


def run_sticky_decision_task(
    definition: WorkflowDefinition,
    history: Sequence[HistoryEvent],
    *,
    previous: StickyInstance | None,
    started_at: datetime,
    registry_lookup_activity: Callable[[str], Any] | None = None,
    converter: DataConverter | None = None,
    domain: str = "default",
    run_id: str,
    workflow_id: str,
    local_activity_runner: LocalActivityRunner | None = None,
) -> StickyResult:
    """:func:`run_decision_task` that continues ``previous`` (an instance kept from the run's
    last task) when history shows it can, and returns the instance to keep for the next task.

    The decisions are the same either way (a kept instance that does not continue into
    ``history`` is dropped and the run replayed from its first event); see
    :mod:`cadenza.replay.sticky`.
    """
    converter = converter or DefaultDataConverter()

    def fresh(parsed: ParsedHistory, codec: DataConverter) -> WorkflowInstance:
        return _instance(definition, parsed, codec, registry_lookup_activity, domain, run_id,
                         workflow_id)

    return decide_sticky(
        definition, history, previous=previous, started_at=started_at, new_instance=fresh,
        converter=converter, local_activity_runner=local_activity_runner,
    )


def run_query(
    definition: WorkflowDefinition,
    history: Sequence[HistoryEvent],
    query_type: str,
    query_args: str | None = None,
    *,
    registry_lookup_activity: Callable[[str], Any] | None = None,
    converter: DataConverter | None = None,
    domain: str = "default",
    run_id: str,
    workflow_id: str,
) -> str | None:
    """Replay ``history`` (nothing is decided or committed) and answer a query.

    Events after the last completed decision task (a signal not yet processed, say) are
    applied too, so the answer reflects everything history holds. Returns the encoded answer;
    raises :class:`~cadenza.error.QueryFailedError` for an unknown query or a failing handler.
    """
    converter = converter or DefaultDataConverter()
    parsed = parse_history(history)
    instance = _instance(
        definition, parsed, converter, registry_lookup_activity, domain, run_id, workflow_id
    )
    instance.prepare_query()
    try:
        _replay_completed_tasks(instance, parsed)
        if not instance.completed and parsed.pending_inputs:
            instance.begin_task(parsed.pending_inputs[-1].timestamp, replaying=False, batch=None)
            for event in parsed.pending_inputs:
                instance.apply(event)
            instance.run()
            instance.take_decisions()
        return instance.query(query_type, query_args)
    finally:
        instance.close()


def _instance(
    definition: WorkflowDefinition,
    parsed: ParsedHistory,
    converter: DataConverter,
    lookup: Callable[[str], Any] | None,
    domain: str,
    run_id: str,
    workflow_id: str,
) -> WorkflowInstance:
    info = workflow_info_from_started(
        parsed.started,
        domain=domain,
        run_id=run_id,
        workflow_id=workflow_id,
        converter=converter,
    )
    return WorkflowInstance(definition, info=info, converter=converter, lookup_activity=lookup)


def _replay_completed_tasks(instance: WorkflowInstance, parsed: ParsedHistory) -> None:
    for batch in parsed.batches:
        replay_batch(instance, batch)


def workflow_info_from_started(
    started: HistoryEvent,
    *,
    domain: str,
    run_id: str,
    workflow_id: str,
    converter: DataConverter | None = None,
) -> WorkflowInfo:
    """What ``workflow.info()`` returns, from the WorkflowExecutionStarted event."""
    parent = started.get("parent_workflow_execution") or {}
    continued_from = started.get("continued_execution_run_id") or None
    return WorkflowInfo(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=_name(started.get("workflow_type")),
        task_list=_name(started.get("task_list")),
        domain=domain,
        attempt=int(started.get("attempt") or 0),
        memo=dict(started.get("memo") or {}),
        search_attributes=dict(started.get("search_attributes") or {}),
        execution_start_to_close_timeout=_duration(
            started.get("execution_start_to_close_timeout_seconds")
        ),
        task_start_to_close_timeout=_duration(started.get("task_start_to_close_timeout_seconds")),
        cron_schedule=started.get("cron_schedule") or None,
        continued_execution_run_id=continued_from,
        parent_workflow_id=(parent.get("workflow_id") if isinstance(parent, Mapping) else None)
        or started.get("parent_workflow_id"),
        parent_run_id=(parent.get("run_id") if isinstance(parent, Mapping) else None)
        or started.get("parent_run_id"),
        parent_domain=started.get("parent_workflow_domain") or started.get("parent_domain"),
        # Histories written before the attribute existed: a run that continues no other one
        # is its own first execution.
        first_execution_run_id=started.get("first_execution_run_id")
        or (None if continued_from else run_id or None),
        started_time=started.timestamp,
        data_converter=converter,
    )


def _name(value: Any) -> str:
    """Cadence writes some names as ``{"name": ...}`` objects; accept both shapes."""
    if isinstance(value, Mapping):
        return str(value.get("name") or "")
    return "" if value is None else str(value)


def _duration(seconds: Any) -> timedelta | None:
    if seconds is None or seconds == 0:
        return None
    return timedelta(seconds=float(seconds))
