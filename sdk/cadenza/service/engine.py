"""The engine's operations: core transitions + one conditional commit + dispatch of the outbox.

Every operation reads the run's latest batch, asks the pure core for the transition, commits it
with one conditional write and sends the tasks it created. A lost race (CommitConflictError)
re-reads and re-applies; a crash after the commit loses nothing because the tasks are in the
committed item and the stream redrive sends them again (SQS drops the duplicate copy).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from .. import core
from ..core import (
    CancelActivityTask,
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
    DecisionTask,
    EffectKind,
    EffectTask,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    HistoryEvent,
    QueryTask,
    RecordActivityHeartbeat,
    RequestCancelWorkflow,
    RunState,
    RunStatus,
    SignalWorkflow,
    StartActivityTask,
    StartWorkflow,
    Task,
    TaskKind,
    TerminateWorkflow,
    TimerKind,
    TimerTask,
    activity_task,
    due_retry,
    to_millis,
)
from ..core.commands import (
    RecordChildClosed,
    RecordChildStarted,
    RecordChildStartFailed,
    RecordExternalOutcome,
)
from ..core.ids import next_run_id
from ..core.outbox import still_needed
from ..core.policies import ReusePolicy
from ..core.records import (
    ActivityCompletion,
    ActivityStart,
    DecisionCompletion,
    EagerActivity,
    HandedDecision,
    OutgoingMessage,
    StoredBatch,
    TaskMessage,
)
from ..core.state import ParentRun, request_digest
from ..core.transitions import check_payload
from ..error import (
    BadRequestError,
    CancellationAlreadyRequestedError,
    CommitConflictError,
    EntityNotExistsError,
    QueryFailedError,
    QueryTimeoutError,
    ServiceBusyError,
    StaleTaskError,
    TimerNotDueError,
    WorkflowExecutionAlreadyCompletedError,
    WorkflowExecutionAlreadyStartedError,
)
from .combiner import CommitCombiner, Outcome, RunKey
from .ports import HistoryStore, QueryAnswers, TaskQueues, VisibilityStore
from .requests import StartWorkflowRequest, check_domain
from .tokens import TaskToken, TaskTokens

T = TypeVar("T")

logger = logging.getLogger("cadenza.service")

#: How often a lost race is retried before the caller is told the run is busy. Races are
#: normal when many activities of one run finish together; each retry waits a little longer.
MAX_CONFLICT_RETRIES = 25
#: Timers due at least this long after their commit are sent by the history stream's
#: redrive only, not also right after the commit. The stream delivers a commit to its
#: function in well under a second, plus the event source's batching window (1 s,
#: template.yaml): 5 s leaves room for a slow read and a retry before the timer is due.
STREAM_ONLY_TIMER_SECONDS = 5
#: How long a change of a run keeps retrying lost races (other processes writing the same
#: run; writers in this process share commits instead) before the caller hears "busy".
MAX_BUSY_SECONDS = 10.0
#: Longest a result or history call waits for the run to close, per request (API Gateway's
#: integration timeout is 30 s; clients repeat the call).
MAX_WAIT_SECONDS = 25.0
#: A result wait that no close in this process wakes reads the run's next commit after this
#: pause, then after pauses growing by half up to the most (about a dozen reads in 25 s).
RESULT_POLL_FIRST_SECONDS = 0.25
RESULT_POLL_MOST_SECONDS = 3.0

_FAILED_STATES = {
    RunStatus.FAILED,
    RunStatus.CANCELED,
    RunStatus.TERMINATED,
    RunStatus.TIMED_OUT,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class CloseWait:
    """One result wait: set, with the closed state, by the commit that closes the run."""

    __slots__ = ("closed", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.closed: RunState | None = None


class CloseWaits:
    """The result waits of this process, by run, shared by every service instance in it.

    Process-wide on purpose: the local stack runs each function with its own service in one
    process (the API function waits, a worker's completion through another one commits the
    close), and a Lambda's warm instances are one process each as well.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waits: dict[RunKey, list[CloseWait]] = {}

    def register(self, key: RunKey) -> CloseWait:
        wait = CloseWait()
        with self._lock:
            self._waits.setdefault(key, []).append(wait)
        return wait

    def release(self, key: RunKey, wait: CloseWait) -> None:
        with self._lock:
            waits = self._waits.get(key)
            if waits is not None and wait in waits:
                waits.remove(wait)
                if not waits:
                    del self._waits[key]

    def waiting(self, key: RunKey) -> int:
        with self._lock:
            return len(self._waits.get(key, ()))

    def closed(self, state: RunState) -> None:
        """Wake every wait for ``state``'s run with it (a closed state is final)."""
        with self._lock:
            waits = self._waits.pop((state.domain, state.workflow_id, state.run_id), [])
        for wait in waits:
            wait.closed = state
            wait.event.set()


#: The process's result waits (see CloseWaits).
CLOSE_WAITS = CloseWaits()


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    status: RunStatus
    close_attributes: dict[str, Any]


