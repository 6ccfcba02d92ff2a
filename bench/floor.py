"""The request floor: the six standard workflows on the local stack, every request attributed
(bench/attribution.py), set beside the fewest requests the durability guarantees allow.

``python -m bench.floor [--runs 10]`` prints the section "## The request floor" (``python -m
bench`` writes it into bench/RESULTS.md). Runs go one at a time, so nothing is shared between
workflows (no batched receive, no group commit across runs): the figures and the floor are per
workflow alone. Request counts are exact and carry over to AWS; times are moto's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cadenza import Client, Registry, Worker, activity, workflow
from cadenza.local import LocalStack

from . import prices as price_table
from .attribution import (
    WHERE,
    Ledger,
    Tally,
    stale_schedule_cost,
    stale_timer_cost,
    surfacing_batches,
)
from .meter import metering

registry = Registry()
#: A typical production run timeout, long enough never to fire here: an EventBridge Scheduler
#: schedule (a deadline 2 minutes or more ahead), deleted when the run closes.
RUN_TIMEOUT = timedelta(minutes=10)
#: Activity start-to-close timeout: its deadline timer is due over 5 s after its commit, so it
#: is sent once, by the stream redrive (engine.STREAM_ONLY_TIMER_SECONDS), and then only if the
#: activity is still open in the redrive's read; under 2 minutes, it is no schedule.
ACTIVITY_TIMEOUT = timedelta(seconds=60)
TIMER = timedelta(seconds=5)
RETRY = {"initial_interval": timedelta(seconds=1), "backoff_coefficient": 1.0,
         "maximum_attempts": 3}
TASK_LIST = "floor"
PREFIX = "floor"


@registry.activity()
async def step(value: int) -> int:
    return value + 1


@registry.activity()
async def flaky(value: int) -> int:
    """Fails its first two attempts."""
    if activity.info().attempt < 2:
        raise RuntimeError(f"attempt {activity.info().attempt} fails")
    return value + 1


def _step() -> Any:
    return step.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)


@registry.workflow()
class FloorOne:
    @workflow.run
    async def run(self, value: int) -> int:
        return int(await _step().execute(value))


@registry.workflow()
class FloorTimer:
    @workflow.run
    async def run(self, value: int) -> int:
        result = int(await _step().execute(value))
        await workflow.sleep(TIMER)
        return result


@registry.workflow()
class FloorSequential:
    @workflow.run
    async def run(self, value: int) -> int:
        for _ in range(10):
            value = int(await _step().execute(value))
        return value


@registry.workflow()
class FloorParallel:
    @workflow.run
    async def run(self, value: int) -> int:
        results = await asyncio.gather(*(_step().execute(value + i) for i in range(10)))
        return sum(int(r) for r in results)


@registry.workflow()
class FloorSignal:
    def __init__(self) -> None:
        self.value: int | None = None

    @workflow.signal(name="go")
    def go(self, value: int) -> None:
        self.value = value

    @workflow.run
    async def run(self, value: int) -> int:
        await workflow.wait_condition(lambda: self.value is not None)
        return int(self.value or 0) + value


@registry.workflow()
class FloorRetry:
    @workflow.run
    async def run(self, value: int) -> int:
        return int(await workflow.execute_activity(
            "flaky", int, value, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY))


# --- the floor --------------------------------------------------------------------------------

#: The parts a workflow's bill is made of, in the order the tables list them.
COMPONENTS = (
    "history writes (WRU)",
    "history reads (RRU)",
    "visibility (WRU + RRU)",
    "task-list SQS requests (FIFO)",
    "timer SQS requests (standard)",
    "engine Lambda invocations",
    "Scheduler",
)
ENGINE = COMPONENTS
HTTP = "HTTP API requests (worker + client)"

#: Visibility's floor: a record when the run opens and when it closes, each with the one index
#: entry that lists runs by status (entering it: 1 unit; moving from OPEN to CLOSED: 2), and
#: no read (a condition on the record's version keeps out-of-order writes out).
VISIBILITY_FLOOR = 5.0


@dataclass(frozen=True)
class Floor:
    """The fewest requests one workflow needs, one workflow at a time (nothing batched)."""

    writes: int  # one conditional write of one unit per state change that must be durable
    state_reads: int  # one consistent read of the run's latest commit per change (+ retries)
    history_reads: int  # one Query per decision task that does not come back eagerly
    fifo_tasks: int  # decision/activity tasks that go through SQS: send + receive + delete
    #: Timers, counting once those one commit arms that fall due together (one send request
    #: carries up to ten messages, and they surface in one receive).
    fired_timers: int  # timers that fire: send + receive + delete + a timer invocation
    #: timers that never fire: no billed request (a deadline due 2 minutes or more ahead is a
    #: Scheduler schedule, created and deleted for free; a shorter one needs no message when
    #: the stream read that would send it already holds the close that makes it moot)
    dead_timers: int
    http: int  # HTTP API calls of a polling worker and the client
    argument: str
    #: the client's result wait reads the run once (it is woken by the close, not polling)
    result_reads: int = 1
    #: the history stream's Lambda invocations: the redrive and visibility take a shard's new
    #: records in batches, and a run's commits can all fall in one batch
    stream_invocations: int = 1

    def components(self, prices: price_table.PriceTable = price_table.CURRENT) \
            -> dict[str, tuple[float, float]]:
        """component -> (requests, USD per workflow)."""
        timers = self.fired_timers
        reads = self.state_reads + self.history_reads + self.result_reads
        invocations = self.stream_invocations + timers
        return {
            "history writes (WRU)": (self.writes, self.writes * prices.dynamodb_write_unit),
            "history reads (RRU)": (reads, reads * prices.dynamodb_read_unit),
            "visibility (WRU + RRU)": (2, VISIBILITY_FLOOR * prices.dynamodb_write_unit),
            "task-list SQS requests (FIFO)": (3 * self.fifo_tasks,
                                              3 * self.fifo_tasks * prices.sqs_fifo_request),
            "timer SQS requests (standard)": (3 * timers,
                                              3 * timers * prices.sqs_standard_request),
            "engine Lambda invocations": (invocations, invocations * prices.lambda_request),
            "Scheduler": (0, 0.0),
            HTTP: (self.http, self.http * (prices.http_api_request + prices.lambda_request)),
        }


_COMMON = (
    "Common to all six: one conditional write per durable state change (the version condition "
    "is what makes it safe, so a change cannot be merged into another writer's), each write "
    "preceded by one consistent read of the run's latest commit, since the handler that "
    "applies it (an API Lambda, the timer function) holds no state; one send per task and one "
    "receive and one delete per task consumed; a timer is one delayed message that surfaces "
    "once (the timer function's invocation, its receive and delete, and a read for a timer "
    "that no longer matters). Eager tasks are assumed (the deciding worker gets the activity "
    "it scheduled in the completion's answer, recorded started in the same commit, and the "
    "worker completing an activity gets the decision task back with the new events), and so "
    "is a sticky cache (a decision task that comes by SQS reads only the new events: one "
    "Query). The client's result wait reads the run once and is woken by the close (no "
    "polling). The history stream (redrive and visibility) costs at least one Lambda "
    "invocation per workflow: Lambda takes a shard's new records in batches (of up to 100), "
    "and one run's commits can all fall in one. Timers that never fire (the run's execution "
    "timeout, each activity attempt's deadlines) must be armed durably, and that costs no "
    "billed request: the commit that arms one is its durable record; due 2 minutes or more "
    "ahead it becomes an EventBridge Scheduler schedule (Scheduler bills invocations, not "
    "the calls that create and delete schedules) deleted when the run or activity closes; "
    "due sooner, it needs a message only if its activity is still open when the stream's "
    "redrive reads the commit."
)

FLOORS: dict[str, Floor] = {
    "one": Floor(
        writes=4, state_reads=4, history_reads=1, fifo_tasks=1, fired_timers=0, dead_timers=2,
        http=6,
        argument=(
            "Four durable changes: the start (WorkflowExecutionStarted + DecisionTaskScheduled), "
            "the first decision (ActivityTaskScheduled, and the eager start of the activity on "
            "the deciding worker), the activity's result (+ DecisionTaskScheduled) and the "
            "closing decision. The start reads the workflow id's latest run (the reuse "
            "policy); the others read the run before writing. Only the first decision task "
            "travels by SQS (the client that starts a run is no worker); the second comes "
            "back in the result's answer with its events. Dead timers: the execution timeout "
            "and the activity's deadline. HTTP: start and one result wait; the worker's "
            "history read, two decision completions, one activity completion."),
    ),
    "timer": Floor(
        writes=6, state_reads=6, history_reads=2, fifo_tasks=2, fired_timers=1, dead_timers=2,
        http=8,
        argument=(
            "Six durable changes: start, first decision (activity scheduled and eagerly "
            "started), result, second decision (TimerStarted, handed back eagerly), "
            "TimerFired (the timer function's commit, which schedules a decision) and the "
            "closing decision. The timer's decision task comes by SQS (no worker is in hand "
            "when a timer fires): a second task through the queue and a second, sticky, "
            "history read. The 5 s timer is one delayed message on the timer queue, no "
            "Scheduler call. HTTP: start and one result wait; two history reads, three "
            "decision completions, one activity completion."),
    ),
    "seq10": Floor(
        writes=22, state_reads=22, history_reads=1, fifo_tasks=1, fired_timers=0,
        dead_timers=11, http=24,
        argument=(
            "Twenty-two durable changes: start, eleven decisions (each schedules the next "
            "activity and starts it eagerly; the last closes the run) and ten results. Only "
            "the first decision task travels by SQS; every later one comes back with the "
            "result that caused it. Eleven dead timers: the execution timeout and one "
            "deadline per activity. HTTP: start, result; one history read, eleven decision "
            "completions, ten activity completions."),
    ),
    "par10": Floor(
        writes=13, state_reads=13, history_reads=1, fifo_tasks=1, fired_timers=0,
        dead_timers=2, http=15,
        argument=(
            "Thirteen durable changes: start, the decision that schedules the ten (all "
            "started eagerly on the deciding worker), ten results, each its own commit "
            "(they come from ten independent requests, so the floor does not count on them "
            "landing together), and one closing decision (the results that land while a "
            "decision is pending join it). Group commit can beat this floor when results do "
            "land together. Dead timers: the execution timeout, and the ten deadlines, which "
            "one commit arms and which fall due together (one send request, one receive, one "
            "delete, one invocation, one read between them). HTTP: "
            "start, result; one history read, two decision completions, ten activity "
            "completions."),
    ),
    "signal": Floor(
        writes=4, state_reads=4, history_reads=2, fifo_tasks=2, fired_timers=0, dead_timers=1,
        http=7,
        argument=(
            "Four durable changes: start, the first decision (no command: the code waits, but "
            "DecisionTaskCompleted must be recorded), the signal (+ DecisionTaskScheduled) "
            "and the closing decision. Both decision tasks travel by SQS (the signal comes "
            "from the client, not a worker), the second with a sticky read of the new events "
            "only. One dead timer: the execution timeout. HTTP: start, signal, result; two "
            "history reads, two decision completions."),
    ),
    "retry2": Floor(
        writes=8, state_reads=10, history_reads=1, fifo_tasks=3, fired_timers=2,
        dead_timers=4, http=10,
        argument=(
            "Eight durable changes: start, the first decision (activity scheduled and "
            "eagerly started), two failures (each keeps the attempt count and arms the "
            "retry timer), the starts of attempts 2 and 3 (a retried attempt comes by SQS, "
            "and a started attempt cannot be redone), the result and the closing decision. "
            "Each retry timer fires once and reads the run before dispatching the next "
            "attempt (two more reads; the activity's input can ride in the timer). Tasks "
            "through SQS: the first decision and attempts 2 and 3. Dead timers: the "
            "execution timeout and three attempt deadlines. HTTP: start, result; one history "
            "read, two decision completions, two activity starts, two failures, one "
            "completion."),
    ),
}


# --- the scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    workflow: type
    signal: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("one", "one activity", FloorOne),
    Scenario("timer", "one activity + a 5 s timer", FloorTimer),
    Scenario("seq10", "ten sequential activities", FloorSequential),
    Scenario("par10", "ten parallel activities", FloorParallel),
    Scenario("signal", "a signal (start, one signal, complete)", FloorSignal, signal=True),
    Scenario("retry2", "an activity retried twice (1 s backoff)", FloorRetry),
)


@dataclass
class Measured:
    scenario: Scenario
    runs: int
    per_workflow: dict[tuple[str, str], Tally]
    latencies: list[float] = field(default_factory=list)
    history_length: int = 0
    pending_timers: float = 0.0  # per workflow, projected
    timer_messages: float = 0.0  # per workflow


async def _one(client: Client, scenario: Scenario, index: int, label: str) \
        -> tuple[str, float]:
    began = time.perf_counter()
    run = await client.start_workflow(
        scenario.workflow, index, task_list=TASK_LIST,
        workflow_id=f"{PREFIX}-{label}-{index}-{uuid.uuid4().hex[:8]}",
        execution_start_to_close_timeout=RUN_TIMEOUT)
    if scenario.signal:
        await asyncio.sleep(0.3)  # the first decision is done: the signal finds the run waiting
        await client.signal_workflow(run.workflow_id, "", "go", 1)
    await client.get_workflow_result(run.workflow_id, timeout=timedelta(minutes=2))
    return run.workflow_id, time.perf_counter() - began


def per_workflow(tallies: dict[tuple[str, str], Tally], runs: int) \
        -> dict[tuple[str, str], Tally]:
    result = {}
    for key, tally in tallies.items():
        scaled = Tally()
        scaled.add(tally, 1 / runs)
        result[key] = scaled
    return result


async def run_scenarios(stack: LocalStack, ledger: Ledger, runs: int,
                        scenarios: tuple[Scenario, ...] = SCENARIOS,
                        progress: Callable[[str], None] | None = None,
                        warm_up: bool = True, settle: float = 2.0) -> list[Measured]:
    """Each scenario: one uncounted warm-up run, then ``runs`` runs one after another (without
    the warm-up, the history length reported is that of the last run)."""
    results = []
    warm_ups = []
    async with Client(target=stack.api_url) as client, Worker(client, TASK_LIST, registry):
        for scenario in scenarios:
            if progress:
                progress(f"floor: {scenario.key} x{runs}")
            if warm_up:
                warm_ups.append((await _one(client, scenario, 0, "warmup"))[0])
            latencies = []
            for index in range(runs):
                workflow_id, seconds = await _one(client, scenario, index, scenario.key)
                latencies.append(seconds)
            if not warm_up:
                warm_ups.append(workflow_id)
            results.append(Measured(scenario, runs, {}, latencies))
        await asyncio.sleep(settle)  # the stream's redrive and visibility writes come last
        for measured, example in zip(results, warm_ups, strict=True):
            key = measured.scenario.key
            tallies = ledger.snapshot(key)
            schedules = ledger.pending_schedules(key)
            # A schedule left behind fires alone: its timer surfaces in a batch of its own.
            pending = [*ledger.pending_timers(key),
                       *((-1 - n, fire_at) for n, fire_at in enumerate(schedules))]
            projected = stale_timer_cost(len(pending), surfacing_batches(pending),
                                         ledger.prices)
            for cost_key, tally in [*projected.items(),
                                    *stale_schedule_cost(len(schedules), ledger.prices).items()]:
                if tally.requests:
                    tallies.setdefault(cost_key, Tally()).add(tally)
            measured.per_workflow = per_workflow(tallies, measured.runs)
            measured.pending_timers = len(pending) / measured.runs
            measured.timer_messages = ledger.timer_messages(key) / measured.runs
            # The warm-up run's history (its requests are booked to no scenario).
            measured.history_length = len(await client.get_workflow_history(example))
    return results


# --- grouping and the report ------------------------------------------------------------------


def component_of(where: str, request: str) -> str | None:
    if request.startswith("http:"):
        return HTTP
    if request.startswith("scheduler:"):
        # Calls that create, list or delete schedules are not billed: no component counts them.
        return None if request.endswith("(not billed)") else "Scheduler"
    if request.startswith("lambda:Invoke"):
        return "engine Lambda invocations"
    if request.startswith("sqs:"):
        if "[task list]" in request:
            return "task-list SQS requests (FIFO)"
        if "[timer queue]" in request:
            return "timer SQS requests (standard)"
        return None
    if request.startswith("dynamodb:"):
        if where == "visibility":
            return "visibility (WRU + RRU)"
        if request.startswith(("dynamodb:PutItem", "dynamodb:TransactWriteItems")):
            return "history writes (WRU)"
        return "history reads (RRU)"
    return None


def components(per_workflow: dict[tuple[str, str], Tally]) -> dict[str, Tally]:
    grouped: dict[str, Tally] = {name: Tally() for name in (*COMPONENTS, HTTP)}
    for (where, request), tally in per_workflow.items():
        name = component_of(where, request)
        if name is not None:
            grouped[name].add(tally)
    return grouped


def _units(name: str, tally: Tally) -> float:
    """The figure a component is counted in: billed units for DynamoDB, else requests."""
    if name.startswith("history writes"):
        return tally.write_units
    if name.startswith("history reads"):
        return tally.read_units
    if name.startswith("visibility"):
        return tally.write_units + tally.read_units
    return tally.requests


def engine_usd(grouped: dict[str, Tally]) -> float:
    return sum(grouped[name].usd_m for name in ENGINE)


def requests(grouped: dict[str, Tally], *, http: bool = False) -> float:
    names = (*ENGINE, HTTP) if http else ENGINE
    return sum(grouped[name].requests for name in names)


def floor_requests(floor: Floor, *, http: bool = False) -> float:
    parts = floor.components()
    return sum(parts[name][0] for name in ((*ENGINE, HTTP) if http else ENGINE))


def floor_usd(floor: Floor, *, http: bool = False) -> float:
    parts = floor.components()
    return sum(parts[name][1] for name in ((*ENGINE, HTTP) if http else ENGINE))


def lambda_worker_usd(per_workflow: dict[tuple[str, str], Tally],
                      prices: price_table.PriceTable = price_table.CURRENT) -> float:
    """A Lambda worker instead of a polling one: no HTTP API (the handler calls the service in
    process; the same DynamoDB and SQS requests), one invocation per task-list message, and
    the receives and deletes made by Lambda's event source instead (billed alike)."""
    messages = sum(t.requests for (w, r), t in per_workflow.items()
                   if r == "sqs:ReceiveMessage [task list]")
    return messages * prices.lambda_request


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _ratio(measured: float, floor: float) -> str:
    return f"{measured / floor:.2f}x" if floor else "-"


