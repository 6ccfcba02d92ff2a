"""Benchmarks on the embedded local stack: requests and cost per workflow, latency, throughput,
replay speed. ``python -m bench.run`` prints a Markdown report (also written to bench/RESULTS.md).

Request counts are exact (every botocore call in the process is counted, see meter.py). Times
are what this machine measured against moto, not what AWS would give; they are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cadenza import Client, Registry, Worker, workflow
from cadenza.core import EventType, HistoryEvent
from cadenza.local import LocalStack
from cadenza.replay import run_decision_task
from cadenza.workflow import WorkflowDefinition

from . import mechanisms, prices
from .meter import Meter, metering

registry = Registry()
TIMEOUT = timedelta(seconds=30)


@registry.activity()
async def work(value: int) -> int:
    return value + 1


@registry.workflow()
class OneActivity:
    @workflow.run
    async def run(self, value: int) -> int:
        return await work.with_options(start_to_close_timeout=TIMEOUT).execute(value)


@registry.workflow()
class ManyActivities:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for index in range(count):
            total += await work.with_options(start_to_close_timeout=TIMEOUT).execute(index)
        return total


# List prices (USD per million requests/units), from the versioned table in bench/prices.py.
# This section's figures cost every SQS request at the FIFO price (the task-list queues'; the
# timer queue is standard and a little cheaper: bench/floor.py prices each queue by its type).
PRICE = {
    "dynamodb_write_unit": prices.CURRENT.dynamodb_write_unit,
    "dynamodb_read_unit": prices.CURRENT.dynamodb_read_unit,
    "sqs_fifo_request": prices.CURRENT.sqs_fifo_request,
    "http_api_request": prices.CURRENT.http_api_request,
    "lambda_request": prices.CURRENT.lambda_request,
    # 512 MB for ~50 ms per invocation at $0.0000166667 per GB-second.
    "lambda_duration": prices.CURRENT.lambda_memory_gb * 0.05 * prices.CURRENT.lambda_gb_second,
}

BILLED_ELSEWHERE = {"dynamodbstreams"}  # stream reads by Lambda's event source are free
#: Requests the local runtime makes to emulate EventBridge Scheduler (moto never fires schedules).
EMULATION = {"scheduler:ListSchedules", "scheduler:GetSchedule", "scheduler:DeleteSchedule"}


async def per_workflow(stack: LocalStack, meter: Meter, runs: int) -> tuple[Counter[str], int]:
    task_list = f"bench-{uuid.uuid4().hex[:6]}"
    async with Client(target=stack.api_url) as client, Worker(
        client, task_list, registry
    ):
        warm = await client.start_workflow(OneActivity, 0, task_list=task_list,
                                           execution_start_to_close_timeout=TIMEOUT)
        await client.get_workflow_result(warm.workflow_id, timeout=TIMEOUT)
        await asyncio.sleep(1.0)  # let the stream consumer finish with the warm-up
        before = meter.snapshot()
        for index in range(runs):
            execution = await client.start_workflow(
                OneActivity, index, task_list=task_list, execution_start_to_close_timeout=TIMEOUT
            )
            await client.get_workflow_result(execution.workflow_id, timeout=TIMEOUT)
        await asyncio.sleep(1.5)  # stream redrive and visibility writes are asynchronous
        after = meter.snapshot()
    delta = after - before
    history = await _history_length(stack, execution.workflow_id)
    return delta, history


async def _history_length(stack: LocalStack, workflow_id: str) -> int:
    async with Client(target=stack.api_url) as client:
        return len(await client.get_workflow_history(workflow_id))


async def latency(stack: LocalStack, runs: int, concurrency: int) -> dict[str, float]:
    task_list = f"lat-{uuid.uuid4().hex[:6]}"
    async with Client(target=stack.api_url) as client, Worker(
        client, task_list, registry,
        max_concurrent_activity_execution_size=concurrency,
        max_concurrent_decision_task_execution_size=concurrency,
    ):
        gate = asyncio.Semaphore(concurrency)
        durations: list[float] = []

        async def one(index: int) -> None:
            async with gate:
                began = time.perf_counter()
                execution = await client.start_workflow(
                    OneActivity, index, task_list=task_list,
                    execution_start_to_close_timeout=timedelta(minutes=5),
                )
                await client.get_workflow_result(execution.workflow_id,
                                                 timeout=timedelta(minutes=5))
                durations.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(runs)))
        elapsed = time.perf_counter() - began
    durations.sort()

    def pct(p: float) -> float:
        return durations[min(len(durations) - 1, int(p * len(durations)))]

    return {"runs": runs, "concurrency": concurrency, "elapsed_s": elapsed,
            "throughput_per_s": runs / elapsed, "p50_s": pct(0.50), "p95_s": pct(0.95),
            "p99_s": pct(0.99), "mean_s": statistics.fmean(durations)}


def replay_speed(activities: int, repeats: int) -> dict[str, float]:
    """Replays a history of ``activities`` sequential activities and a pending decision."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[HistoryEvent] = []

    def add(kind: EventType, **attributes: object) -> int:
        events.append(HistoryEvent(len(events) + 1, kind, t0, attributes))
        return len(events)

    add(EventType.WorkflowExecutionStarted, workflow_type="ManyActivities", task_list="t",
        input=str(activities), execution_start_to_close_timeout_seconds=3600,
        task_start_to_close_timeout_seconds=10)
    scheduled = add(EventType.DecisionTaskScheduled, task_list="t", attempt=0)
    for index in range(activities):
        started = add(EventType.DecisionTaskStarted, scheduled_event_id=scheduled)
        completed = add(EventType.DecisionTaskCompleted, scheduled_event_id=scheduled,
                        started_event_id=started)
        activity = add(EventType.ActivityTaskScheduled, activity_id=str(index),
                       activity_type="work", task_list="t", input=str(index),
                       start_to_close_timeout_seconds=30,
                       decision_task_completed_event_id=completed)
        act_started = add(EventType.ActivityTaskStarted, scheduled_event_id=activity, attempt=0)
        add(EventType.ActivityTaskCompleted, scheduled_event_id=activity,
            started_event_id=act_started, result=str(index + 1))
        scheduled = add(EventType.DecisionTaskScheduled, task_list="t", attempt=0)
    definition = WorkflowDefinition.of(ManyActivities)
    began = time.perf_counter()
    for _ in range(repeats):
        result = run_decision_task(definition, events, started_at=t0, workflow_id="w",
                                   run_id="r")
    elapsed = (time.perf_counter() - began) / repeats
    assert result.decisions[0].decision_type == "CompleteWorkflowExecution"
    return {"events": len(events), "replay_ms": elapsed * 1000,
            "events_per_s": len(events) / elapsed}


