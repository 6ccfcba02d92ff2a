"""Sticky execution: a workflow instance kept in memory between decision tasks of its run.

A full replay re-runs every completed decision task of a run for each new one, so deciding the
n-th task costs O(n) and reading its history O(n) too. A worker that keeps the instance it just
decided with can, at the next task of that run, apply only what happened since: check that
history recorded the decisions it made (the same check a replay makes), replay the tasks other
workers completed meanwhile, then decide on the new events.

Pure code, like the rest of :mod:`cadenza.replay`: the caller owns the cache and the reads.
Correctness never depends on the instance kept: whenever history is not exactly the
continuation of what the instance saw (its task was decided elsewhere, at another time, or on
other events) or catching up fails in any way, the instance is dropped and the run replayed
from its first event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cadenza._workflow_definition import WorkflowDefinition
from cadenza.core.decisions import Decision
from cadenza.core.events import HistoryEvent
from cadenza.data_converter import DataConverter, DefaultDataConverter
from cadenza.replay.history import DecisionBatch, ParsedHistory, parse_history
from cadenza.replay.instance import LocalActivityRunner, WorkflowInstance

__all__ = ["StickyInstance", "StickyResult", "decide_sticky", "replay_batch"]

logger = logging.getLogger("cadenza.replay")


class StickyInstance:
    """An instance that decided the run's latest task, and what that task saw.

    ``batches_done`` completed decision tasks were replayed (or matched) into the instance;
    the next one history records must be the task it decided live: the same input events, at
    the same start time. ``live_time`` is the time the instance ran the task at, or the start
    history recorded for it once the worker learns it from its completion's answer (the engine
    keeps a worker's clock from running ahead of its own): the instance is then the one whose
    decisions history holds, as a sticky Cadence worker's is, even if code read that clock.
    """

    def __init__(self, instance: WorkflowInstance, *, definition: WorkflowDefinition,
                 batches_done: int, live_inputs: tuple[int, ...], live_time: datetime) -> None:
        self.instance = instance
        self.definition = definition
        self.batches_done = batches_done
        self.live_inputs = live_inputs
        self.live_time = live_time

    def continues(self, parsed: ParsedHistory) -> bool:
        """Whether ``parsed`` recorded this instance's live task as its next completed one."""
        if len(parsed.batches) <= self.batches_done:
            return False
        batch = parsed.batches[self.batches_done]
        return (batch.time == self.live_time
                and tuple(event.event_id for event in batch.inputs) == self.live_inputs)

    def catch_up(self, parsed: ParsedHistory) -> None:
        """Match the live task's decisions against history, then replay the tasks completed
        after it (by other workers). Raises what a replay would (NonDeterministicError ...)."""
        instance = self.instance
        live = parsed.batches[self.batches_done]
        # Markers the live task recorded become known, as a replay of the batch would load them.
        instance.begin_task(live.time, replaying=True, batch=live)
        instance.match_kept(live)
        for batch in parsed.batches[self.batches_done + 1:]:
            replay_batch(instance, batch)
        self.batches_done = len(parsed.batches)

    def close(self) -> None:
        self.instance.close()


@dataclass(frozen=True, slots=True)
class StickyResult:
    decisions: tuple[Decision, ...]
    #: The instance to keep for the run's next task (None: nothing worth keeping).
    sticky: StickyInstance | None
    #: Whether the kept instance was used (False: replayed from the first event).
    hit: bool


def replay_batch(instance: WorkflowInstance, batch: DecisionBatch) -> None:
    """Re-run one completed decision task and check it made the decisions history holds."""
    instance.begin_task(batch.time, replaying=True, batch=batch)
    for event in batch.inputs:
        instance.apply(event)
    instance.run()
    instance.match(batch)


def decide_sticky(
    definition: WorkflowDefinition,
    history: Sequence[HistoryEvent],
    *,
    previous: StickyInstance | None,
    started_at: datetime,
    new_instance: Callable[[ParsedHistory, DataConverter], WorkflowInstance],
    converter: DataConverter | None = None,
    local_activity_runner: LocalActivityRunner | None = None,
) -> StickyResult:
    """The decisions of the task that starts now, from ``previous`` when it continues into
    ``history`` (the run's full history), else from a full replay.

    ``previous`` is consumed: it is either returned (advanced) in the result or closed.
    The instance returned holds the decisions it made until the next call matches them
    against the history that recorded them; a caller whose completion was refused must close
    it instead of keeping it.
    """
    converter = converter or DefaultDataConverter()
    parsed = parse_history(history)
    instance: WorkflowInstance | None = None
    hit = False
    if previous is not None:
        if previous.definition is definition and previous.continues(parsed):
            try:
                previous.catch_up(parsed)
                instance, hit = previous.instance, True
            except Exception as error:  # the full replay below decides what is wrong
                logger.info("sticky instance of %s dropped: %s",
                            previous.instance.info().workflow_id, error)
                previous.close()
        else:
            previous.close()
    if instance is None:
        instance = new_instance(parsed, converter)
        try:
            for batch in parsed.batches:
                replay_batch(instance, batch)
        except BaseException:
            instance.close()
            raise
    keep = False
    try:
        instance.set_local_activity_runner(local_activity_runner)
        if instance.completed or parsed.closed_by_engine:
            return StickyResult((), None, hit)
        instance.begin_task(started_at, replaying=False, batch=None)
        for event in parsed.pending_inputs:
            instance.apply(event)
        instance.run()
        decisions = tuple(instance.take_decisions(keep=True))
        keep = not instance.completed
        sticky = StickyInstance(
            instance, definition=definition, batches_done=len(parsed.batches),
            live_inputs=tuple(event.event_id for event in parsed.pending_inputs),
            live_time=started_at,
        ) if keep else None
        return StickyResult(decisions, sticky, hit)
    finally:
        if not keep:
            instance.set_local_activity_runner(None)
            instance.close()