class WorkflowService:
    def __init__(
        self,
        *,
        store: HistoryStore,
        queues: TaskQueues,
        visibility: VisibilityStore,
        answers: QueryAnswers,
        tokens: TaskTokens,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        after_commit: Callable[[StoredBatch], None] | None = None,
    ) -> None:
        self.store = store
        self.queues = queues
        self.visibility = visibility
        self.answers = answers
        self.tokens = tokens
        self.clock = clock
        self.sleep = sleep
        #: Test hook: runs between the commit and the dispatch (crash injection).
        self.after_commit = after_commit
        self._combiner = CommitCombiner(self._commit_group, self._after)

    # --- starting -------------------------------------------------------------------------

    def start_workflow(
        self, request: StartWorkflowRequest, *, signal: SignalWorkflow | None = None
    ) -> str:
        """Start a run; with ``signal``, signal-with-start: signal the running run if there is
        one, else start a new run with the signal recorded before its first decision task."""
        command = StartWorkflow(
            domain=request.domain,
            workflow_id=request.workflow_id,
            run_id="",
            workflow_type=request.workflow_type,
            task_list=request.task_list,
            input=request.input,
            execution_start_to_close_timeout_seconds=(
                request.execution_start_to_close_timeout_seconds
            ),
            task_start_to_close_timeout_seconds=request.task_start_to_close_timeout_seconds,
            identity=request.identity,
            request_id=request.request_id,
            memo=request.memo,
            search_attributes=request.search_attributes,
            retry_policy=request.retry_policy,
            cron_schedule=request.cron_schedule,
            delay_start_seconds=request.delay_start_seconds,
        )
        return self._start(command, request.workflow_id_reuse_policy, signal=signal)

    def _start(
        self, command: StartWorkflow, policy: ReusePolicy, *, signal: SignalWorkflow | None = None
    ) -> str:
        """Create the workflow id's next run as ``policy`` allows; the new (or same) run id.

        A start whose request id created the latest run is that start again (its answer was
        lost): it answers with that run. A chain caught between a run's continue-as-new and
        the next run's creation is moved on first, so a start never takes the next run's place.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            latest = self.store.latest(command.domain, command.workflow_id)
            to_terminate: RunState | None = None
            if latest is not None:
                previous = latest.state
                if signal is None and command.request_id \
                        and previous.start_request_id == command.request_id:
                    return previous.run_id
                if previous.is_open and signal is not None:
                    try:
                        self._commit(previous, signal)
                    except CommitConflictError:
                        self._back_off(attempt)
                        continue
                    return previous.run_id
                if previous.status is RunStatus.CONTINUED_AS_NEW:
                    self._continue_chain(previous)
                    continue
                if previous.is_open:
                    if policy is not ReusePolicy.TERMINATE_IF_RUNNING:
                        raise WorkflowExecutionAlreadyStartedError(
                            f"workflow {command.workflow_id!r} is already running",
                            run_id=previous.run_id,
                        )
                    to_terminate = previous
                elif policy is ReusePolicy.REJECT_DUPLICATE or (
                    policy is ReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
                    and previous.status not in _FAILED_STATES
                ):
                    raise WorkflowExecutionAlreadyStartedError(
                        f"workflow {command.workflow_id!r} already ran "
                        f"(run {previous.run_id}, {previous.status}) and the reuse policy "
                        f"{policy.value} refuses another run",
                        run_id=previous.run_id,
                    )
            run_id = next_run_id(
                command.domain, command.workflow_id, latest.run_id if latest else None
            )
            now = self.clock()
            transition = core.start(replace(command, run_id=run_id), now=now, signal=signal)
            try:
                if to_terminate is None:
                    batches = [self.store.append(transition, committed_at=to_millis(now))]
                else:
                    terminated = core.apply(
                        to_terminate,
                        TerminateWorkflow(
                            reason="terminated by a start with TerminateIfRunning",
                            identity=command.identity,
                        ),
                        now=now,
                    )
                    batches = self.store.append_together(
                        [terminated, transition], committed_at=to_millis(now)
                    )
            except CommitConflictError:
                self._back_off(attempt)
                continue
            for batch in batches:
                self._after(batch)
            return run_id
        raise ServiceBusyError("the workflow id is changing too fast; try again")

    # --- reading --------------------------------------------------------------------------

    def latest(self, domain: str, workflow_id: str, run_id: str = "") -> StoredBatch:
        check_domain(domain)
        if not workflow_id:
            raise BadRequestError("workflow_id is required", field="workflow_id")
        batch = self.store.latest(domain, workflow_id, run_id)
        if batch is None:
            what = f"run {run_id} of workflow" if run_id else "workflow"
            raise EntityNotExistsError(
                f"{what} {workflow_id!r} does not exist in domain {domain!r}",
                workflow_id=workflow_id,
                run_id=run_id,
            )
        return batch

    def describe_workflow(self, domain: str, workflow_id: str, run_id: str = "") -> dict[str, Any]:
        state = self.latest(domain, workflow_id, run_id).state
        return describe(state)

    def get_history(
        self,
        domain: str,
        workflow_id: str,
        run_id: str = "",
        *,
        page_size: int = 1000,
        page_token: str | None = None,
        wait_for_close_seconds: float = 0.0,
    ) -> tuple[str, list[HistoryEvent], str | None]:
        """(run id, events of one page, next page token)."""
        if page_size <= 0:
            raise BadRequestError("page_size must be greater than 0", field="page_size")
        state = self.latest(domain, workflow_id, run_id).state
        if wait_for_close_seconds > 0 and state.is_open:
            state = self._wait_closed(state, wait_for_close_seconds)
        events, token = self.store.history_pages(
            domain, workflow_id, state.run_id, page_size=page_size, page_token=page_token
        )
        if token is not None and events and events[-1].event_id >= state.next_event_id - 1:
            # The page ends with the last event the state knows of: a token would only lead
            # to an empty page (one more billed request for every reader).
            token = None
        return state.run_id, events, token

    def history_after(
        self, domain: str, workflow_id: str, run_id: str, *, after_version: int = 0,
        page_size: int = 1000,
    ) -> tuple[list[HistoryEvent], int, bool]:
        """A worker's read of a run's history: the events of its commits after
        ``after_version`` (0: from the start), the version of the last commit read, and
        whether more follow (read on from that version). One Query, without the read of the
        run's latest commit a paged history read makes first: a worker holding the history up
        to a commit (sticky execution) reads only the commits after it."""
        check_domain(domain)
        if not workflow_id or not run_id:
            raise BadRequestError("workflow_id and run_id are required", field="run_id")
        if page_size <= 0:
            raise BadRequestError("page_size must be greater than 0", field="page_size")
        if after_version < 0:
            raise BadRequestError("after_version cannot be negative", field="after_version")
        return self.store.events_after(domain, workflow_id, run_id, after_version,
                                       page_size=page_size)

    def get_result(
        self, domain: str, workflow_id: str, run_id: str = "", *, wait_seconds: float = 0.0
    ) -> RunResult:
        """The run's close status and attributes; OPEN when it did not close in time.

        A run that continued as new (continue-as-new, cron, workflow retry) is followed to the
        next run of its chain, as Cadence's clients do: the result is the chain's.
        """
        deadline = time.monotonic() + min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        state = self.latest(domain, workflow_id, run_id).state
        while True:
            remaining = deadline - time.monotonic()
            if state.is_open and remaining > 0:
                state = self._wait_closed(state, remaining)
            if state.status is not RunStatus.CONTINUED_AS_NEW:
                break
            following = self._next_in_chain(state)
            if following is None:
                break
            state = following
        return RunResult(state.run_id, state.status, dict(state.close_attributes or {}))

    def _next_in_chain(self, state: RunState) -> RunState | None:
        """The run that continues ``state``, created here if its effect has not run yet."""
        next_run = str((state.close_attributes or {}).get("new_execution_run_id") or "")
        found = self.store.latest(state.domain, state.workflow_id, next_run)
        if found is None:
            self._continue_chain(state)
            found = self.store.latest(state.domain, state.workflow_id, next_run)
        return found.state if found is not None else None

    def _wait_closed(self, state: RunState, wait_seconds: float) -> RunState:
        """Wait for the run's close. Woken with the closed state itself when any service of
        this process commits it (a local stack runs every function in one process; a Lambda
        may both complete and wait); otherwise found by polling the run's next commit (one
        consistent GetItem of the commit after ``state``, 1 read unit whatever the size of
        the latest one), with a growing interval."""
        key = (state.domain, state.workflow_id, state.run_id)
        wait = CLOSE_WAITS.register(key)
        known = state
        try:
            def read() -> RunState:
                nonlocal known
                if wait.closed is not None:
                    return wait.closed
                following = self.store.read_batch(state.domain, state.workflow_id,
                                                  state.run_id, known.version + 1)
                if following is not None and following.state.is_open:
                    # The run moved on: jump to its newest commit (one Query), poll after it.
                    following = self.latest(state.domain, state.workflow_id, state.run_id)
                if following is not None:
                    known = following.state
                return known

            closed = self._poll(
                read, lambda latest: not latest.is_open,
                seconds=wait_seconds, first_delay=RESULT_POLL_FIRST_SECONDS,
                most_delay=RESULT_POLL_MOST_SECONDS, wake=wait.event, read_first=False,
            )
        finally:
            CLOSE_WAITS.release(key, wait)
        return closed if closed is not None else known

    def _closed_here(self, state: RunState) -> None:
        CLOSE_WAITS.closed(state)

    def _poll(
        self,
        read: Callable[[], T],
        ready: Callable[[T], bool],
        *,
        seconds: float,
        first_delay: float,
        most_delay: float,
        wake: threading.Event | None = None,
        read_first: bool = True,
    ) -> T | None:
        """Read until ``ready`` or ``seconds`` (at most MAX_WAIT_SECONDS) pass, backing off:
        the long polls of result, history and query calls. The last read, or None if none was
        ready. A pause ends early when ``wake`` is set (unless the service was given its own
        ``sleep``, as the in-memory environment gives its virtual clock's). Without
        ``read_first`` the first read follows the first pause (the caller has just read)."""
        deadline = time.monotonic() + min(max(seconds, 0.0), MAX_WAIT_SECONDS)
        delay = first_delay
        while True:
            if read_first:
                value = read()
                if ready(value):
                    return value
            read_first = True
            if time.monotonic() >= deadline:
                return None
            pause = min(delay, max(0.0, deadline - time.monotonic()))
            if wake is not None and self.sleep is time.sleep:
                wake.wait(pause)
            else:
                self.sleep(pause)
            delay = min(delay * 1.5, most_delay)

    def list_workflows(
        self,
        domain: str,
        *,
        query: str = "",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the domain's runs that match the visibility ``query`` (see
        service/visibility_query.py), newest first, and the next page's token (None after the
        last). Pages may be short when predicates filter; every page is reachable."""
        from .visibility_query import parse_query

        check_domain(domain)
        if not 0 < page_size <= 1000:
            raise BadRequestError("page_size must be between 1 and 1000", field="page_size")
        records, token = self.visibility.list(
            domain, parse_query(query), page_size=page_size, page_token=page_token or None,
        )
        return [asdict(record) for record in records], token

    # --- reset ----------------------------------------------------------------------------

    def reset_workflow(
        self, domain: str, workflow_id: str, run_id: str = "", *, decision_finish_event_id: int,
        reason: str = "", identity: str = "", request_id: str = "",
    ) -> str:
        """Start a new run from a run's history up to one of its DecisionTaskCompleted events
        (the code decides again from there; later signals are applied again) and terminate the
        workflow id's open run, in one transaction. The new run's id."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            old = self.latest(domain, workflow_id, run_id).state
            current = self.latest(domain, workflow_id).state
            if request_id and current.start_request_id == request_id:
                return current.run_id  # this reset again: its answer was lost
            events = self._all_events(old)
            completed = next((e for e in events if e.event_id == decision_finish_event_id), None)
            if completed is None \
                    or completed.event_type is not core.EventType.DecisionTaskCompleted:
                what = (f"event {decision_finish_event_id} is {completed.event_type}"
                        if completed is not None else
                        f"run {old.run_id} has no event {decision_finish_event_id}")
                raise BadRequestError(
                    f"a reset needs the id of a DecisionTaskCompleted event; {what}",
                    field="decision_finish_event_id",
                )
            started_id = int(completed.attributes["started_event_id"])
            now = self.clock()
            new_run_id = next_run_id(domain, workflow_id, current.run_id)
            transition = core.runs.reset(
                self._state_before(old, started_id),
                [e for e in events if e.event_id <= started_id],
                [e for e in events if e.event_id > decision_finish_event_id
                 and e.event_type is core.EventType.WorkflowExecutionSignaled],
                new_run_id=new_run_id, reason=reason, identity=identity,
                request_id=request_id, now=now,
            )
            try:
                if current.is_open:
                    terminated = core.apply(current, TerminateWorkflow(
                        reason=f"reset to event {decision_finish_event_id} of run "
                               f"{old.run_id} as run {new_run_id}: {reason}"[:1000],
                        identity=identity), now=now)
                    batches = self.store.append_together([terminated, transition],
                                                         committed_at=to_millis(now))
                else:
                    batches = [self.store.append(transition, committed_at=to_millis(now))]
            except CommitConflictError:
                self._back_off(attempt)
                continue
            for batch in batches:
                self._after(batch)
            return new_run_id
        raise ServiceBusyError("the workflow id is changing too fast; try again")

    def _all_events(self, state: RunState) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        token: str | None = None
        while True:
            page, token = self.store.history_pages(state.domain, state.workflow_id, state.run_id,
                                                   page_token=token)
            events += page
            if token is None:
                return events

    def _state_before(self, state: RunState, event_id: int) -> RunState:
        """The run's state after the last commit before the one that wrote ``event_id``:
        a binary search over commit versions (each stores the state after it)."""
        low, high = 1, state.version  # the commit writing event_id is in [low, high]
        while low < high:
            middle = (low + high) // 2
            batch = self.store.read_batch(state.domain, state.workflow_id, state.run_id, middle)
            if batch is None:  # pragma: no cover - versions are dense
                raise StaleTaskError(f"commit {middle} of run {state.run_id} is missing")
            if batch.state.next_event_id > event_id:
                high = middle
            else:
                low = middle + 1
        before = self.store.read_batch(state.domain, state.workflow_id, state.run_id, low - 1)
        if before is None:
            raise BadRequestError("a run cannot be reset to its first decision task's start",
                                  field="decision_finish_event_id")
        return before.state

    # --- changing a run -------------------------------------------------------------------

    def signal_workflow(
        self,
        domain: str,
        workflow_id: str,
        run_id: str = "",
        *,
        signal_name: str,
        input: str | None = None,
        identity: str = "",
        request_id: str = "",
    ) -> None:
        self._update(
            domain, workflow_id, run_id,
            SignalWorkflow(signal_name=signal_name, input=input, identity=identity,
                           request_id=request_id),
        )

    def query_workflow(
        self,
        domain: str,
        workflow_id: str,
        run_id: str = "",
        *,
        query_type: str,
        query_args: str | None = None,
        wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> str | None:
        """Ask a worker of the workflow's task list to replay the run and answer; nothing is
        committed. QueryFailedError carries the worker's refusal, QueryTimeoutError the silence.
        """
        if not query_type:
            raise BadRequestError("query_type is required", field="query_type")
        check_payload("query_args", query_args)
        state = self.latest(domain, workflow_id, run_id).state
        wait = min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        task = QueryTask(
            domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
            workflow_type=state.workflow_type, task_list=state.task_list,
            query_id=uuid.uuid4().hex, query_type=query_type, query_args=query_args,
            expires_at=to_millis(self.clock()) + int(wait * 1000),
        )
        self.dispatch([task])
        answer = self._poll(
            lambda: self.answers.get(task.query_id), lambda found: found is not None,
            seconds=wait, first_delay=0.05, most_delay=0.5,
        )
        if answer is None:
            raise QueryTimeoutError(
                f"no worker answered query {query_type!r} of workflow {workflow_id!r} "
                f"(task list {state.task_list!r}) in time",
                query_type=query_type, task_list=state.task_list,
            )
        if answer.error is not None:
            raise QueryFailedError(answer.error, query_type=query_type)
        return answer.answer

    def answer_query_task(
        self, task_token: str, *, answer: str | None, error: str | None
    ) -> bool:
        """Record a worker's answer; False when another worker answered first."""
        token = self._token(task_token, TaskKind.QUERY)
        check_payload("answer", answer)
        return self.answers.put(token.query_id, answer=answer, error=error,
                                now=self.clock().timestamp())

    def fire_timer(self, task: TimerTask) -> bool:
        """Fire a timer whose message surfaced; True if it fired.

        Early (SQS delays stop at 15 minutes; an activity's deadline moved with a heartbeat):
        sent again for the time it is due. Stale (fired, cancelled, superseded, run closed or
        gone): dropped. Neither touches history. A retry timer sends the activity's next attempt.
        """
        try:
            if task.timer_kind is TimerKind.ACTIVITY_RETRY:
                self._dispatch_retry(task)
            else:
                self._update(task.domain, task.workflow_id, task.run_id, FireTimer(
                    timer_id=task.timer_id, started_event_id=task.started_event_id,
                    timer_kind=task.timer_kind, attempt=task.attempt, seq=task.seq,
                ))
        except TimerNotDueError as early:
            self.dispatch([task.refire_at(early.fire_at)])
            return False
        except (StaleTaskError, EntityNotExistsError, WorkflowExecutionAlreadyCompletedError):
            return False
        return True

    def _dispatch_retry(self, timer: TimerTask) -> None:
        latest = self.latest(timer.domain, timer.workflow_id, timer.run_id)
        pending = due_retry(latest.state, timer, self.clock())
        scheduled = self.store.read_batch(
            timer.domain, timer.workflow_id, timer.run_id, pending.scheduled_version
        )
        event = next((e for e in scheduled.events if e.event_id == pending.scheduled_event_id),
                     None) if scheduled is not None else None
        if event is None:  # pragma: no cover - the state points at the commit that wrote it
            raise StaleTaskError(f"activity {pending.scheduled_event_id} has no scheduled event")
        self.dispatch([activity_task(latest.state, event, attempt=pending.attempt,
                                     scheduled_time=pending.attempt_scheduled_time)])

    def request_cancel_workflow(
        self,
        domain: str,
        workflow_id: str,
        run_id: str = "",
        *,
        cause: str = "",
        identity: str = "",
        request_id: str = "",
    ) -> None:
        self._update(
            domain, workflow_id, run_id,
            RequestCancelWorkflow(cause=cause, identity=identity, request_id=request_id),
        )

    def terminate_workflow(
        self,
        domain: str,
        workflow_id: str,
        run_id: str = "",
        *,
        reason: str = "",
        details: str | None = None,
        identity: str = "",
        request_id: str = "",
    ) -> None:
        self._update(
            domain, workflow_id, run_id,
            TerminateWorkflow(reason=reason, details=details, identity=identity,
                              request_id=request_id),
        )

    def complete_decision_task(
        self,
        task_token: str,
        *,
        decisions: Sequence[Decision],
        history_length: int,
        started_at: datetime,
        identity: str = "",
        binary_checksum: str = "",
        request_id: str = "",
        eager_activities: int = 0,
        eager_task_list: str = "",
    ) -> DecisionCompletion:
        """Commit the decisions. With ``eager_activities``, up to that many of the activities
        they schedule on ``eager_task_list`` are recorded started for ``identity`` in the same
        commit and come back in the answer, with their tokens, instead of through a queue;
        the same completion retried (``request_id``) answers with the same activities."""
        token = self._token(task_token, TaskKind.DECISION)
        if eager_activities < 0:
            raise BadRequestError("eager_activities cannot be negative", field="eager_activities")
        if eager_activities and not (eager_task_list and request_id):
            raise BadRequestError("eager activities need eager_task_list and request_id",
                                  field="eager_task_list")
        batch = self._update(
            token.domain, token.workflow_id, token.run_id,
            CompleteDecisionTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                history_length=history_length,
                started_at=started_at,
                decisions=tuple(decisions),
                identity=identity,
                binary_checksum=binary_checksum,
                request_id=request_id,
                eager_activities=eager_activities,
                eager_task_list=eager_task_list,
            ),
        )
        events = batch.events if batch is not None else ()
        version = batch.state.version if batch is not None else 0
        if not eager_activities:
            return DecisionCompletion(events=events, version=version)
        return DecisionCompletion(
            activities=tuple(self._eager_activities(token, batch, request_id)),
            events=events, version=version)

    def _eager_activities(self, token: TaskToken, batch: StoredBatch | None,
                          request_id: str) -> list[EagerActivity]:
        """The attempts a decision completion started eagerly, as their worker receives them:
        from its commit, or (a retry that committed nothing) from the run's state, for those
        still running, their ActivityTaskScheduled read from the commit that wrote it."""
        if batch is not None:
            state = batch.state
            scheduled = {e.event_id: e for e in batch.events
                         if e.event_type is core.EventType.ActivityTaskScheduled}
        else:
            state = self.latest(token.domain, token.workflow_id, token.run_id).state
            scheduled = {}
        found = []
        for pending in state.activities:
            if not request_id or pending.eager_request != request_digest(request_id) \
                    or pending.attempt \
                    or pending.started_time is None:
                continue
            event = scheduled.get(pending.scheduled_event_id)
            if event is None:
                origin = self.store.read_batch(state.domain, state.workflow_id, state.run_id,
                                               pending.scheduled_version)
                event = next((e for e in origin.events
                              if e.event_id == pending.scheduled_event_id), None) \
                    if origin is not None else None
                if event is None:  # pragma: no cover - the commit that scheduled it exists
                    continue
            task = activity_task(state, event, attempt=0, scheduled_time=pending.scheduled_time)
            found.append(EagerActivity(
                message=TaskMessage(task, self.tokens.issue(task)),
                start=ActivityStart(attempt=0, heartbeat_details=pending.heartbeat_details,
                                    started_time=pending.started_time),
            ))
        return found

    def fail_decision_task(
        self,
        task_token: str,
        *,
        cause: str,
        details: str | None,
        started_at: datetime,
        identity: str = "",
    ) -> bool:
        """Record a decision task failure; False when it was a repeat failure not written."""
        token = self._token(task_token, TaskKind.DECISION)
        batch = self._update(
            token.domain, token.workflow_id, token.run_id,
            FailDecisionTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                started_at=started_at,
                cause=cause,
                details=details,
                identity=identity,
            ),
        )
        return batch is not None

    def complete_activity_task(
        self, task_token: str, *, result: str | None, identity: str = "", request_id: str = "",
        hand_back_task_list: str = "",
    ) -> ActivityCompletion:
        """Record the activity's result. With ``hand_back_task_list`` (the completing worker
        decides that task list's tasks and has room for one), the decision task the result
        schedules there comes back in the answer, with the commit's events, instead of being
        sent to its queue right after the commit (the stream's redrive still sends it unless
        a later commit shows it consumed, which covers the worker dying with it)."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        if hand_back_task_list and not request_id:
            raise BadRequestError("a decision hand-back needs a request_id",
                                  field="request_id")
        batch = self._update(
            token.domain, token.workflow_id, token.run_id,
            CompleteActivityTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                result=result,
                identity=identity,
                request_id=request_id,
                hand_back_task_list=hand_back_task_list,
            ),
        )
        decision = batch.state.decision if batch is not None else None
        if batch is None or decision is None or not request_id \
                or decision.handed_to != request_digest(request_id):
            return ActivityCompletion()
        task = next(t for t in batch.tasks if isinstance(t, DecisionTask)
                    and t.scheduled_event_id == decision.scheduled_event_id)
        return ActivityCompletion(decision=HandedDecision(
            message=TaskMessage(task, self.tokens.issue(task)), events=batch.events,
            version=batch.state.version))

    def fail_activity_task(
        self, task_token: str, *, reason: str, details: str | None, identity: str = "",
        request_id: str = "",
    ) -> None:
        token = self._token(task_token, TaskKind.ACTIVITY)
        self._update(
            token.domain, token.workflow_id, token.run_id,
            FailActivityTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                reason=reason,
                details=details,
                identity=identity,
                request_id=request_id,
            ),
        )

    def start_activity_task(self, task_token: str, *, identity: str = "",
                            request_id: str = "") -> ActivityStart:
        """Record that a worker took this attempt; ActivityTaskAlreadyStartedError for a copy
        of an attempt that already runs, StaleTaskError for one that no longer exists. The
        same start again (``request_id``) answers as the first one did."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        batch = self._update(
            token.domain, token.workflow_id, token.run_id,
            StartActivityTask(scheduled_event_id=token.scheduled_event_id, attempt=token.attempt,
                              identity=identity, request_id=request_id),
        )
        state = batch.state if batch is not None else self.latest(
            token.domain, token.workflow_id, token.run_id).state
        pending = state.activity(token.scheduled_event_id)
        if pending is None or pending.started_time is None or pending.attempt != token.attempt:
            raise StaleTaskError(f"activity task {token.scheduled_event_id} attempt "
                                 f"{token.attempt} is not running")
        return ActivityStart(attempt=pending.attempt, heartbeat_details=pending.heartbeat_details,
                             started_time=pending.started_time)

    def record_activity_heartbeat(
        self, task_token: str, *, details: str | None = None, identity: str = ""
    ) -> bool:
        """Record progress; True when the activity should stop: its cancellation was
        requested, its run closed, or this attempt is no longer the current one."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        try:
            batch = self._update(
                token.domain, token.workflow_id, token.run_id,
                RecordActivityHeartbeat(scheduled_event_id=token.scheduled_event_id,
                                        attempt=token.attempt, details=details,
                                        identity=identity),
            )
        except (StaleTaskError, WorkflowExecutionAlreadyCompletedError):
            return True
        assert batch is not None
        pending = batch.state.activity(token.scheduled_event_id)
        return pending is None or pending.cancel_requested

    def cancel_activity_task(
        self, task_token: str, *, details: str | None = None, identity: str = "",
        request_id: str = "",
    ) -> None:
        """The activity acknowledged its cancellation: ActivityTaskCanceled with its details."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        self._update(
            token.domain, token.workflow_id, token.run_id,
            CancelActivityTask(scheduled_event_id=token.scheduled_event_id,
                               attempt=token.attempt, details=details, identity=identity,
                               request_id=request_id),
        )

    def _token(self, task_token: str, kind: TaskKind) -> TaskToken:
        if not task_token:
            raise BadRequestError("task_token is required", field="task_token")
        token = self.tokens.read(task_token)
        if token.kind is not kind:
            raise BadRequestError(f"task_token is not a {kind} task token", field="task_token")
        return token

    def _update(
        self, domain: str, workflow_id: str, run_id: str, command: core.Command
    ) -> StoredBatch | None:
        """Commit ``command`` on the run, together with the others this process has for it
        at the same moment (group commit): the batch, or None when it changed nothing."""
        return self._combiner.submit((domain, workflow_id, run_id), command)

    def _commit_group(
        self, key: RunKey, commands: Sequence[core.Command]
    ) -> tuple[StoredBatch | None, list[Outcome]]:
        """Apply the commands to one read of the run and commit them once; a lost race
        re-reads and applies them again, for up to MAX_BUSY_SECONDS."""
        domain, workflow_id, run_id = key
        deadline = time.monotonic() + MAX_BUSY_SECONDS
        for attempt in itertools.count():
            state = self.latest(domain, workflow_id, run_id).state
            if not run_id and state.status is RunStatus.CONTINUED_AS_NEW:
                # The workflow id's current run is the chain's next one, even in the moment
                # before its effect created it.
                state = self._next_in_chain(state) or state
            now = self.clock()
            transition, outcomes = core.apply_all(state, commands, now=now)
            if not transition.changed:
                return None, list(outcomes)
            try:
                return self.store.append(transition, committed_at=to_millis(now)), list(outcomes)
            except CommitConflictError:
                if time.monotonic() >= deadline:
                    break
                self._back_off(attempt)
        raise ServiceBusyError("the run is changing too fast; try again")

    def _back_off(self, attempt: int) -> None:
        """Jittered pause after a lost race, so the writers of one run stop colliding."""
        self.sleep(random.uniform(0, min(0.002 * 2**min(attempt, 16), 0.25)))

    def _commit(self, state: RunState, command: core.Command) -> StoredBatch | None:
        """Apply ``command`` to ``state`` and commit it; CommitConflictError if the run moved."""
        now = self.clock()
        transition = core.apply(state, command, now=now)
        if not transition.changed:
            return None
        batch = self.store.append(transition, committed_at=to_millis(now))
        self._after(batch)
        return batch

    # --- dispatch and redrive -------------------------------------------------------------

    def _after(self, batch: StoredBatch, *, delivered: Iterable[str] = ()) -> None:
        """Dispatch a commit's tasks at once, except what needs no send now:

        - a task the commit's own state shows consumed (an activity recorded started in the
          deciding commit: the worker has it already), or one whose key is in ``delivered``
          (a task handed straight back to the caller, e.g. a decision task returned with an
          activity completion): the redrive still sends the latter if no later commit shows
          it consumed, which covers the caller dying with it;
        - timers due STREAM_ONLY_TIMER_SECONDS or more after the commit: the history stream's
          redrive is then their only send (one message instead of two), well before they are
          due.
        """
        if self.after_commit is not None:
            self.after_commit(batch)
        if not batch.state.is_open:
            self._closed_here(batch.state)
        skip = set(delivered) | handed_back(batch)
        later = batch.committed_at + 1000 * STREAM_ONLY_TIMER_SECONDS
        urgent = [task for task in batch.tasks
                  if task.key not in skip
                  and not (isinstance(task, TimerTask) and task.fire_at >= later)
                  and still_needed(task, batch.state)]
        try:
            self.dispatch(urgent)
        except Exception:  # the commit stands; the stream redrive sends the tasks
            logger.exception("dispatch after commit failed; the redrive will deliver the tasks")

    def messages(self, tasks: Iterable[Task]) -> list[OutgoingMessage]:
        return [
            OutgoingMessage(task=task, body=TaskMessage(task, self.tokens.issue(task)).encode())
            for task in tasks
        ]

    def dispatch(self, tasks: Sequence[Task]) -> None:
        """Send the tasks to their queues, then perform the effects on other runs.

        Every effect is tried even when one fails; the first failure is raised afterwards, so
        the stream consumer retries the batch (effects are idempotent).
        """
        queued = [task for task in tasks if not isinstance(task, EffectTask)]
        if queued:
            self.queues.send(self.messages(queued))
        failure: Exception | None = None
        for task in tasks:
            if isinstance(task, EffectTask):
                try:
                    self.perform(task)
                except Exception as error:
                    logger.warning("effect %s of run %s failed: %s", task.effect, task.run_id,
                                   error)
                    failure = failure or error
        if failure is not None:
            raise failure

    # --- effects on other runs ------------------------------------------------------------

    def perform(self, effect: EffectTask) -> None:
        """Carry out one effect of a commit on another run (or the next run of a chain).

        Safe to repeat: each effect first checks that the source still waits for it, the
        change it makes carries a request id the target recognises, and the outcome it
        reports is checked against the source's pending entry (a repeat is stale).
        """
        _EFFECTS[effect.effect](self, effect)

    def _report(self, domain: str, workflow_id: str, run_id: str, command: core.Command) -> None:
        # Stale: reported already; gone or closed: nobody waits for the report any more.
        with contextlib.suppress(StaleTaskError, EntityNotExistsError,
                                 WorkflowExecutionAlreadyCompletedError):
            self._update(domain, workflow_id, run_id, command)

    def _source(self, effect: EffectTask) -> RunState | None:
        batch = self.store.latest(effect.domain, effect.workflow_id, effect.run_id)
        return batch.state if batch is not None else None

    def _start_child(self, effect: EffectTask) -> None:
        source = self._source(effect)
        child = source.child(effect.event_id) if source is not None else None
        if child is None or child.started:
            return  # its start was reported already
        a = effect.attributes
        command = StartWorkflow(
            domain=effect.target_domain,
            workflow_id=effect.target_workflow_id,
            run_id="",
            workflow_type=str(a["workflow_type"]),
            task_list=str(a["task_list"]),
            input=a.get("input"),
            execution_start_to_close_timeout_seconds=int(
                a["execution_start_to_close_timeout_seconds"]),
            task_start_to_close_timeout_seconds=int(a["task_start_to_close_timeout_seconds"]),
            identity=f"parent {effect.workflow_id}",
            request_id=f"{effect.run_id}:{effect.event_id}",
            memo=a.get("memo"),
            search_attributes=a.get("search_attributes"),
            retry_policy=a.get("retry_policy"),
            cron_schedule=a.get("cron_schedule"),
            parent=ParentRun(effect.domain, effect.workflow_id, effect.run_id, effect.event_id),
        )
        try:
            self._start(command, ReusePolicy.parse(a.get("workflow_id_reuse_policy")))
        except WorkflowExecutionAlreadyStartedError:
            self._report(effect.domain, effect.workflow_id, effect.run_id, RecordChildStartFailed(
                initiated_event_id=effect.event_id, cause="WORKFLOW_ALREADY_RUNNING"))
        except BadRequestError as error:  # e.g. a domain name that cannot exist
            self._report(effect.domain, effect.workflow_id, effect.run_id, RecordChildStartFailed(
                initiated_event_id=effect.event_id, cause=f"BAD_REQUEST: {error.message}"))

    def _report_child_started(self, effect: EffectTask) -> None:
        self._report(effect.target_domain, effect.target_workflow_id, effect.target_run_id,
                     RecordChildStarted(
                         initiated_event_id=int(effect.attributes["initiated_event_id"]),
                         run_id=effect.run_id))

    def _report_child_closed(self, effect: EffectTask) -> None:
        self._report(effect.target_domain, effect.target_workflow_id, effect.target_run_id,
                     RecordChildClosed(
                         initiated_event_id=int(effect.attributes["initiated_event_id"]),
                         run_id=effect.run_id,
                         status=RunStatus(effect.attributes["close_status"]),
                         attributes=effect.attributes))

    def _signal_or_cancel_external(self, effect: EffectTask) -> None:
        source = self._source(effect)
        external = source.external(effect.event_id) if source is not None else None
        if external is None:
            return  # its outcome was recorded already (or the source closed)
        request_id = f"{effect.run_id}:{effect.event_id}"
        cause: str | None = None
        try:
            if external.child_workflow_only:
                target = self.latest(external.domain, external.workflow_id,
                                     external.run_id).state
                if target.parent is None or target.parent.run_id != effect.run_id:
                    raise EntityNotExistsError("the target is not a child of this run")
            command: core.Command = (
                RequestCancelWorkflow(cause="requested by another workflow",
                                      identity=f"workflow {effect.workflow_id}",
                                      request_id=request_id)
                if external.cancel else
                SignalWorkflow(signal_name=external.signal_name,
                               input=effect.attributes.get("input"),
                               identity=f"workflow {effect.workflow_id}", request_id=request_id))
            # The run named, or the workflow id's current run (a chain's next one included).
            self._update(external.domain, external.workflow_id, external.run_id, command)
        except CancellationAlreadyRequestedError:
            pass  # this request, repeated, or an earlier one: the target has it either way
        except (EntityNotExistsError, WorkflowExecutionAlreadyCompletedError):
            cause = "UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION"
        except BadRequestError as error:
            cause = f"BAD_REQUEST: {error.message}"
        self._report(effect.domain, effect.workflow_id, effect.run_id,
                     RecordExternalOutcome(initiated_event_id=effect.event_id, failed_cause=cause))

    def _apply_parent_close_policy(self, effect: EffectTask) -> None:
        batch = self.store.latest(effect.target_domain, effect.target_workflow_id)
        if batch is None:
            return
        child = batch.state
        if not child.is_open or child.parent is None or child.parent.run_id != effect.run_id:
            return  # closed already, or the id now belongs to a run that is not this child
        reason = f"parent {effect.workflow_id} closed (parent close policy)"
        command: core.Command = (
            RequestCancelWorkflow(cause=reason, identity="parent close policy",
                                  request_id=f"{effect.run_id}:close:{effect.target_workflow_id}")
            if effect.attributes.get("parent_close_policy") == "REQUEST_CANCEL"
            else TerminateWorkflow(reason=reason, identity="parent close policy"))
        with contextlib.suppress(CancellationAlreadyRequestedError,
                                 WorkflowExecutionAlreadyCompletedError):
            self._update(child.domain, child.workflow_id, child.run_id, command)

    def _start_next_run(self, effect: EffectTask) -> None:
        source = self._source(effect)
        if source is not None and source.status is RunStatus.CONTINUED_AS_NEW:
            self._continue_chain(source)

    def _continue_chain(self, closed: RunState) -> None:
        """Create the run that continues ``closed``, once: its id is fixed by the close."""
        attributes = closed.close_attributes or {}
        latest = self.store.latest(closed.domain, closed.workflow_id)
        if latest is None or latest.run_id != closed.run_id:
            return  # the next run exists already
        payload = attributes.get("input")
        if attributes.get("same_input"):
            first = self.store.read_batch(closed.domain, closed.workflow_id, closed.run_id, 1)
            payload = first.events[0].get("input") if first is not None and first.events \
                else None
        command = StartWorkflow(
            domain=closed.domain,
            workflow_id=closed.workflow_id,
            run_id=str(attributes["new_execution_run_id"]),
            workflow_type=str(attributes["workflow_type"]),
            task_list=str(attributes["task_list"]),
            input=payload,
            execution_start_to_close_timeout_seconds=int(
                attributes["execution_start_to_close_timeout_seconds"]),
            task_start_to_close_timeout_seconds=int(
                attributes["task_start_to_close_timeout_seconds"]),
            request_id=f"{closed.run_id}:continued",
            memo=closed.memo,
            search_attributes=closed.search_attributes,
            retry_policy=closed.retry_policy,
            cron_schedule=closed.cron_schedule,
            attempt=int(attributes.get("attempt") or 0),
            delay_start_seconds=int(attributes.get("backoff_start_interval_seconds") or 0),
            parent=closed.parent,
            continued_execution_run_id=closed.run_id,
            initiator=str(attributes.get("initiator") or ""),
            first_execution_run_id=closed.first_execution_run_id,
            first_attempt_time=int(attributes.get("first_attempt_time") or 0),
            last_completion_result=attributes.get("last_completion_result"),
            continued_failure_reason=attributes.get("failure_reason"),
            continued_failure_details=attributes.get("failure_details"),
        )
        now = self.clock()
        try:
            stored = self.store.append(core.start(command, now=now), committed_at=to_millis(now))
        except CommitConflictError:
            return  # created meanwhile by another helper of the chain: the same run
        self._after(stored)

    def _still_pending(self, tasks: list[Task]) -> list[Task]:
        """The redrive's last look before sending: each run with a task or timer to send again
        is read once more (one consistent Query, an eighth of a cent per thousand), and what
        its newest commit shows consumed is dropped. Most tasks the redrive sees are in a
        worker's hand (a decision handed back, an eager activity's deadline) and consumed in
        the moment since the commit: a read costs far less than the send, receive, delete and
        wasted history read or stale firing it saves. Effects check their source themselves."""
        runs = {(t.domain, t.workflow_id, t.run_id) for t in tasks
                if not isinstance(t, EffectTask)}
        if not runs:
            return tasks
        newest: dict[RunKey, RunState | None] = {}
        for key in runs:
            try:
                found = self.store.latest(*key)
            except Exception:  # cannot tell: send (the queue drops a copy, a timer is checked)
                logger.warning("redrive: reading run %s failed; sending its tasks", key[2])
                continue
            newest[key] = found.state if found is not None else None
        kept = []
        for task in tasks:
            key = (task.domain, task.workflow_id, task.run_id)
            state = newest.get(key)
            if key in newest and state is not None and not still_needed(task, state):
                continue
            kept.append(task)
        return kept

    def on_committed(self, batch: StoredBatch) -> None:
        """What the history stream does with a new batch: see :meth:`on_committed_all`."""
        self.on_committed_all([batch])

    def on_committed_all(self, batches: Sequence[StoredBatch]) -> None:
        """What the history stream does with the new batches of one stream read (in commit
        order per run): redrive what may not have been delivered, and keep visibility.

        A task that the newest state of its run among ``batches`` shows consumed or moot
        (core.outbox.still_needed) is not sent again; the rest go together (SendMessageBatch
        requests of up to ten per queue). The schedules of timers made moot (a run or an
        activity closed: core.moot_timer_prefixes) are deleted here, and only here: long
        deadlines are created by this redrive alone, so the stream's order puts every delete
        after the create it undoes, and neither costs the request path a call. Each run's
        visibility record is written once, from its newest state, when any of its batches
        starts, upserts or closes it. Everything is tried; the first failure is raised
        afterwards, so the stream retries the batches (every send and write is idempotent).
        """
        newest: dict[RunKey, RunState] = {}
        visible: set[RunKey] = set()
        for batch in batches:
            state = batch.state
            key = (state.domain, state.workflow_id, state.run_id)
            known = newest.get(key)
            if known is None or state.version >= known.version:
                newest[key] = state
            if not state.is_open or any(e.event_type in _VISIBLE_EVENTS for e in batch.events):
                visible.add(key)
        tasks: dict[str, Task] = {}
        moot: dict[str, None] = {}
        for batch in batches:
            state = batch.state
            latest = newest[(state.domain, state.workflow_id, state.run_id)]
            for task in batch.tasks:
                if task.key not in tasks and still_needed(task, latest):
                    tasks[task.key] = task
            moot.update(dict.fromkeys(core.moot_timer_prefixes(state, batch.events)))
        failure: Exception | None = None
        try:
            self.dispatch(self._still_pending(list(tasks.values())))
        except Exception as error:
            failure = error
        try:
            # After the sends, so a deadline created by this read is deleted with the rest.
            # Not retried: a schedule left behind fires stale and is dropped, while a failing
            # read would hold back every later commit of its shard.
            # A run's prefix covers its activities': one listing for a run that closed.
            self.queues.retire_timers([p for p in moot
                                       if not any(p != q and p.startswith(q) for q in moot)])
        except Exception:
            logger.exception("deleting the schedules of moot timers failed; they fire stale")
        for key in visible:
            try:
                self.visibility.record(newest[key])
            except Exception as error:
                logger.warning("visibility record of run %s failed: %s", key[2], error)
                failure = failure or error
        if failure is not None:
            raise failure