def _per(measured: Measured, where: str | None, request: str) -> float:
    return sum(t.requests for (w, r), t in measured.per_workflow.items()
               if r == request and (where is None or w == where))


def causes(measured: Measured) -> list[str]:
    """The engine's habits behind the gap, each named only when this run's figures show it."""
    notes = []
    redriven = _per(measured, "stream redrive", "sqs:SendMessageBatch [task list]")
    if redriven:
        notes.append(
            f"the stream redrive sends tasks again that were still pending when it looked "
            f"({_fmt(redriven)} redrive sends per workflow, mostly decision tasks handed back "
            "to a worker that was still deciding them: FIFO deduplication drops the copy, SQS "
            "bills it)")
    starts = _per(measured, None, "http:POST tasks/activity/start")
    if starts:
        notes.append(
            f"activities not started eagerly (a retry, or a worker without a free slot) travel "
            f"through their queue and record their start in a commit of their own "
            f"({_fmt(starts)} starts)")
    history = _per(measured, "history read (decision task)", "dynamodb:Query")
    decisions = _per(measured, None, "http:POST tasks/decision/complete")
    if decisions and history >= 1.5 * decisions:
        notes.append(
            f"decision tasks read more than the new events ({_fmt(history)} Queries for "
            f"{_fmt(decisions)} decision tasks: runs not held by the worker, or held histories "
            "behind another worker's commits)")
    guard = _per(measured, "visibility", "dynamodb:GetItem")
    grouped = components(measured.per_workflow)
    visibility = grouped["visibility (WRU + RRU)"]
    if visibility.write_units > VISIBILITY_FLOOR:
        notes.append(
            f"visibility writes {_fmt(visibility.write_units)} units for two records (the four "
            "indexes, ALL projections, each written when a run opens or closes; two units "
            "for a key that moves from OPEN to CLOSED)"
            + (f" and reads the stored record first ({_fmt(guard)} GetItems)" if guard else ""))
    writes = grouped["history writes (WRU)"]
    if writes.requests and writes.write_units > writes.requests * 1.05:
        notes.append(
            f"commits over 1 KB ({_fmt(writes.write_units)} units for "
            f"{_fmt(writes.requests)} writes): the run's state is rewritten whole in every "
            "commit (an activity's last failure, the digests of up to 128 request ids)")
    floor = FLOORS[measured.scenario.key]
    sends = _per(measured, None, "sqs:SendMessageBatch [timer queue]")
    if measured.timer_messages > floor.fired_timers or sends > floor.fired_timers:
        notes.append(
            f"{_fmt(measured.timer_messages)} timer messages in {_fmt(sends)} send requests "
            f"against {floor.fired_timers} (a deadline due within 2 minutes, such as a 60 s "
            "start-to-close, is a delayed message unless the redrive's read already holds "
            "its activity's close; a timer due within 5 s of its commit is sent right after "
            "it and, unless it fired meanwhile, again by the redrive)")
    polls = _per(measured, "result polling", "dynamodb:Query") + \
        _per(measured, "result polling", "dynamodb:GetItem")
    if polls > floor.result_reads:
        notes.append(
            f"the result wait reads the run {_fmt(polls)} times (woken by a close committed "
            "in its process, it polls meanwhile all the same, since the close may come from "
            "another: one GetItem of the next commit, at growing intervals)")
    return notes


