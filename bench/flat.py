"""Does the local stack stay fast as it fills? Throughput and start -> result with 10, 1,000 and
10,000 runs stored.

Running 10,000 workflows to fill the tables would take longer than the whole bench may, so the
stored runs are written straight into the emulator's tables, in exactly the items the engine
writes: each run is the pure core's start transition and a termination (a closed run of two
history batches, encoded by the store's own ``encode_batch``) and the visibility record the
visibility store writes for it (``DynamoVisibilityStore.record`` on a client that keeps the
item instead of sending it). They go in with ``LocalStack.import_items``, as DynamoDB's import
does: no stream records, so the stream function does not work through 20,000 old commits while
the figures are taken.

At each level, once what the level before left in flight has settled: ``singles``
one-activity workflows started one at a time, then ``runs`` at ``concurrency``, with one worker
in a process of its own (``python -m bench.flat worker``; the client and the stack are in this
one, as a deployed worker is a process apart from the engine).
``python -m bench.flat`` prints the figures; ``python -m bench`` runs it and writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from cadenza import Client, Worker
from cadenza.aws.store import encode_batch
from cadenza.aws.visibility import DynamoVisibilityStore
from cadenza.core import transitions
from cadenza.core.commands import StartWorkflow, TerminateWorkflow
from cadenza.local import LocalStack

from . import run

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (10, 1_000, 10_000)
#: How long the worker process may take to connect.
WORKER_READY_SECONDS = 60.0


# --- stored runs, as the engine writes them --------------------------------------------------


class _KeptItems:
    """A DynamoDB client for the visibility store that keeps what it is asked to put."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def get_item(self, **request: Any) -> dict[str, Any]:
        return {}  # nothing stored yet: the store writes a new record

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.items.append(request["Item"])
        return {}


