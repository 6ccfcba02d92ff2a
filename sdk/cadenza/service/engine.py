"""The engine's operations: core transitions + one conditional commit + dispatch of the outbox.

Every operation reads the run's latest batch, asks the pure core for the transition, commits it
with one conditional write and sends the tasks it created. A lost race (CommitConflictError)
re-reads and re-applies; a crash after the commit loses nothing because the tasks are in the
committed item and the stream redrive sends them again (SQS drops the duplicate copy).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .. import core
from ..core import (
    CancelActivityTask,
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
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
from ..core.ids import next_run_id
from ..core.records import ActivityStart, OutgoingMessage, StoredBatch, TaskMessage
from ..core.transitions import check_payload
from ..error import (
    BadRequestError,
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
from .ports import HistoryStore, QueryAnswers, TaskQueues, VisibilityStore
from .requests import ReusePolicy, StartWorkflowRequest, check_domain
from .tokens import TaskToken, TaskTokens

T = TypeVar("T")

logger = logging.getLogger("cadenza.service")

#: How often a lost race is retried before the caller is told the run is busy. Races are
#: normal when many activities of one run finish together; each retry waits a little longer.
MAX_CONFLICT_RETRIES = 25
#: Longest a result or history call waits for the run to close, per request (API Gateway's
#: integration timeout is 30 s; clients repeat the call).
MAX_WAIT_SECONDS = 25.0

_FAILED_STATES = {
    RunStatus.FAILED,
    RunStatus.CANCELED,
    RunStatus.TERMINATED,
    RunStatus.TIMED_OUT,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


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

    # --- starting -------------------------------------------------------------------------

    def start_workflow(
        self, request: StartWorkflowRequest, *, signal: SignalWorkflow | None = None
    ) -> str:
        """Start a run; with ``signal``, signal-with-start: signal the running run if there is
        one, else start a new run with the signal recorded before its first decision task."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            latest = self.store.latest(request.domain, request.workflow_id)
            to_terminate: RunState | None = None
            if latest is not None:
                previous = latest.state
                policy = request.workflow_id_reuse_policy
                if previous.is_open and signal is not None:
                    try:
                        self._commit(previous, signal)
                    except CommitConflictError:
                        self._back_off(attempt)
                        continue
                    return previous.run_id
                if previous.is_open:
                    if policy is not ReusePolicy.TERMINATE_IF_RUNNING:
                        raise WorkflowExecutionAlreadyStartedError(
                            f"workflow {request.workflow_id!r} is already running",
                            run_id=previous.run_id,
                        )
                    to_terminate = previous
                elif policy is ReusePolicy.REJECT_DUPLICATE or (
                    policy is ReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
                    and previous.status not in _FAILED_STATES
                ):
                    raise WorkflowExecutionAlreadyStartedError(
                        f"workflow {request.workflow_id!r} already ran "
                        f"(run {previous.run_id}, {previous.status}) and the reuse policy "
                        f"{policy.value} refuses another run",
                        run_id=previous.run_id,
                    )
            run_id = next_run_id(
                request.domain, request.workflow_id, latest.run_id if latest else None
            )
            now = self.clock()
            transition = core.start(
                StartWorkflow(
                    domain=request.domain,
                    workflow_id=request.workflow_id,
                    run_id=run_id,
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
                ),
                now=now,
                signal=signal,
            )
            try:
                if to_terminate is None:
                    batches = [self.store.append(transition, committed_at=to_millis(now))]
                else:
                    terminated = core.apply(
                        to_terminate,
                        TerminateWorkflow(
                            reason="terminated by a start with TerminateIfRunning",
                            identity=request.identity,
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

    def get_result(
        self, domain: str, workflow_id: str, run_id: str = "", *, wait_seconds: float = 0.0
    ) -> RunResult:
        """The run's close status and attributes; OPEN when it did not close in time."""
        state = self.latest(domain, workflow_id, run_id).state
        if state.is_open and wait_seconds > 0:
            state = self._wait_closed(state, wait_seconds)
        return RunResult(state.run_id, state.status, dict(state.close_attributes or {}))

    def _wait_closed(self, state: RunState, wait_seconds: float) -> RunState:
        closed = self._poll(
            lambda: self.latest(state.domain, state.workflow_id, state.run_id).state,
            lambda latest: not latest.is_open,
            seconds=wait_seconds, first_delay=0.1, most_delay=1.0,
        )
        return closed if closed is not None else state

    def _poll(
        self,
        read: Callable[[], T],
        ready: Callable[[T], bool],
        *,
        seconds: float,
        first_delay: float,
        most_delay: float,
    ) -> T | None:
        """Read until ``ready`` or ``seconds`` (at most MAX_WAIT_SECONDS) pass, backing off:
        the long polls of result, history and query calls. The last read, or None if none was
        ready."""
        deadline = time.monotonic() + min(max(seconds, 0.0), MAX_WAIT_SECONDS)
        delay = first_delay
        while True:
            value = read()
            if ready(value):
                return value
            if time.monotonic() >= deadline:
                return None
            self.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, most_delay)

    def list_workflows(
        self,
        domain: str,
        *,
        open_runs: bool,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        check_domain(domain)
        if not 0 < page_size <= 1000:
            raise BadRequestError("page_size must be between 1 and 1000", field="page_size")
        records, token = self.visibility.list(
            domain,
            open_runs=open_runs,
            workflow_type=workflow_type,
            workflow_id=workflow_id,
            page_size=page_size,
            page_token=page_token,
        )
        return [asdict(record) for record in records], token

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
    ) -> None:
        self._update(
            domain, workflow_id, run_id,
            TerminateWorkflow(reason=reason, details=details, identity=identity),
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
    ) -> None:
        token = self._token(task_token, TaskKind.DECISION)
        self._update(
            token.domain, token.workflow_id, token.run_id,
            CompleteDecisionTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                history_length=history_length,
                started_at=started_at,
                decisions=tuple(decisions),
                identity=identity,
                binary_checksum=binary_checksum,
            ),
        )

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
        self, task_token: str, *, result: str | None, identity: str = ""
    ) -> None:
        token = self._token(task_token, TaskKind.ACTIVITY)
        self._update(
            token.domain, token.workflow_id, token.run_id,
            CompleteActivityTask(
                scheduled_event_id=token.scheduled_event_id,
                attempt=token.attempt,
                result=result,
                identity=identity,
            ),
        )

    def fail_activity_task(
        self, task_token: str, *, reason: str, details: str | None, identity: str = ""
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
            ),
        )

    def start_activity_task(self, task_token: str, *, identity: str = "") -> ActivityStart:
        """Record that a worker took this attempt; ActivityTaskAlreadyStartedError for a copy
        of an attempt that already runs, StaleTaskError for one that no longer exists."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        batch = self._update(
            token.domain, token.workflow_id, token.run_id,
            StartActivityTask(scheduled_event_id=token.scheduled_event_id, attempt=token.attempt,
                              identity=identity),
        )
        assert batch is not None
        pending = batch.state.activity(token.scheduled_event_id)
        assert pending is not None and pending.started_time is not None
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
        self, task_token: str, *, details: str | None = None, identity: str = ""
    ) -> None:
        """The activity acknowledged its cancellation: ActivityTaskCanceled with its details."""
        token = self._token(task_token, TaskKind.ACTIVITY)
        self._update(
            token.domain, token.workflow_id, token.run_id,
            CancelActivityTask(scheduled_event_id=token.scheduled_event_id,
                               attempt=token.attempt, details=details, identity=identity),
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
        for attempt in range(MAX_CONFLICT_RETRIES):
            state = self.latest(domain, workflow_id, run_id).state
            try:
                return self._commit(state, command)
            except CommitConflictError:
                self._back_off(attempt)
        raise ServiceBusyError("the run is changing too fast; try again")

    def _back_off(self, attempt: int) -> None:
        """Jittered pause after a lost race, so the writers of one run stop colliding."""
        self.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.25)))

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

    def _after(self, batch: StoredBatch) -> None:
        if self.after_commit is not None:
            self.after_commit(batch)
        try:
            self.dispatch(batch.tasks)
        except Exception:  # the commit stands; the stream redrive sends the tasks
            logger.exception("dispatch after commit failed; the redrive will deliver the tasks")

    def messages(self, tasks: Iterable[Task]) -> list[OutgoingMessage]:
        return [
            OutgoingMessage(task=task, body=TaskMessage(task, self.tokens.issue(task)).encode())
            for task in tasks
        ]

    def dispatch(self, tasks: Sequence[Task]) -> None:
        if tasks:
            self.queues.send(self.messages(tasks))

    def on_committed(self, batch: StoredBatch) -> None:
        """What the history stream does with every new batch: redrive and visibility."""
        self.dispatch(batch.tasks)
        state = batch.state
        starts = any(
            e.event_type is core.EventType.WorkflowExecutionStarted for e in batch.events
        )
        if starts or not state.is_open:
            self.visibility.record(state)


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
    }