def commit_sizes(results: list[Measured]) -> str:
    """Which workflows' commits all fit one write unit (1 KB), which do not, and by how much."""
    fit, over = [], []
    for measured in results:
        writes = components(measured.per_workflow)["history writes (WRU)"]
        if not writes.requests:
            continue
        if writes.write_units <= writes.requests:
            fit.append(measured.scenario.key)
        else:
            over.append(f"{measured.scenario.key} ({_fmt(writes.write_units)} units for "
                        f"{_fmt(writes.requests)} commits)")
    text = "Commits: " + (f"every commit of {', '.join(fit)} is one write unit (under 1 KB)"
                          if fit else "no workflow's commits all fit one write unit")
    return text + (f"; over 1 KB: {', '.join(over)}." if over else ".")


def gap(measured: Measured) -> list[str]:
    """What makes up the difference to the floor: each component above it, and its sources."""
    floor = FLOORS[measured.scenario.key].components()
    grouped = components(measured.per_workflow)
    parts = []
    for name in COMPONENTS:
        excess = grouped[name].usd_m - floor[name][1]
        if excess < 0.005:
            continue
        sources = sorted(
            ((where, request, tally) for (where, request), tally in measured.per_workflow.items()
             if component_of(where, request) == name and tally.requests),
            key=lambda item: -item[2].usd_m)
        detail = ", ".join(f"{where} {request.split(':', 1)[1]} {_fmt(tally.requests)}"
                           for where, request, tally in sources[:4])
        target = VISIBILITY_FLOOR if name.startswith("visibility") else floor[name][0]
        parts.append(f"{name} {_fmt(_units(name, grouped[name]))} against {_fmt(target)}"
                     f" (+${excess:.2f}/M; {detail})")
    return parts


