"""Replay a recorded history against today's workflow code, to catch non-determinism early.

A deployed workflow must make, for every decision task its history recorded, exactly the
decisions it made then; otherwise running workflows break (their decision tasks fail) once the
new code is deployed. :class:`Replayer` checks this offline: it feeds each completed decision
task of a stored history (from ``client.get_workflow_history`` or ``cadenza workflow show
--json``) to the current code with the pure replay engine and raises
:class:`~cadenza.error.NonDeterministicError` at the first difference.

It is stricter than the worker in one respect: the worker accepts any close event for a
completion decision (the engine may turn a completion into a continue-as-new for cron and
retries), so a run that now *fails* where it once *completed* would pass. A replayer checks
closed histories, so it also compares how the run closed.

Events after the last completed decision task are not checked: history recorded no decision
for them, so there is nothing to compare with, and deciding them would run local activities.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from cadenza._workflow_definition import WorkflowDefinition
from cadenza.core.decisions import Decision, DecisionType
from cadenza.core.events import HistoryEvent
from cadenza.data_converter import DataConverter, DefaultDataConverter
from cadenza.error import BadRequestError, NonDeterministicError
from cadenza.registry import Registry
from cadenza.replay import LocalActivityRequest, workflow_info_from_started
from cadenza.replay.history import DecisionBatch, ParsedHistory, parse_history
from cadenza.replay.instance import WorkflowInstance

__all__ = ["HistorySource", "Replayer", "load_history", "workflow_type_of"]

#: What :meth:`Replayer.replay` and :func:`load_history` accept.
HistorySource: TypeAlias = (
    Sequence[HistoryEvent]
    | Sequence[Mapping[str, Any]]
    | Mapping[str, Any]
    | str
    | bytes
    | os.PathLike[str]
)

#: Close events each completion decision may have been recorded as. A continue-as-new is also
#: how the engine records a completion or failure of a cron or retried run (Cadence names the
#: cause in ``initiator``: Decider, RetryPolicy or CronSchedule).
_CLOSED_BY: Mapping[DecisionType, frozenset[str]] = {
    DecisionType.CompleteWorkflowExecution: frozenset(
        {
            "WorkflowExecutionCompleted",
            "WorkflowExecutionContinuedAsNew",
            "CompleteWorkflowExecutionFailed",
        }
    ),
    DecisionType.FailWorkflowExecution: frozenset(
        {
            "WorkflowExecutionFailed",
            "WorkflowExecutionContinuedAsNew",
            "FailWorkflowExecutionFailed",
        }
    ),
    DecisionType.CancelWorkflowExecution: frozenset(
        {"WorkflowExecutionCanceled", "CancelWorkflowExecutionFailed"}
    ),
    DecisionType.ContinueAsNewWorkflowExecution: frozenset(
        {"WorkflowExecutionContinuedAsNew", "ContinueAsNewWorkflowExecutionFailed"}
    ),
}
_CONTINUED_BY_INITIATOR: Mapping[str, frozenset[DecisionType]] = {
    "decider": frozenset({DecisionType.ContinueAsNewWorkflowExecution}),
    "retrypolicy": frozenset({DecisionType.FailWorkflowExecution}),
    "cronschedule": frozenset(
        {DecisionType.CompleteWorkflowExecution, DecisionType.FailWorkflowExecution}
    ),
}
_CLOSE_EVENT_TYPES = frozenset(name for names in _CLOSED_BY.values() for name in names)


class Replayer:
    """Replays stored histories of the workflows in ``registry`` against their current code.

    ``registry`` is a :class:`~cadenza.Registry` (its activities, when registered, give the
    result types of activities the workflow awaits with ``result_type=None``, as on a worker)
    or an iterable of workflow classes / definitions. Nothing is executed but workflow code:
    activities, local activities and side effects are read from history.
    """

    def __init__(
        self,
        registry: Registry | Iterable[type | WorkflowDefinition],
        *,
        converter: DataConverter | None = None,
        domain: str = "default",
    ) -> None:
        if not isinstance(registry, Registry):
            workflows = Registry()
            for workflow in registry:
                workflows.register_workflow(workflow)
            registry = workflows
        self._registry = registry
        self._converter: DataConverter = converter or DefaultDataConverter()
        self._domain = domain

    @property
    def registry(self) -> Registry:
        return self._registry

    def replay(
        self,
        history: HistorySource,
        *,
        workflow_type: str | None = None,
        workflow_id: str = "replayed-workflow",
        run_id: str | None = None,
    ) -> None:
        """Check that today's code makes the decisions ``history`` recorded; return if it does.

        ``history`` is a list of :class:`~cadenza.core.HistoryEvent` (what
        ``client.get_workflow_history`` returns), a list of event dicts, JSON text of either
        (a list, or an object with an ``"events"`` list, as ``cadenza workflow show --json``
        writes), or the path of a file holding that JSON. ``workflow_type`` defaults to the
        one WorkflowExecutionStarted names. ``workflow_id`` and ``run_id`` are what
        ``workflow.info()`` reports (history does not record them; the run id defaults to
        the started event's ``original_execution_run_id``, which default child workflow ids
        derive from).

        Raises :class:`~cadenza.error.NonDeterministicError` naming the first event whose
        decision the code no longer makes (or the decision task the code now fails), and
        :class:`~cadenza.error.BadRequestError` for an empty or malformed history or a
        workflow type the registry does not hold.
        """
        events = load_history(history)
        try:
            parsed = parse_history(events)
        except ValueError as error:
            raise BadRequestError(f"cannot replay: {error}", field="history") from None
        name = workflow_type or workflow_type_of(events)
        definition = self._definition(name)
        info = workflow_info_from_started(
            parsed.started,
            domain=self._domain,
            run_id=run_id or str(parsed.started.get("original_execution_run_id") or ""),
            workflow_id=workflow_id,
            converter=self._converter,
        )
        instance = _ReplayInstance(
            definition,
            info=info,
            converter=self._converter,
            lookup_activity=self._lookup_activity,
            local_activity_runner=_refuse_local_activity,
        )
        try:
            _replay_batches(instance, parsed, name)
        finally:
            instance.close()

    #: The spelling of other clients' replayers.
    replay_workflow_history = replay

    def _definition(self, name: str) -> WorkflowDefinition:
        try:
            return self._registry.get_workflow(name)
        except KeyError:
            known = ", ".join(sorted(self._registry.workflows)) or "none"
            raise BadRequestError(
                f"cannot replay: workflow type {name!r} is not in the registry (registered: "
                f"{known}); pass workflow_type= if the history was recorded under another name",
                field="workflow_type",
            ) from None

    def _lookup_activity(self, name: str) -> Any:
        # Unlike a worker's, a replayer's registry rarely holds the activities: an unknown one
        # only means "decode its result as plain JSON", never an error in workflow code.
        return self._registry.activities.get(name)


def load_history(source: HistorySource) -> list[HistoryEvent]:
    """The events of ``source`` (events, event dicts, JSON text or a JSON file path).

    Raises :class:`~cadenza.error.BadRequestError` when the JSON or an event is malformed,
    and ``FileNotFoundError`` for a missing file.
    """
    data: Any = source
    if isinstance(source, bytes):
        data = _parse_json(source.decode("utf-8"), "history")
    elif isinstance(source, str) and source.lstrip()[:1] in ("[", "{"):
        data = _parse_json(source, "history")
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        data = _parse_json(path.read_text(encoding="utf-8"), str(path))
    if isinstance(data, Mapping):
        if "events" not in data:
            raise BadRequestError("a history object must hold an 'events' list", field="history")
        data = data["events"]
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise BadRequestError(
            f"a history is a list of events, not {type(data).__name__}", field="history"
        )
    return [_event(item, index) for index, item in enumerate(data)]


def workflow_type_of(events: Sequence[HistoryEvent]) -> str:
    """The workflow type the first event (WorkflowExecutionStarted) names."""
    if not events or str(events[0].event_type) != "WorkflowExecutionStarted":
        raise BadRequestError(
            "cannot replay: a history must start with WorkflowExecutionStarted", field="history"
        )
    value = events[0].get("workflow_type")
    name = value.get("name") if isinstance(value, Mapping) else value
    if not name:
        raise BadRequestError(
            "cannot replay: WorkflowExecutionStarted names no workflow_type; pass workflow_type=",
            field="workflow_type",
        )
    return str(name)


# --- replay ------------------------------------------------------------------------------------


class _ReplayInstance(WorkflowInstance):
    """A workflow instance that remembers the completion decision its code made.

    The replay engine's match accepts any close event for any completion decision; the
    replayer needs the decision itself to compare how the run closed.
    """

    completion: Decision | None = None

    def _completion_decision(self, main: Any) -> Decision:
        decision = super()._completion_decision(main)
        self.completion = decision
        return decision


def _replay_batches(instance: _ReplayInstance, parsed: ParsedHistory, workflow_type: str) -> None:
    """Re-run every completed decision task as the replay engine does, checking each one."""
    for batch in parsed.batches:
        where = (
            f"workflow {workflow_type!r} is not deterministic in the decision task completed "
            f"by event {batch.completed.event_id}"
        )
        try:
            instance.begin_task(batch.time, replaying=True, batch=batch)
            for event in batch.inputs:
                instance.apply(event)
            instance.run()
            instance.match(batch)
        except NonDeterministicError as error:
            raise NonDeterministicError(f"{where}: {error}{_failure_note(instance)}") from error
        except Exception as error:
            # History says this task completed; code that now raises cannot have made it.
            raise NonDeterministicError(
                f"{where}: the workflow code raised {type(error).__name__}: {error} "
                "(history recorded this decision task as completed)"
            ) from error
        _check_close(instance, batch, where)


def _check_close(instance: _ReplayInstance, batch: DecisionBatch, where: str) -> None:
    decision = instance.completion
    closes = [e for e in batch.decision_events if str(e.event_type) in _CLOSE_EVENT_TYPES]
    if decision is None or not closes:
        return
    event = closes[-1]
    kind = str(event.event_type)
    allowed = kind in _CLOSED_BY.get(decision.decision_type, frozenset())
    if allowed and kind == "WorkflowExecutionContinuedAsNew":
        initiator = str(event.get("initiator") or "").replace("_", "").lower()
        initiator = initiator.removeprefix("continueasnewinitiator")
        allowed = decision.decision_type in _CONTINUED_BY_INITIATOR.get(
            initiator, frozenset(_CLOSED_BY)
        )
    if not allowed:
        raise NonDeterministicError(
            f"{where}: history event {event.event_id} {kind} closed the run, but the workflow "
            f"code now decides {decision.decision_type}{_failure_note(instance)}"
        )


def _failure_note(instance: _ReplayInstance) -> str:
    """Why the code failed the run, when it did: usually the cause of the divergence."""
    decision = instance.completion
    if decision is None or decision.decision_type is not DecisionType.FailWorkflowExecution:
        return ""
    details = str(decision.get("details") or "")
    first_line = details.splitlines()[0] if details else ""
    return f" (the workflow code failed: {decision.get('reason')}: {first_line})"


def _refuse_local_activity(request: LocalActivityRequest) -> Any:
    """Replaying reads local activity results from their markers; running one is a bug."""
    raise NonDeterministicError(
        f"local activity {request.activity_type!r} (#{request.activity_id}) would run during "
        "replay: history holds no marker for it"
    )


# --- parsing -----------------------------------------------------------------------------------


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise BadRequestError(f"{source} is not JSON: {error}", field="history") from None


def _event(item: Any, index: int) -> HistoryEvent:
    if isinstance(item, HistoryEvent):
        return item
    if not isinstance(item, Mapping):
        raise BadRequestError(
            f"history entry {index} is a {type(item).__name__}, not an event object",
            field="history",
        )
    try:
        return HistoryEvent.from_dict(item)
    except (KeyError, TypeError, ValueError) as error:
        described = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise BadRequestError(
            f"history entry {index} (event_id {item.get('event_id')!r}) is not an event in the "
            f"format of HistoryEvent.to_dict (event_id, event_type, timestamp in epoch "
            f"milliseconds, attributes): {described}",
            field="history",
        ) from None