#: Events after which the visibility record changes (besides the close).
_VISIBLE_EVENTS = frozenset({
    core.EventType.WorkflowExecutionStarted,
    core.EventType.UpsertWorkflowSearchAttributes,
})

_EFFECTS: dict[EffectKind, Callable[[WorkflowService, EffectTask], None]] = {
    EffectKind.START_CHILD: WorkflowService._start_child,
    EffectKind.REPORT_CHILD_STARTED: WorkflowService._report_child_started,
    EffectKind.REPORT_CHILD_CLOSED: WorkflowService._report_child_closed,
    EffectKind.SIGNAL_EXTERNAL: WorkflowService._signal_or_cancel_external,
    EffectKind.CANCEL_EXTERNAL: WorkflowService._signal_or_cancel_external,
    EffectKind.PARENT_CLOSE_POLICY: WorkflowService._apply_parent_close_policy,
    EffectKind.START_NEXT_RUN: WorkflowService._start_next_run,
}


def handed_back(batch: StoredBatch) -> set[str]:
    """Keys of the commit's decision task when its answer hands it to the activity's worker
    (decision hand-back): the send right after the commit skips it; the redrive does not."""
    decision = batch.state.decision
    if decision is None or not decision.handed_to:
        return set()
    return {task.key for task in batch.tasks if isinstance(task, DecisionTask)
            and task.scheduled_event_id == decision.scheduled_event_id}