def excess_by_component(results: list[Measured]) -> list[tuple[float, str]]:
    """USD per million above the floor, summed over the workflows, largest first."""
    totals: dict[str, float] = {}
    for measured in results:
        floor = FLOORS[measured.scenario.key].components()
        grouped = components(measured.per_workflow)
        for name in COMPONENTS:
            totals[name] = totals.get(name, 0.0) + grouped[name].usd_m - floor[name][1]
    return sorted(((value, name) for name, value in totals.items()), reverse=True)


def largest(results: list[Measured]) -> list[str]:
    if not results:
        return []
    ranked = excess_by_component(results)
    measured_total = sum(engine_usd(components(m.per_workflow)) for m in results)
    lines = ["Above the floor, summed over the workflows measured (engine $/M; "
             f"${measured_total:.2f} measured in all):", ""]
    for value, name in ranked:
        if value > 0.005:
            lines.append(f"- {name}: +${value:.2f}")
    http = sum(components(m.per_workflow)[HTTP].usd_m - FLOORS[m.scenario.key].components()
               [HTTP][1] for m in results)
    duration = {m.scenario.key: sum(t.usd_m for (w, r), t in m.per_workflow.items()
                                    if r.endswith("duration")) for m in results}
    worst = max(duration, key=lambda key: duration[key])
    lines += ["", "Outside the engine: a polling worker's and the client's HTTP API calls add "
              f"${http:.2f} above their floor over the same workflows; Lambda duration, in no "
              f"price above, is largest for *{worst}* (${duration[worst]:.2f}/M), most of it "
              "the API function holding the client's result wait open."]
    return lines


