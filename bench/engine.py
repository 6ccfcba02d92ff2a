"""The engine alone, in process: no emulator, no network, no disk.

- decisions per second: a workflow of N sequential activities (mocked with ``env.on_activity``)
  run to completion in ``cadenza.testing.TestWorkflowEnvironment``; its DecisionTaskCompleted
  events divided by the process (CPU) time of the run. The worker keeps the run's instance
  (sticky execution) and reads only the new events, so the rate stays flat as histories grow:
  the figure is given for two lengths.
- replay time per 1,000 events: ``cadenza.testing.Replayer`` on the recorded history of that
  run (the non-determinism check of every decision included).
- memory per open run: ``tracemalloc``, the Python heap the environment holds (history store,
  visibility, queued timers) per run left open on a timer after one activity, after a
  ``gc.collect()``.
- cold start: each Lambda function of template.yaml imported in a fresh interpreter with the
  environment the local stack gives it (``python -X importtime``; the wall time of the whole
  process beside it, and a bare interpreter's for reference).

``python -m bench.engine [--activities 200] [--open-runs 200] [--json FILE]`` prints the section
"## The engine alone".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

from cadenza import Registry, workflow
from cadenza.core import EventType

ROOT = Path(__file__).resolve().parent.parent
registry = Registry()
TIMEOUT = timedelta(seconds=30)


@registry.activity()
async def work(value: int) -> int:  # replaced by a mock in every run here
    return value + 1


@registry.workflow()
class Chain:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for index in range(count):
            total += await work.with_options(start_to_close_timeout=TIMEOUT).execute(index)
        return total


@registry.workflow()
class Waiting:
    """A typical open run: one activity done, then an hour's timer pending."""

    @workflow.run
    async def run(self, value: int) -> int:
        value = await work.with_options(start_to_close_timeout=TIMEOUT).execute(value)
        await workflow.sleep(timedelta(hours=1))
        return value


def _environment() -> Any:
    from cadenza.testing import TestWorkflowEnvironment

    env = TestWorkflowEnvironment(registry, task_list="engine")
    env.on_activity("work", fn=lambda value: value + 1)
    return env


async def decisions_per_second(activities: int) -> dict[str, Any]:
    async with _environment() as env:
        began_cpu, began_wall = time.process_time(), time.perf_counter()
        run = await env.client.start_workflow(
            Chain, activities, task_list="engine",
            execution_start_to_close_timeout=timedelta(hours=1))
        result = await env.client.get_workflow_result(run.workflow_id)
        cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began_wall
        history = await env.client.get_workflow_history(run.workflow_id)
    assert result == sum(index + 1 for index in range(activities))
    decisions = sum(1 for event in history if event.event_type is EventType.DecisionTaskCompleted)
    return {"activities": activities, "events": len(history), "decisions": decisions,
            "cpu_s": cpu, "wall_s": wall, "decisions_per_cpu_s": decisions / cpu if cpu else 0.0,
            "history": history}


def replay_time(history: list[Any], repeats: int) -> dict[str, Any]:
    from cadenza.testing import Replayer

    replayer = Replayer(registry)
    times = []
    for _ in range(repeats):
        began = time.process_time()
        replayer.replay(history, workflow_type="Chain")
        times.append(time.process_time() - began)
    best = min(times)
    return {"events": len(history), "repeats": repeats, "replay_ms": best * 1000,
            "ms_per_1000_events": best * 1000 / len(history) * 1000,
            "median_ms": statistics.median(times) * 1000}