def describe(state: RunState) -> dict[str, Any]:
    return {
        "domain": state.domain,
        "workflow_id": state.workflow_id,
        "run_id": state.run_id,
        "workflow_type": state.workflow_type,
        "task_list": state.task_list,
        "status": str(state.status),
        "start_time": state.start_time,
        "close_time": state.close_time,
        "history_length": state.next_event_id - 1,
        "execution_start_to_close_timeout_seconds": state.execution_start_to_close_timeout_seconds,
        "task_start_to_close_timeout_seconds": state.task_start_to_close_timeout_seconds,
        "pending_decision": (
            {
                "scheduled_event_id": state.decision.scheduled_event_id,
                "attempt": state.decision.attempt,
            }
            if state.decision
            else None
        ),
        "pending_activities": [
            {
                "activity_id": a.activity_id,
                "activity_type": a.activity_type,
                "scheduled_event_id": a.scheduled_event_id,
                "attempt": a.attempt,
                "task_list": a.task_list,
                "state": "STARTED" if a.started else "SCHEDULED",
                "scheduled_time": a.scheduled_time,
                "started_time": a.started_time,
                "last_heartbeat_time": a.last_heartbeat_time,
                "heartbeat_details": a.heartbeat_details,
                "last_failure_reason": a.last_failure_reason,
                "cancel_requested": a.cancel_requested,
                "schedule_to_close_timeout_seconds": a.schedule_to_close_timeout_seconds,
                "schedule_to_start_timeout_seconds": a.schedule_to_start_timeout_seconds,
                "start_to_close_timeout_seconds": a.start_to_close_timeout_seconds,
                "heartbeat_timeout_seconds": a.heartbeat_timeout_seconds,
            }
            for a in state.activities
        ],
        "memo": dict(state.memo) if state.memo else None,
        "search_attributes": dict(state.search_attributes) if state.search_attributes else None,
        "attempt": state.attempt,
        "cron_schedule": state.cron_schedule,
        "first_execution_run_id": state.first_execution_run_id,
        "new_execution_run_id": (state.close_attributes or {}).get("new_execution_run_id"),
        "execution_delay_seconds": state.backoff_seconds,
        "parent": (
            {"domain": state.parent.domain, "workflow_id": state.parent.workflow_id,
             "run_id": state.parent.run_id}
            if state.parent else None
        ),
        "pending_children": [
            {"workflow_id": c.workflow_id, "run_id": c.run_id, "workflow_type": c.workflow_type,
             "initiated_event_id": c.initiated_event_id,
             "parent_close_policy": c.parent_close_policy}
            for c in state.children
        ] if state.is_open else [],
    }