def render(results: list[Measured], prices: price_table.PriceTable = price_table.CURRENT,
           idle: dict[tuple[str, str], Tally] | None = None, idle_seconds: float = 0.0) \
        -> list[str]:
    lines = [
        "## The request floor",
        "",
        f"Each standard workflow run {results[0].runs if results else 0} times on the local "
        "stack, one run at a time (after an uncounted warm-up run), with a polling worker "
        "going through the HTTP API. Every request is counted (botocore calls, HTTP API "
        "calls, the local runtime's Lambda invocations) and attributed to its workflow and to "
        "where it goes (bench/attribution.py): figures are per workflow. Run timeout "
        f"{int(RUN_TIMEOUT.total_seconds() // 60)} min, activity start-to-close "
        f"{int(ACTIVITY_TIMEOUT.total_seconds())} s. Timers still delayed when the runs end "
        "(execution timeouts, late deadlines) are added as they will be billed when they "
        "surface stale (the rows *timer firing (projected)*): one read each, and one receive, "
        "one delete and one timer function invocation for each group of up to ten sent in one "
        "request and due in the same second. DynamoDB is counted in "
        "billed units: item sizes, half a unit for an eventually consistent read, two per KB in a "
        "transaction, and the writes of the visibility table's global secondary indexes "
        "(four, ALL projections: a key that moves costs two). Costs are USD per million "
        "workflows at the prices below.",
        "",
        *price_table.table(prices),
        "",
        "### Measured against the floor",
        "",
        "Requests: DynamoDB, SQS and the engine's Lambda invocations (stream and timer "
        "functions) per workflow; the HTTP API column adds the polling worker's and the "
        "client's API calls. Engine $/M is DynamoDB + SQS + engine Lambda (+ Scheduler); "
        "*+ Lambda worker* adds one worker invocation per task received instead of the HTTP "
        "API; *+ HTTP worker* adds API Gateway and an API Lambda invocation per API call.",
        "",
        "| workflow | events | requests | floor | ratio | engine $/M | floor $/M | ratio | "
        "+ Lambda worker $/M | + HTTP worker $/M | HTTP floor $/M | ratio | "
        "p50 start->result ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for measured in results:
        floor = FLOORS[measured.scenario.key]
        grouped = components(measured.per_workflow)
        engine = engine_usd(grouped)
        with_http = engine + grouped[HTTP].usd_m
        lambda_worker = engine + lambda_worker_usd(measured.per_workflow, prices)
        floor_engine = floor_usd(floor)
        floor_http = floor_usd(floor, http=True)
        p50 = statistics.median(measured.latencies) * 1000 if measured.latencies else 0.0
        lines.append(
            f"| {measured.scenario.label} | {measured.history_length or '-'} | "
            f"{_fmt(requests(grouped))} | {_fmt(floor_requests(floor))} | "
            f"{_ratio(requests(grouped), floor_requests(floor))} | {engine:.2f} | "
            f"{floor_engine:.2f} | {_ratio(engine, floor_engine)} | {lambda_worker:.2f} | "
            f"{with_http:.2f} | {floor_http:.2f} | {_ratio(with_http, floor_http)} | "
            f"{p50:.0f} |")
    lines += ["", "### Per component (measured / floor, per workflow)", "",
              "DynamoDB in billed units (WRU, RRU), the rest in requests.", "",
              "| component | " + " | ".join(m.scenario.key for m in results) + " |",
              "|---|" + "---:|" * len(results)]
    for name in (*COMPONENTS, HTTP):
        cells = []
        for measured in results:
            grouped = components(measured.per_workflow)
            floor_value = FLOORS[measured.scenario.key].components()[name][0]
            if name.startswith("visibility"):
                floor_value = VISIBILITY_FLOOR
            cells.append(f"{_fmt(_units(name, grouped[name]))} / {_fmt(floor_value)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", commit_sizes(results)]
    lines += ["", "### Where every request goes (requests per workflow)", "",
              "| where | request | " + " | ".join(m.scenario.key for m in results) + " |",
              "|---|---|" + "---:|" * len(results)]
    keys = sorted({key for m in results for key in m.per_workflow},
                  key=lambda k: (WHERE.index(k[0]) if k[0] in WHERE else len(WHERE), k[1]))
    for where, request in keys:
        if request.endswith("duration"):
            continue
        cells = [_fmt(m.per_workflow.get((where, request), Tally()).requests) for m in results]
        lines.append(f"| {where} | {request} | " + " | ".join(cells) + " |")
    functions = sorted({r for m in results for (w, r) in m.per_workflow
                        if r.endswith("duration")})
    for function in functions:
        gb = [sum(t.gb_seconds for (w, r), t in m.per_workflow.items() if r == function)
              for m in results]
        name = function.removeprefix("lambda:").removesuffix(" duration")
        lines.append(f"| (Lambda duration) | {name}: GB-seconds | "
                     + " | ".join(f"{value:.3f}" for value in gb) + " |")
    total = [sum(t.gb_seconds for (w, r), t in m.per_workflow.items() if r.endswith("duration"))
             for m in results]
    lines.append(f"| (Lambda duration) | all: $/M at {prices.lambda_memory_gb:g} GB, not in "
                 "the figures above | "
                 + " | ".join(f"{value * prices.lambda_gb_second:.2f}" for value in total) + " |")
    lines += [
        "",
        "Lambda duration is not in any $/M above (the target's price list has none): "
        f"${prices.lambda_gb_second:.2f} per million GB-seconds. The API function's share "
        "includes the client's result wait (a long poll held open until the run closes): "
        "at 0.5 GB, about "
        f"${prices.lambda_gb_second * prices.lambda_memory_gb:.2f} per million workflows for "
        "every second a client waits through the API.",
    ]
    if idle is not None and idle_seconds > 0:
        idle_lines = [f"{request} {t.requests / idle_seconds * 3600:,.0f}/h"
                      for (where, request), t in sorted(idle.items()) if t.requests]
        lines += ["", "Requests of no workflow (per hour of this bench, whatever the load: "
                  "idle long polls of the worker and of the timer function's event source, "
                  "stream reads, queue look-ups): " + "; ".join(idle_lines) + "."]
    lines += ["", "### The largest remaining costs", "", *largest(results), "",
              "### The floor, workflow by workflow", "", _COMMON, ""]
    for measured in results:
        floor = FLOORS[measured.scenario.key]
        grouped = components(measured.per_workflow)
        engine = engine_usd(grouped)
        ratio = engine / floor_usd(floor) if floor_usd(floor) else 0.0
        verdict = "within 1.2x of the floor" if ratio <= 1.2 else \
            f"{ratio:.1f}x the floor: not within 1.2x"
        lines += [
            f"**{measured.scenario.label}** (floor {floor.writes} writes, "
            f"{_fmt(floor_requests(floor))} requests, ${floor_usd(floor):.2f}/M; "
            f"measured ${engine:.2f}/M, {verdict}). {floor.argument}",
            "",
        ]
        differences = gap(measured)
        if differences:
            lines += ["What makes up the difference: " + "; ".join(differences) + ".", ""]
        habits = causes(measured)
        if habits:
            lines += ["Why: " + "; ".join(habits) + ".", ""]
    return lines


async def main_async(runs: int) -> str:
    with metering() as meter, LocalStack(api_port=0) as stack:
        ledger = make_ledger(stack)
        with ledger.watch(meter):
            began = time.monotonic()
            results = await run_scenarios(stack, ledger, runs, progress=print)
            idle = ledger.snapshot(None)
            seconds = time.monotonic() - began
    return "\n".join(render(results, idle=idle, idle_seconds=seconds)) + "\n"


def make_ledger(stack: LocalStack) -> Ledger:
    visibility = stack.description.table("VisibilityTable")
    return Ledger(
        history_table=stack.table_name("HistoryTable"),
        visibility_table=visibility.name,
        timer_queue_url=stack.queue_url("TimerQueue"),
        visibility_indexes=[(index.hash_key, index.range_key)
                            for index in visibility.global_indexes],
        prefix=PREFIX,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(asyncio.run(main_async(args.runs)))


if __name__ == "__main__":
    main()