async def memory_per_run(runs: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        async with _environment() as env:
            await env.sleep(1)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for index in range(runs):
                await env.client.start_workflow(
                    Waiting, index, task_list="engine", workflow_id=f"open-{index}",
                    execution_start_to_close_timeout=timedelta(days=1))
            waiting: set[int] = set()
            for _ in range(120):  # until every run has done its activity and started its timer
                await env.sleep(1)
                for index in set(range(runs)) - waiting:
                    events = await env.client.get_workflow_history(f"open-{index}")
                    if any(e.event_type is EventType.TimerStarted for e in events):
                        waiting.add(index)
                if len(waiting) == runs:
                    break
            open_runs = sum(0 if env.is_workflow_completed(f"open-{i}") else 1
                            for i in range(runs))
            history = await env.client.get_workflow_history("open-0")
            del events
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    timers = sum(1 for event in history if event.event_type is EventType.TimerStarted)
    assert open_runs == runs and timers == 1, (open_runs, timers)
    return {"runs": runs, "events_per_run": len(history),
            "bytes_per_run": (after - before) / runs}


# --- cold start ---------------------------------------------------------------------------------


def function_environment() -> dict[str, str]:
    """The environment the local stack gives the functions (template.yaml's, resolved offline,
    plus the AWS variables the stack sets); nothing is contacted at import."""
    from cadenza.local.runtime import merged_environment
    from cadenza.local.template import describe_stack

    endpoint = "http://127.0.0.1:9"
    description = describe_stack(ROOT / "template.yaml", endpoint_url=endpoint)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "CADENZA_"))}
    env.update(merged_environment(description.functions))
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": description.region,
                "AWS_REGION": description.region, "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
                # The key itself, so the import reads no secret (a deployed function's one
                # Secrets Manager read at its cold start is a network call, not an import).
                "CADENZA_TASK_TOKEN_SECRET": "bench-cold-start-" + "0" * 32})
    return env


def lambda_modules() -> list[tuple[str, str, str]]:
    """(function, module, code root) of every function in template.yaml."""
    from cadenza.local.template import describe_stack

    description = describe_stack(ROOT / "template.yaml", endpoint_url="http://127.0.0.1:9")
    return [(function.logical_id, function.handler.rsplit(".", 1)[0].replace("/", "."),
             str(function.code_root)) for function in description.functions]


def _import_once(module: str, root: str, env: dict[str, str]) \
        -> tuple[float, dict[str, float]]:
    """Wall time of ``python -X importtime -c "import <module>"`` and the cumulative seconds
    of each top-level import it reports (the interpreter's own start-up imports included)."""
    code = f"import sys; sys.path.insert(0, {root!r}); import {module}"
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {done.stderr.strip()[-500:]}")
    top: dict[str, float] = {}
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 \
                or not fields[1].strip().isdigit():
            continue
        name = fields[2]
        # Nested imports are indented two spaces a level (under the import that caused
        # them, which is listed after them); level 1 is what the module imports itself.
        level = (len(name) - len(name.lstrip()) - 1) // 2
        if level <= 1:
            key = ("  " * level) + name.strip()
            top[key] = top.get(key, 0.0) + int(fields[1]) / 1e6
    return wall, top


def cold_starts(repeats: int, functions: str = "") -> dict[str, Any]:
    """``functions``: comma-separated logical ids to time (default: every function)."""
    env = function_environment()
    bare = [_import_once("sys", str(ROOT), env) for _ in range(repeats)]
    baseline_wall = statistics.median(wall for wall, _ in bare)
    startup = {name for _, top in bare for name in top if not name.startswith(" ")}
    results = []
    wanted = {name for name in functions.split(",") if name}
    for function, module, root in lambda_modules():
        if wanted and function not in wanted:
            continue
        samples = [_import_once(module, root, env) for _ in range(repeats)]
        own = [{name: s for name, s in top.items()
                if name not in startup and not name.startswith(" ")} for _, top in samples]
        nested = {name.strip(): s for name, s in samples[-1][1].items()
                  if name.startswith(" ")}
        # The imports of the module's own first level that were not there at start-up (the
        # nested list of a start-up module, say encodings, would only show its children).
        heaviest = sorted(nested.items(), key=lambda item: -item[1])[:4]
        results.append({
            "function": function, "module": module,
            "wall_s": statistics.median(wall for wall, _ in samples),
            "import_s": statistics.median(sum(top.values()) for top in own),
            "heaviest": heaviest,
        })
    return {"repeats": repeats, "interpreter_s": baseline_wall, "functions": results}


