"""``python -m bench``: every benchmark, one after another, and bench/RESULTS.md rewritten.

On one embedded local stack: the requests and cost of a single-activity workflow
(``bench.run``), what each mechanism costs (``bench.mechanisms``), start -> result latency alone
and throughput at concurrency 50, 20 concurrent 3 s timers, then the six standard workflows of
the request floor (``bench.floor``). Then, in processes of their own so the stack's threads
weigh on nothing: the engine alone (``bench.engine``) and the test environments side by side
(``bench.peers``, when the ``bench`` extra is installed; otherwise the section of the previous
run is kept, with a note). Takes about eight minutes on 2 cores.

Options shrink it (``--quick``: one run of everything but the peers, for a look) or skip parts.
Figures are this machine's; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cadenza.local import LocalStack

from . import engine, flat, floor, mechanisms, run, targets
from .meter import metering

RESULTS = Path(__file__).resolve().with_name("RESULTS.md")
ROOT = Path(__file__).resolve().parent.parent
PEERS_SECTION = "## Test environments side by side"


@dataclass(frozen=True)
class Plan:
    """How much of each bench to run (0 or False: skip it)."""

    runs: int = 20  # bench.run's single-activity workflows
    mechanism_runs: int = 10
    single_runs: int = 20  # start -> result, one at a time
    throughput_runs: int = 200
    concurrency: int = 50
    timers: int = 20
    floor_runs: int = 10
    floor_scenarios: tuple[str, ...] = tuple(s.key for s in floor.SCENARIOS)
    warm_up: bool = True
    #: seconds left, after the last standard workflow, for the stream's redrive and visibility
    settle: float = 2.0
    replay: bool = True
    engine: dict[str, Any] = field(default_factory=lambda: {
        "activities": 200, "open_runs": 200, "repeats": 5, "import_repeats": 3})
    peers: bool = True
    peer_runs: int = 20
    #: bench.flat's stored-run levels (empty: skip it)
    flat_levels: tuple[int, ...] = flat.LEVELS


QUICK = Plan(runs=1, mechanism_runs=1, single_runs=1, throughput_runs=2, concurrency=2,
             timers=2, floor_runs=1, peers=False, flat_levels=(),
             engine={"activities": 10, "open_runs": 5, "repeats": 1, "import_repeats": 1})


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    model, processors = "unknown CPU", 0
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("processor"):
                    processors += 1
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.now(UTC).date().isoformat(),
        "cpu": model,
        "processors": str(processors or os.cpu_count()),
        "usable": str(usable),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "moto": version("moto"),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
    }


# --- the stack part -------------------------------------------------------------------------------


async def on_the_stack(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with metering() as meter, LocalStack(api_port=0) as stack:
        if plan.runs:
            _progress(f"bench.run: {plan.runs} single-activity workflows")
            delta, history = await run.per_workflow(stack, meter, plan.runs)
            out["run"] = (delta, plan.runs, history)
        if plan.mechanism_runs:
            _progress(f"bench.mechanisms: {len(mechanisms.SCENARIOS)} x {plan.mechanism_runs}")
            out["mechanisms"] = await mechanisms.measure(stack, meter, plan.mechanism_runs,
                                                         run.engine_cost)
        if plan.single_runs:
            _progress(f"latency: {plan.single_runs} one at a time")
            out["single"] = await run.latency(stack, plan.single_runs, 1)
        if plan.throughput_runs:
            _progress(f"throughput: {plan.throughput_runs} at concurrency {plan.concurrency}")
            out["throughput"] = await run.latency(stack, plan.throughput_runs, plan.concurrency)
        if plan.timers:
            _progress(f"timers: {plan.timers} concurrent 3 s timers")
            out["timers"] = await targets.timer_lateness(stack, plan.timers, 3)
        if plan.floor_runs:
            ledger = floor.make_ledger(stack)
            scenarios = tuple(s for s in floor.SCENARIOS if s.key in plan.floor_scenarios)
            with ledger.watch(meter):
                began = time.monotonic()
                out["floor"] = await floor.run_scenarios(
                    stack, ledger, plan.floor_runs, scenarios, progress=_progress,
                    warm_up=plan.warm_up, settle=plan.settle)
                out["idle"] = (ledger.snapshot(None), time.monotonic() - began)
            if ledger.unclassified:
                _progress(f"requests the ledger could not classify: {dict(ledger.unclassified)}")
        if plan.flat_levels:  # last: the runs it stores stay in the tables
            out["flat"] = await flat.measure(stack, levels=plan.flat_levels, progress=_progress)
    return out


# --- the other processes -----------------------------------------------------------------------


def engine_alone(sizes: dict[str, Any]) -> dict[str, Any]:
    """``python -m bench.engine`` in a fresh process: nothing of this one weighs on it."""
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as folder:
        out = Path(folder) / "engine.json"
        command = [sys.executable, "-m", "bench.engine", "--json", str(out)]
        for name, value in sizes.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=900)
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def peers_available() -> tuple[list[str], list[str]]:
    """(peers that can run, why the others cannot)."""
    from .peers import PEERS, load_peer

    ready, missing = [], []
    for name in PEERS:
        if name == "ours":
            continue
        peer, reason = load_peer(name)
        if peer is None:
            missing.append(f"{name}: {reason}")
        else:
            ready.append(name)
    return ready, missing


def peers(runs: int) -> str:
    done = subprocess.run([sys.executable, "-m", "bench.peers", "--no-write", "--runs", str(runs)],
                          cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=3600)
    return done.stdout.strip() + "\n"


def kept_section(previous: str, heading: str) -> str | None:
    start = previous.find(heading)
    if start < 0:
        return None
    end = previous.find("\n## ", start + len(heading))
    return previous[start:end if end >= 0 else len(previous)].rstrip() + "\n"


# --- the report ---------------------------------------------------------------------------------


def _met(ok: bool | None) -> str:
    return "-" if ok is None else "yes" if ok else "**no**"


def target_rows(out: dict[str, Any], elapsed: float | None) -> list[str]:
    lines = ["## Targets (issue 8)", "",
             "Request counts and costs carry over to AWS; latency, throughput and timer figures "
             "are the emulator's on this machine (moto in server mode, CPU-bound), labelled so.",
             "", "| target | measured | met |", "|---|---|---|"]
    results = out.get("floor") or []
    if results:
        ratios = []
        for measured in results:
            grouped = floor.components(measured.per_workflow)
            floor_cost = floor.floor_usd(floor.FLOORS[measured.scenario.key])
            ratios.append((floor.engine_usd(grouped) / floor_cost, measured.scenario.key))
        worst = max(ratios)
        lines.append(
            "| within 1.2x of the request floor, each standard workflow (engine $/M) | "
            + ", ".join(f"{key} {ratio:.2f}x" for ratio, key in ratios)
            + f" (worst: {worst[1]}) | {_met(worst[0] <= 1.2)} |")
        timer = next((m for m in results if m.scenario.key == "timer"), None)
        if timer is not None:
            grouped = floor.components(timer.per_workflow)
            engine_cost = floor.engine_usd(grouped)
            lambda_worker = engine_cost + floor.lambda_worker_usd(timer.per_workflow)
            http = engine_cost + grouped[floor.HTTP].usd_m
            floor_cost = floor.floor_usd(floor.FLOORS["timer"])
            lines.append(
                "| at most $5 per million workflows of one activity + one short timer, "
                f"engine and worker path together | engine ${engine_cost:.2f}; with a Lambda "
                f"worker ${lambda_worker:.2f}; with a polling worker through the HTTP API "
                f"${http:.2f} (the floor of the engine alone: ${floor_cost:.2f}) | "
                f"{_met(lambda_worker <= 5.0)} |")
    throughput = out.get("throughput")
    if throughput:
        lines.append(
            f"| >= 25 one-activity workflows/s at concurrency {throughput['concurrency']:.0f}, "
            f"one worker process (emulator) | {throughput['throughput_per_s']:.1f}/s "
            f"({throughput['runs']:.0f} runs in {throughput['elapsed_s']:.1f} s; p50 "
            f"{throughput['p50_s'] * 1000:.0f} ms, p99 {throughput['p99_s'] * 1000:.0f} ms) | "
            f"{_met(throughput['throughput_per_s'] >= 25)} |")
    lines += flat.target_rows(out.get("flat") or [])  # bench.flat: stored runs, worker process
    single = out.get("single")
    if single:
        lines.append(
            f"| single workflow start -> result under 150 ms at p50 (emulator) | "
            f"{single['p50_s'] * 1000:.0f} ms ({single['runs']:.0f} one-activity runs one at "
            f"a time; p95 {single['p95_s'] * 1000:.0f} ms) | {_met(single['p50_s'] < 0.150)} |")
    timers = out.get("timers")
    if timers:
        lines.append(
            f"| timers at most 1 s late at p99, {timers['timers']} concurrent "
            f"{timers['seconds']} s timers (emulator) | p99 {timers['p99_late_s']:.2f} s late "
            f"(p50 {timers['p50_late_s']:.2f}, min {timers['min_late_s']:.2f}, max "
            f"{timers['max_late_s']:.2f}; TimerFired minus TimerStarted minus 3 s) | "
            f"{_met(timers['p99_late_s'] <= 1.0)} |")
    if elapsed is not None:
        lines.append(f"| `python -m bench` runs everything in under 10 minutes on 2 cores | "
                     f"{elapsed / 60:.1f} min | {_met(elapsed < 600)} |")
    return lines


def compose(out: dict[str, Any], info: dict[str, str], elapsed: float | None,
            previous: str, peers_text: str | None, peers_note: str | None) -> str:
    lines = [
        "# Cadenza benchmarks",
        "",
        f"Measured {info['date']} with `python -m bench`"
        + (f" ({elapsed / 60:.1f} minutes)" if elapsed is not None else "")
        + f" on {info['cpu']}, {info['processors']} processors ({info['usable']} usable), "
        f"{info['python']}, {info['os']}; moto {info['moto']}, boto3 {info['boto3']} "
        f"(botocore {info['botocore']}). The local stack is moto in server mode with the "
        "local Lambda runtime (`cadenza.local.LocalStack`)."
        + (f" One-minute load average at the start and the end: {info['load']} (other "
           "work on the machine slows the emulator's figures, not the request counts)."
           if info.get("load") else ""),
        "",
        *target_rows(out, elapsed),
        "",
    ]
    if out.get("floor"):
        idle, seconds = out.get("idle") or (None, 0.0)
        lines += [*floor.render(out["floor"], idle=idle, idle_seconds=seconds), ""]
    if "run" in out:
        delta, runs, history = out["run"]
        lines += [*run.sections(delta, runs, history, None, out.get("replay"),
                                out.get("mechanisms") or []), ""]
    elif out.get("mechanisms"):
        lines += [*out["mechanisms"], ""]
    latency_rows = []
    for name, title in (("single", "one at a time"), ("throughput", "concurrently")):
        figures = out.get(name)
        if figures:
            latency_rows.append(
                f"| {title} ({figures['concurrency']:.0f}) | {figures['runs']:.0f} | "
                f"{figures['throughput_per_s']:.1f} | {figures['p50_s'] * 1000:.0f} | "
                f"{figures['p95_s'] * 1000:.0f} | {figures['p99_s'] * 1000:.0f} |")
    if latency_rows:
        lines += ["## Latency and throughput (start -> result, one worker, emulator)", "",
                  "| how | runs | workflows/s | p50 ms | p95 ms | p99 ms |",
                  "|---|---:|---:|---:|---:|---:|", *latency_rows, ""]
    if out.get("flat"):
        lines += [*flat.render(out["flat"]), ""]
    if out.get("engine"):
        lines += [*engine.render(out["engine"]), ""]
    if peers_text:
        lines += [peers_text.rstrip(), ""]
    else:
        kept = kept_section(previous, PEERS_SECTION)
        if kept or peers_note:
            lines += [PEERS_SECTION, "", f"*{peers_note}*" if peers_note else "", ""]
            body = kept.split("\n", 1)[1].strip() if kept and "\n" in kept else ""
            if body.startswith("*Not re-run"):  # the note of an earlier kept copy
                body = body.split("\n", 1)[1].strip() if "\n" in body else ""
            if body:
                lines += [body, ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run of each, no peers")
    parser.add_argument("--floor-runs", type=int, help="runs of each standard workflow")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-engine", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.floor_runs is not None:
        plan = replace(plan, floor_runs=args.floor_runs)
    if args.no_peers:
        plan = replace(plan, peers=False)
    if args.no_engine:
        plan = replace(plan, engine={})
    return write(plan, args.output)


def write(plan: Plan, output: Path) -> int:
    began = time.monotonic()
    info = machine()
    load_start = os.getloadavg()[0]
    out = asyncio.run(on_the_stack(plan))
    if plan.replay:
        out["replay"] = run.replay_speed(activities=200, repeats=5)
    if plan.engine:
        _progress("bench.engine (own process)")
        out["engine"] = engine_alone(plan.engine)
    peers_text = peers_note = None
    if plan.peers:
        ready, missing = peers_available()
        if ready:
            _progress(f"bench.peers (own processes): ours, {', '.join(ready)}")
            peers_text = peers(plan.peer_runs)
        else:
            peers_note = ("Not re-run by this `python -m bench`: none of the peers' packages is "
                          "installed (`pip install -e '.[bench]'`; " + "; ".join(missing)
                          + "). What follows is the previous run's section.")
    else:
        peers_note = "Not re-run by this `python -m bench` (peers skipped); what follows is " \
                     "the previous run's section."
    elapsed = time.monotonic() - began
    info["load"] = f"{load_start:.2f} and {os.getloadavg()[0]:.2f}"
    previous = output.read_text() if output.exists() else ""
    text = compose(out, info, elapsed, previous, peers_text, peers_note)
    output.write_text(text)
    _progress(f"written to {output} in {elapsed / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