def cost_per_million(delta: Counter[str], runs: int) -> dict[str, float]:
    per = {key: value / runs for key, value in delta.items()}
    sqs = sum(v for k, v in per.items() if k.startswith("sqs:") and "(empty)" not in k)
    reads = sum(v for k, v in per.items() if k in {"dynamodb:Query", "dynamodb:GetItem"})
    http = sum(v for k, v in per.items() if k.startswith("http:"))
    storage_writes = per.get("dynamodb:WriteUnits", 0.0)
    engine = (storage_writes * PRICE["dynamodb_write_unit"] + reads * PRICE["dynamodb_read_unit"]
              + sqs * PRICE["sqs_fifo_request"])
    api = http * (PRICE["http_api_request"] + PRICE["lambda_request"] + PRICE["lambda_duration"])
    return {"engine (DynamoDB + SQS)": engine, "HTTP API path (API Gateway + Lambda)": api,
            "total through the HTTP API": engine + api}


def engine_cost(delta: Counter[str], runs: int) -> float:
    billed = Counter({k: v for k, v in delta.items()
                      if k.split(":")[0] not in BILLED_ELSEWHERE and k not in EMULATION})
    return cost_per_million(billed, runs)["engine (DynamoDB + SQS)"]


def report(delta: Counter[str], runs: int, history: int, lat: dict[str, float],
           replay: dict[str, float], mechanisms: list[str]) -> str:
    lines = ["# Cadenza benchmarks", "",
             f"Measured {datetime.now(UTC):%Y-%m-%d} on the embedded local stack (moto server).",
             "", *sections(delta, runs, history, lat, replay, mechanisms)]
    return "\n".join(lines) + "\n"


