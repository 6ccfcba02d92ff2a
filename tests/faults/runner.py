"""One run of a scenario with one fault (or none, to record its calls), and its checks.

The run's user starts the workflow (and signals it) through the HTTP API and, like any caller
whose answer was lost, retries a failed request with the same request id. One polling worker
serves the run's task list; when a fault kills it, it is replaced by a fresh one. The harness
watches the run through its own reads, which are exempt from faults, and when the run closes
(or the bound passes) checks its history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cadenza import Client, Worker
from cadenza.aws.settings import AwsSettings
from cadenza.aws.store import DynamoHistoryStore
from cadenza.core import CLOSE_EVENTS, EventType, HistoryEvent, RunState, RunStatus
from cadenza.data_converter import DefaultDataConverter
from cadenza.error import ServiceError
from cadenza.local import LocalStack

from .harness import Call, Crash, DyingTransport, Fault, Injector, Probe, bypassed, new_tag
from .scenarios import Scenario, Signal

DOMAIN = "default"
#: Longer than any recovery the faults need: a decision task's visibility (10 s), an
#: activity task's (WORKER_OPTIONS), the timer queue's (conftest.py), botocore's retries, and
#: the stream redrive's lag (one shard, processed serially, retrying the batches that the
#: stream-side faults fail) when a run's direct dispatch failed.
RUN_BOUND_SECONDS = 120.0
#: Worker options: an activity's message comes back 5 s after its worker died (the activities
#: are instant; a running one keeps extending it), and a worker stops within 5 s.
WORKER_OPTIONS: dict[str, Any] = {"visibility_timeout_seconds": 5, "shutdown_timeout_seconds": 5}
#: How often the run's user retries a request the API failed (5xx), half a second apart.
REQUEST_ATTEMPTS = 40

_ACTIVITY_OUTCOMES = frozenset({
    EventType.ActivityTaskCompleted, EventType.ActivityTaskFailed,
    EventType.ActivityTaskTimedOut, EventType.ActivityTaskCanceled,
})
_DECISION_ENDS = frozenset({
    EventType.DecisionTaskCompleted, EventType.DecisionTaskFailed,
    EventType.DecisionTaskTimedOut,
})
#: Attributes that name what an event is about: two events of one type must not share them.
_KEYS = ("scheduled_event_id", "started_event_id", "initiated_event_id", "activity_id",
         "timer_id")


@dataclass
class Outcome:
    scenario: str
    fault: Fault | None
    tag: str
    fired: Call | None = None
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restarts: int = 0
    seconds: float = 0.0

    @property
    def label(self) -> str:
        reached = "" if self.fired or self.fault is None else " (not reached)"
        return f"{self.scenario}: {self.fault or 'no fault'}{reached}"


class Runner:
    """Runs scenarios on one local stack; one per test (its reads use their own threads)."""

    def __init__(self, stack: LocalStack, injector: Injector) -> None:
        self.stack = stack
        self.injector = injector
        self.store = DynamoHistoryStore(AwsSettings.from_environment(stack.environment))
        self.scheduler = stack.client("scheduler")
        self.schedule_group = stack.environment.get("CADENZA_SCHEDULE_GROUP", "")
        self._reads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="faults-read")
        self._converter = DefaultDataConverter()
        self._user: Client | None = None

    async def close(self) -> None:
        if self._user is not None:
            await self._user.close()
        self._reads.shutdown(wait=False, cancel_futures=True)

    async def _read(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, lambda: bypassed(function, *args))

    # -- one run

    async def run(self, scenario: Scenario, fault: Fault | None, *,
                  bound: float = RUN_BOUND_SECONDS, fresh_sandboxes: bool = True) -> Outcome:
        tag = new_tag()
        probe = self.injector.open(tag, fault, fresh_sandboxes=fresh_sandboxes)
        outcome = Outcome(scenario.name, fault, tag)
        began = time.monotonic()
        worker: Worker | None = None
        signals: asyncio.Task[None] | None = None
        workflow_id = f"{tag}-wf"
        task_list = f"{tag}-tl"
        try:
            worker = await self._start_worker(probe, scenario, task_list, outcome)
            await self._start(scenario, tag, workflow_id, task_list)
            signals = asyncio.create_task(self._signal(scenario.signals, workflow_id))
            deadline = time.monotonic() + bound
            while True:
                if probe.worker_crashed.is_set():
                    await self._stop_worker(worker)
                    outcome.restarts += 1
                    worker = await self._start_worker(probe, scenario, task_list, outcome)
                state = await self._state(workflow_id)
                if state is not None and not state.is_open:
                    break
                if time.monotonic() > deadline:
                    outcome.problems.append(
                        f"lost task: the run is still open after {bound:.0f} s "
                        f"({await self._describe_open(workflow_id)})")
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(probe.worker_crashed.wait(), 0.25)
            if signals.done() and signals.exception() is not None:
                outcome.problems.append(f"signal failed: {signals.exception()!r}")
            outcome.problems += await self._check(scenario, tag, workflow_id)
        except Exception as error:
            outcome.problems.append(f"the run's user failed: {error!r}")
        finally:
            if signals is not None and not signals.done():
                signals.cancel()
                await asyncio.gather(signals, return_exceptions=True)
            if worker is not None:
                await self._stop_worker(worker)
            self.injector.close(tag)
            outcome.fired = probe.fired
            outcome.calls = list(probe.calls)
            outcome.seconds = time.monotonic() - began
            await self._clean_up(workflow_id, scenario, tag)
        return outcome

    # -- the worker, replaced when it dies

    async def _start_worker(self, probe: Probe, scenario: Scenario, task_list: str,
                            outcome: Outcome) -> Worker:
        while True:
            probe.worker_crashed.clear()
            transport = DyingTransport(self.stack.api_url)
            probe.transport = transport
            client = Client(domain=DOMAIN, target=self.stack.api_url, transport=transport)
            worker = Worker(client, task_list, scenario.registry,
                            **{**WORKER_OPTIONS, **scenario.worker_options})
            try:
                await worker.__aenter__()
            except (Crash, Exception):
                # Died (or failed) while starting: a supervisor starts another one.
                await self._stop_worker(worker)
                outcome.restarts += 1
                await asyncio.sleep(0.5)
                continue
            return worker

    async def _stop_worker(self, worker: Worker) -> None:
        with contextlib.suppress(Crash, Exception):
            await asyncio.wait_for(worker.close(), 30)
        with contextlib.suppress(Crash, Exception):
            await worker.client.close()

    # -- the run's user

    @property
    def user(self) -> Client:
        if self._user is None:
            self._user = Client(domain=DOMAIN, target=self.stack.api_url)
        return self._user

    async def _request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST, retried with the same body (the same request id) while the API fails."""
        for attempt in range(REQUEST_ATTEMPTS):
            try:
                return await self.user.transport.call("POST", path, json=body)
            except ServiceError as error:
                if (error.status < 500 and error.status != 429) or attempt == REQUEST_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def _start(self, scenario: Scenario, tag: str, workflow_id: str, task_list: str) \
            -> None:
        body = self.user._start_body(scenario.workflow, scenario.args(tag), {
            "workflow_id": workflow_id, "task_list": task_list,
            "execution_start_to_close_timeout": timedelta(seconds=300),
        })
        await self._request(f"/api/v1/domains/{DOMAIN}/workflows", body)

    async def _signal(self, signals: Sequence[Signal], workflow_id: str) -> None:
        for signal in signals:
            if signal.after is not None:
                while not any(e.event_type is signal.after
                              for e in await self._events(workflow_id)):
                    await asyncio.sleep(0.2)
            await self._request(f"/api/v1/domains/{DOMAIN}/workflows/{workflow_id}/signal", {
                "run_id": "", "signal_name": signal.name,
                "input": self._converter.to_data(list(signal.args)),
                "identity": "faults", "request_id": f"{workflow_id}:{signal.name}",
            })

    # -- the harness's reads

    async def _state(self, workflow_id: str) -> RunState | None:
        batch = await self._read(self.store.latest, DOMAIN, workflow_id)
        return batch.state if batch is not None else None

    async def _events(self, workflow_id: str) -> list[HistoryEvent]:
        state = await self._state(workflow_id)
        if state is None:
            return []
        return await self._read(
            lambda: list(self.store.all_events(DOMAIN, workflow_id, state.run_id)))

    async def _describe_open(self, workflow_id: str) -> str:
        events = await self._events(workflow_id)
        if not events:
            return "never started"
        return "last events: " + ", ".join(f"{e.event_id} {e.event_type}" for e in events[-3:])

    async def _clean_up(self, workflow_id: str, scenario: Scenario, tag: str) -> None:
        """Delete the run's schedules (a cancelled long timer's): the local runtime reads every
        schedule each second, and hundreds of stale ones would slow the emulator down."""
        if not self.schedule_group:
            return
        ids = [workflow_id] + ([scenario.child_id(tag)] if scenario.child_id else [])
        for each in ids:
            with contextlib.suppress(Exception):
                state = await self._state(each)
                if state is None:
                    continue
                listed = await self._read(lambda run=state.run_id: self.scheduler.list_schedules(
                    GroupName=self.schedule_group, NamePrefix=run))
                for schedule in listed.get("Schedules", []):
                    await self._read(lambda name=schedule["Name"]: self.scheduler.delete_schedule(
                        GroupName=self.schedule_group, Name=name))

    # -- the checks

    async def _check(self, scenario: Scenario, tag: str, workflow_id: str) -> list[str]:
        problems: list[str] = []
        state = await self._state(workflow_id)
        events = await self._events(workflow_id)
        if state is None:
            return ["the run was never started"]
        problems += history_problems(events, "run")
        problems += self._activity_problems(events, workflow_id)
        signaled = Counter(e.get("signal_name") for e in events
                           if e.event_type is EventType.WorkflowExecutionSignaled)
        sent = Counter(signal.name for signal in scenario.signals)
        if state.is_open:
            if signaled - sent:
                problems.append(f"signals recorded {dict(signaled)}, sent {dict(sent)}")
            return problems
        if signaled != sent:
            problems.append(f"signals recorded {dict(signaled)}, sent {dict(sent)}")
        if state.status is not RunStatus.COMPLETED:
            problems.append(f"closed {state.status}: {dict(state.close_attributes or {})}")
        else:
            result = self._converter.from_data(
                (state.close_attributes or {}).get("result"), [object])[0]
            if not scenario.expected(result):
                problems.append(f"result {result!r}, expected {scenario.expected_text}")
        if scenario.child_id is not None:
            child_id = scenario.child_id(tag)
            child = await self._state(child_id)
            child_events = await self._events(child_id)
            if child is None or child.is_open:
                problems.append(f"the child is {'missing' if child is None else 'still open'}")
            problems += history_problems(child_events, "child")
            for kind in (EventType.StartChildWorkflowExecutionInitiated,
                         EventType.ChildWorkflowExecutionStarted,
                         EventType.ChildWorkflowExecutionCompleted):
                count = sum(e.event_type is kind for e in events)
                if count != 1:
                    problems.append(f"parent has {count} {kind}")
        return problems

    def _activity_problems(self, events: Sequence[HistoryEvent], workflow_id: str) -> list[str]:
        """No activity result applied twice, and no activity run more often than attempted."""
        problems = []
        by_id = {e.event_id: e for e in events}
        for scheduled in (e for e in events if e.event_type is EventType.ActivityTaskScheduled):
            activity_id = scheduled.get("activity_id")
            outcomes = [e for e in events if e.event_type in _ACTIVITY_OUTCOMES
                        and e.get("scheduled_event_id") == scheduled.event_id]
            if len(outcomes) > 1:
                problems.append(f"activity {activity_id} has {len(outcomes)} outcomes")
            started = [by_id.get(e.get("started_event_id")) for e in outcomes]
            attempts = 1 + max((int(e.get("attempt") or 0) for e in started if e is not None),
                               default=0)
            executions = self.injector.executions[(workflow_id, activity_id)]
            if executions > attempts:
                problems.append(f"activity {activity_id} ran {executions} times in {attempts} "
                                "attempt(s)")
        return problems