def stored_runs(first: int, last: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(history items, visibility items) of closed one-activity runs ``first``..``last - 1``."""
    typed = TypeSerializer()
    kept = _KeptItems()
    visibility = DynamoVisibilityStore(
        SimpleNamespace(visibility_table="-", retention_days=None),  # type: ignore[arg-type]
        client=kept)
    history: list[dict[str, Any]] = []
    began = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(first, last):
        now = began + timedelta(seconds=index)
        opened = transitions.start(StartWorkflow(
            domain="default", workflow_id=f"stored-{index:06d}", run_id=str(uuid.uuid4()),
            workflow_type="OneActivity", task_list="stored", input=json.dumps(index),
            execution_start_to_close_timeout_seconds=300, task_start_to_close_timeout_seconds=10,
            identity="bench.flat", request_id=str(uuid.uuid4()),
        ), now=now)
        closed = transitions.apply(opened.state, TerminateWorkflow(reason="stored by bench.flat"),
                                   now=now + timedelta(milliseconds=200))
        for transition, at in ((opened, now), (closed, now + timedelta(milliseconds=200))):
            plain = encode_batch(transition, int(at.timestamp() * 1000))
            history.append({name: typed.serialize(value) for name, value in plain.items()})
        visibility.record(closed.state)
    return history, kept.items


def fill(stack: LocalStack, first: int, last: int) -> float:
    """Store runs ``first``..``last - 1``; the seconds it took."""
    began = time.perf_counter()
    for start in range(first, last, 1_000):
        history, visibility = stored_runs(start, min(last, start + 1_000))
        stack.import_items("HistoryTable", history)
        stack.import_items("VisibilityTable", visibility)
    return time.perf_counter() - began


# --- one worker process -------------------------------------------------------------------


async def _serve(api_url: str, task_list: str, concurrency: int) -> None:
    async with Client(target=api_url) as client, Worker(
        client, task_list, run.registry,
        max_concurrent_activity_execution_size=concurrency,
        max_concurrent_decision_task_execution_size=concurrency,
    ):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class WorkerProcess:
    """``python -m bench.flat worker``: runs until its standard input closes."""

    def __init__(self, api_url: str, task_list: str, concurrency: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.flat", "worker", api_url, task_list, str(concurrency)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(WORKER_READY_SECONDS):
                self.stop()
                raise RuntimeError("the bench worker process did not start")
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError(f"the bench worker process said {line!r}")

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the measurement ------------------------------------------------------------------------


async def _workflows(api_url: str, task_list: str, runs: int, concurrency: int,
                     failures: list[str] | None = None) -> tuple[float, list[float]]:
    """(seconds for all, sorted start -> result seconds of each that succeeded); a failed one
    is named in ``failures`` (raised when that is None)."""
    async with Client(target=api_url) as client:
        gate = asyncio.Semaphore(concurrency)
        durations: list[float] = []

        async def one(index: int) -> None:
            async with gate:
                began = time.perf_counter()
                try:
                    execution = await client.start_workflow(
                        run.OneActivity, index, task_list=task_list,
                        execution_start_to_close_timeout=timedelta(minutes=5))
                    await client.get_workflow_result(execution.workflow_id,
                                                     timeout=timedelta(minutes=5))
                except Exception as error:
                    if failures is None:
                        raise
                    failures.append(f"{type(error).__name__}: {error}".splitlines()[0])
                    return
                durations.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(runs)))
        return time.perf_counter() - began, sorted(durations) or [float("nan")]


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))]


async def measure(stack: LocalStack, *, levels: tuple[int, ...] = LEVELS, runs: int = 200,
                  concurrency: int = 50, singles: int = 20, settle: float = 3.0,
                  progress: Any = None) -> list[dict[str, float]]:
    """One row per level: stored runs, throughput, its p50, and the p50 of single runs."""
    task_list = f"flat-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(stack.api_url, task_list, concurrency)
    rows: list[dict[str, float]] = []
    try:
        await _workflows(stack.api_url, task_list, min(10, runs), concurrency)  # warm-up
        stored = ran = 0
        for level in levels:
            seeded = max(0, level - ran - stored)
            took = fill(stack, stored, stored + seeded)
            stored += seeded
            if progress is not None:
                progress(f"bench.flat: {stored + ran:,} runs stored ({seeded:,} written in "
                         f"{took:.1f} s); {runs} workflows at concurrency {concurrency}")
            # What the previous level left in flight (stream redrives, timers) settles first.
            await asyncio.sleep(settle)
            failed: list[str] = []
            _, alone = await _workflows(stack.api_url, task_list, singles, 1, failed)
            before = len(failed)
            elapsed, together = await _workflows(stack.api_url, task_list, runs, concurrency,
                                                 failed)
            if failed and progress is not None:
                progress(f"bench.flat: {len(failed)} workflows failed, e.g. {failed[0]}")
            succeeded = runs - (len(failed) - before)
            rows.append({"stored": stored + ran, "runs": runs, "concurrency": concurrency,
                         "failed": len(failed), "throughput_per_s": succeeded / elapsed,
                         "p50_s": _pct(together, 0.5),
                         "p99_s": _pct(together, 0.99), "single_p50_s": _pct(alone, 0.5),
                         "single_p95_s": _pct(alone, 0.95), "fill_s": took})
            ran += runs + singles
    finally:
        worker.stop()
    return rows


def target_rows(rows: list[dict[str, float]]) -> list[str]:
    """The targets table's rows (bench/__main__.py puts them in RESULTS.md)."""
    if not rows:
        return []

    def figures(key: str, scale: float, unit: str) -> str:
        return ", ".join(f"{row['stored']:,.0f} stored: {row[key] * scale:.1f}{unit}"
                         for row in rows)

    throughputs = [row["throughput_per_s"] for row in rows]
    # Flat: no level does worse than the emptiest one by more than the margins (a fuller
    # table that does better is noise of a loaded machine, not a failure).
    first_row = rows[0]
    flat = all(row["throughput_per_s"] >= 0.8 * first_row["throughput_per_s"]
               and row["single_p50_s"] <= 1.25 * first_row["single_p50_s"]
               and not row.get("failed", 0) for row in rows)
    first = rows[0]
    failed = sum(row.get("failed", 0) for row in rows)
    failures = f"; {failed:.0f} workflows failed" if failed else ""
    return [
        f"| >= 25 one-activity workflows/s at concurrency {first['concurrency']:.0f}, the worker "
        f"in a process of its own (emulator; bench.flat) | {figures('throughput_per_s', 1, '/s')} "
        f"({first['runs']:.0f} runs each{failures}) | "
        f"{'yes' if min(throughputs) >= 25 and not failed else '**no**'} |",
        f"| ... flat from 0 to 10,000 stored workflows (no level's throughput more than 20% "
        f"below, nor its single start -> result p50 more than 25% above, the emptiest's; "
        f"bench.flat) | start -> result p50 one at a time: "
        f"{figures('single_p50_s', 1000, ' ms')}; at concurrency "
        f"{first['concurrency']:.0f}: {figures('p50_s', 1000, ' ms')} | "
        f"{'yes' if flat else '**no**'} |",
    ]


def render(rows: list[dict[str, float]]) -> list[str]:
    """RESULTS.md's section of this bench."""
    if not rows:
        return []
    lines = ["## A local stack that stays fast as it fills (bench.flat, emulator)", "",
             "Stored runs are written straight into the emulator's tables, as the engine writes "
             "them (each a closed run: the pure core's start transition and a termination, "
             "encoded by the store's `encode_batch`, and its visibility record as "
             "`DynamoVisibilityStore.record` writes it), with `LocalStack.import_items`, which "
             "stores them without stream records, as DynamoDB's import does. At each level, "
             "single runs one at a time, then the burst at concurrency, with one worker in a "
             "process of its own (`python -m bench.flat worker`); the stack and the client share "
             "this process. The stored count includes the runs of earlier levels.", "",
             "| runs stored | written in s | workflows/s | p50 ms | p99 ms | one at a time p50 ms "
             "| p95 ms | failed |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {row['stored']:,.0f} | {row['fill_s']:.1f} | {row['throughput_per_s']:.1f} | "
              f"{row['p50_s'] * 1000:.0f} | {row['p99_s'] * 1000:.0f} | "
              f"{row['single_p50_s'] * 1000:.0f} | {row['single_p95_s'] * 1000:.0f} | "
              f"{row.get('failed', 0):.0f} |" for row in rows]
    return lines


async def main_async(args: argparse.Namespace) -> list[dict[str, float]]:
    with LocalStack(api_port=0) as stack:
        return await measure(stack, levels=tuple(args.levels), runs=args.runs,
                             concurrency=args.concurrency, singles=args.singles,
                             progress=lambda text: print(text, file=sys.stderr, flush=True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        asyncio.run(_serve(argv[1], argv[2], int(argv[3])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.flat", description=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--singles", type=int, default=20)
    rows = asyncio.run(main_async(parser.parse_args(argv)))
    print(json.dumps(rows, indent=2))
    print("\n".join(target_rows(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