# --- the report ---------------------------------------------------------------------------------


async def measure(activities: int = 200, open_runs: int = 200, repeats: int = 5,
                  import_repeats: int = 3, functions: str = "") -> dict[str, Any]:
    short = await decisions_per_second(max(1, activities // 10))
    long = await decisions_per_second(activities)
    history = long.pop("history")
    short.pop("history")
    return {
        "decisions": [short, long],
        "replay": replay_time(history, repeats),
        "memory": await memory_per_run(open_runs),
        "cold_start": cold_starts(import_repeats, functions),
    }


def render(figures: dict[str, Any]) -> list[str]:
    short, long = figures["decisions"]
    replay = figures["replay"]
    memory = figures["memory"]
    cold = figures["cold_start"]
    lines = [
        "## The engine alone",
        "",
        "In process on `cadenza.testing.TestWorkflowEnvironment` (the real engine and replay "
        "code behind in-memory adapters, virtual time), in a Python process of its own "
        "(`python -m bench.engine`). CPU time is `time.process_time`. No target in issue 8 "
        "(figures only).",
        "",
        "| figure | value | how |",
        "|---|---:|---|",
    ]
    for run in (short, long):
        lines.append(
            f"| decisions per CPU second, {run['activities']} sequential activities | "
            f"{run['decisions_per_cpu_s']:,.0f} | {run['decisions']} DecisionTaskCompleted "
            f"in {run['cpu_s'] * 1000:,.0f} ms CPU ({run['events']} events; the worker keeps the "
            "run's instance and applies only the new events) |")
    lines += [
        f"| replay, ms per 1,000 events | {replay['ms_per_1000_events']:.1f} | "
        f"`Replayer.replay` of the {replay['events']}-event history above: "
        f"{replay['replay_ms']:.1f} ms (best of {replay['repeats']}; median "
        f"{replay['median_ms']:.1f} ms) |",
        f"| memory per open run, KiB | {memory['bytes_per_run'] / 1024:.1f} | "
        f"`tracemalloc`: heap held by the environment over {memory['runs']} open runs "
        f"({memory['events_per_run']} events each: one activity done, a 1 h timer pending) |",
        "",
        "Cold start: each function's module imported in a fresh interpreter with the "
        "environment the local stack gives it (template.yaml resolved offline, dummy AWS "
        "credentials, no network), median of "
        f"{cold['repeats']}; *imports* is `python -X importtime`'s total of the top-level "
        "imports the module adds to a bare interpreter's, "
        "*process* the wall time of the whole `python -c` (a bare interpreter takes "
        f"{cold['interpreter_s'] * 1000:.0f} ms). Bytecode caches are warm (a Lambda zip "
        "without `__pycache__` compiles on top of this).",
        "",
        "| function | module | imports ms | process ms | heaviest imports of the module (ms) |",
        "|---|---|---:|---:|---|",
    ]
    for function in cold["functions"]:
        heaviest = ", ".join(f"{name} {seconds * 1000:.0f}"
                             for name, seconds in function["heaviest"])
        lines.append(f"| {function['function']} | `{function['module']}` | "
                     f"{function['import_s'] * 1000:.0f} | {function['wall_s'] * 1000:.0f} | "
                     f"{heaviest} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine")
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--open-runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--import-repeats", type=int, default=3)
    parser.add_argument("--functions", default="",
                        help="comma-separated functions to time the import of (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.activities, args.open_runs, args.repeats,
                                  args.import_repeats, args.functions))
    if args.json:
        args.json.write_text(json.dumps(figures))
    print("\n".join(render(figures)))


if __name__ == "__main__":
    main()