def history_problems(events: Sequence[HistoryEvent], label: str) -> list[str]:
    """Ids dense from 1, one start, one close at the end, no event recorded twice, at most one
    decision task pending at a time."""
    problems = []
    ids = [e.event_id for e in events]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"{label}: event ids are not 1..{len(ids)}: {ids}")
    kinds = Counter(e.event_type for e in events)
    if kinds[EventType.WorkflowExecutionStarted] != 1:
        problems.append(f"{label}: {kinds[EventType.WorkflowExecutionStarted]} starts")
    closes = [e for e in events if e.event_type in CLOSE_EVENTS]
    if len(closes) > 1 or (closes and closes[0] is not events[-1]):
        problems.append(f"{label}: closes {[(e.event_id, str(e.event_type)) for e in closes]}")
    seen: Counter[tuple[Any, ...]] = Counter()
    for event in events:
        key = tuple(event.get(name) for name in _KEYS)
        if any(value is not None for value in key):
            seen[(event.event_type, *key)] += 1
    for key, count in seen.items():
        if count > 1:
            problems.append(f"{label}: {count} x {key[0]} {dict(zip(_KEYS, key[1:], strict=True))}")
    pending = 0
    for event in events:
        if event.event_type is EventType.DecisionTaskScheduled:
            pending += 1
            if pending > 1:
                problems.append(f"{label}: decision task {event.event_id} scheduled while "
                                "another one was pending")
        elif event.event_type in _DECISION_ENDS:
            pending = max(0, pending - 1)
    return problems


def points(calls: Sequence[Call], occurrences: int | None) -> list[tuple[str, int, Call]]:
    """(operation, occurrence, the recorded call) for the first ``occurrences`` of each
    operation a recorded run made (all of them when None), in the order they first came."""
    chosen = []
    for call in calls:
        if occurrences is None or call.occurrence <= occurrences:
            chosen.append((call.operation, call.occurrence, call))
    return chosen