def sections(delta: Counter[str], runs: int, history: int, lat: dict[str, float] | None,
             replay: dict[str, float] | None, mechanisms: list[str]) -> list[str]:
    """This bench's sections of RESULTS.md (those given), as Markdown lines."""
    lines = [f"## Requests per single-activity workflow ({runs} runs, {history} events each)",
             "", "Run and activity timeouts of 30 s here (delayed messages, sent once, by the "
             "stream's redrive, and only when the redrive's read does not already hold what "
             "makes them moot; deadlines 2 minutes or more ahead would be Scheduler schedules "
             "instead); the standard workflows of *The request floor* use production-like "
             "ones.", "",
             "| request | per workflow |", "|---|---|"]
    for key in sorted(delta):
        service = key.split(":")[0]
        note = " (free: Lambda event source)" if service in BILLED_ELSEWHERE else ""
        note = " (worker idle polling, per worker, not per workflow)" if "(empty)" in key \
            else note
        note = " (local runtime emulating Scheduler, not billed)" if key in EMULATION else note
        lines.append(f"| {key}{note} | {delta[key] / runs:.2f} |")
    lines += ["", "## Cost per million workflows (USD, list prices)", "",
              "| part | USD / million |", "|---|---|"]
    for part, value in cost_per_million(
        Counter({k: v for k, v in delta.items()
                 if k.split(":")[0] not in BILLED_ELSEWHERE and k not in EMULATION}),
        runs,
    ).items():
        lines.append(f"| {part} | {value:.2f} |")
    lines += ["", "Not in the window measured: each timer message the redrive sent for a run "
              "that has closed since (its 30 s execution timeout, an activity deadline whose "
              "activity was still open in the redrive's read) surfaces when due and costs one "
              "more read, plus its share of a batched ReceiveMessage and DeleteMessage by the "
              "timer function's event source. Reads include the client's result wait."]
    if mechanisms:
        lines += ["", *mechanisms]
    if lat is not None:
        lines += ["", "## Latency and throughput (start -> result, one worker)", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in lat.items()]
    if replay is not None:
        lines += ["", "## Replay speed (pure, no I/O)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:,.1f} |" for k, v in replay.items()]
    return lines


async def main_async(runs: int, latency_runs: int, concurrency: int) -> str:
    with metering() as meter, LocalStack(api_port=0) as stack:
        delta, history = await per_workflow(stack, meter, runs)
        lat = await latency(stack, latency_runs, concurrency)
        mechanism_rows = await mechanisms.measure(stack, meter, runs, engine_cost)
    replay = replay_speed(activities=200, repeats=5)
    return report(delta, runs, history, lat, replay, mechanism_rows)


#: Sections of RESULTS.md written by other benches (python -m bench, bench.peers), kept when
#: this one rewrites it.
KEPT_SECTIONS = ("## Targets (issue 8)", "## The request floor", "## The engine alone",
                 "## Test environments side by side")


def merge(text: str, previous: str) -> str:
    kept = []
    for heading in KEPT_SECTIONS:
        start = previous.find(heading)
        if start >= 0:
            end = previous.find("\n## ", start + len(heading))
            kept.append(previous[start:end if end >= 0 else len(previous)].rstrip() + "\n")
    return text + ("\n" + "\n".join(kept) if kept else "")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    text = asyncio.run(main_async(args.runs, args.latency_runs, args.concurrency))
    results = Path(__file__).with_name("RESULTS.md")
    results.write_text(merge(text, results.read_text() if results.exists() else ""))
    print(text)


if __name__ == "__main__":
    main()
