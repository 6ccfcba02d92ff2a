"""``python -m bench.peers [--runs 20] [--only ours,aws] [--no-write]``.

Every runner is measured in a fresh Python process of its own (``--child NAME --out FILE``,
which writes its figures to FILE as JSON), one after another, so that one peer's imports,
threads and heap do not weigh on the next and each process's peak RSS is its own. Then the
Markdown report is printed and written over the section "## Test environments side by side" of
bench/RESULTS.md (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import PEERS, load_peer
from .timing import RUNS, WORKFLOWS, measure

SECTION = "## Test environments side by side"
RESULTS = Path(__file__).resolve().parent.parent / "RESULTS.md"
ROOT = Path(__file__).resolve().parent.parent.parent
CHILD_TIMEOUT_S = 600


def _child(name: str, runs: int, memory: bool, out: Path) -> int:
    peer, reason = load_peer(name)
    if peer is None:
        out.write_text(json.dumps({"peer": name, "unavailable": reason}))
        return 0

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        figures = asyncio.run(measure(peer, runs, memory=memory, progress=progress))
    except Exception as error:  # reported in the results as "not run", with the reason
        out.write_text(json.dumps({"peer": name, "failed": f"{type(error).__name__}: {error}"}))
        return 1
    out.write_text(json.dumps(figures))
    return 0


def _run_child(name: str, runs: int, memory: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as folder:
        out = Path(folder) / f"{name}.json"
        command = [sys.executable, "-m", "bench.peers", "--child", name, "--runs", str(runs),
                   "--out", str(out)]
        if not memory:
            command.append("--no-memory")
        # The figures come back in a file, not through a pipe, so a server that outlives its
        # child cannot hold the bench up; the child's own output goes to stderr, leaving stdout
        # to the report. A session of its own, so that on a time-out the child and any server
        # it started (in the child's process group) are killed together.
        child = subprocess.Popen(command, cwd=ROOT, stdout=sys.stderr, start_new_session=True)
        try:
            child.wait(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return {"peer": name, "failed": f"did not finish within {CHILD_TIMEOUT_S} s"}
        if out.exists():
            return json.loads(out.read_text())
    return {"peer": name, "failed": f"exit code {child.returncode} (see its stderr above)"}


# --- the report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "nproc": str(cores),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if value < 1 else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    ratio = value / base
    return f"{ratio:,.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def _mib(kib: float | None) -> str:
    return "-" if not kib else f"{kib / 1024:,.1f}"


def _footprint(result: dict[str, Any]) -> float:
    return float(result["rss_peak_kib"] + result["server_rss_peak_kib"])


def render(
    results: list[dict[str, Any]], runs: int, memory: bool, load: tuple[float, float] | None = None
) -> str:
    info = machine()
    measured = [result for result in results if "workflows" in result]
    ours = next((result for result in measured if result["peer"] == "ours"), None)
    lines = [
        SECTION,
        "",
        f"Measured {info['date']} with `python -m bench.peers`: {info['nproc']} cores "
        f"(`nproc`), {info['cpu']}, {info['python']}, {info['os']}. {runs} runs of each workflow "
        "per runner (after one uncounted warm-up run each), every runner in a fresh Python "
        "process of its own, one runner after another. Ratios are the peer's figure divided by "
        "Cadenza's (above 1x means the peer is slower or larger)."
        + (
            f" One-minute load average at the start and the end: {load[0]:.2f} and "
            f"{load[1]:.2f} (on {info['nproc']} cores; other work on the machine widens the "
            "min..max spread)."
            if load
            else ""
        ),
        "",
        "Workflows: " + "; ".join(f"({key}) {text}" for key, text in WORKFLOWS.items()) + ".",
        "",
    ]
    if ours is None:
        lines += [
            "Cadenza's own side was not measured in this run, so there are no ratios "
            "(see *Not run* below).",
            "",
        ]
    lines += [
        "| workflow | runner | wall ms/run (median) | min..max | CPU ms/run | "
        "Python heap peak/run KiB | wall vs ours | CPU vs ours | heap vs ours |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in WORKFLOWS:
        base = ours["workflows"].get(key) if ours else None
        for result in measured:
            figures = result["workflows"].get(key)
            if figures is None:
                continue
            if figures.get("cannot"):
                lines.append(
                    f"| ({key}) | {result['peer']} | cannot express: {figures['cannot']} "
                    "| | | | | | |"
                )
                continue
            heap = figures["heap_peak_kib"] if memory else None
            lines.append(
                f"| ({key}) | {result['peer']} | {_ms(figures['wall_ms_median'])} | "
                f"{_ms(figures['wall_ms_min'])}..{_ms(figures['wall_ms_max'])} | "
                f"{_ms(figures['cpu_ms_per_run'])} | "
                f"{'-' if heap is None else f'{heap:,.0f}'} | "
                f"{_ratio(figures['wall_ms_median'], base and base['wall_ms_median'])} | "
                f"{_ratio(figures['cpu_ms_per_run'], base and base['cpu_ms_per_run'])} | "
                f"{_ratio(heap, base and base['heap_peak_kib'] if memory else None)} |"
            )
    lines += [
        "",
        "| runner | what | packages | setup ms (create env, once) | teardown ms | "
        "process peak RSS MiB | server peak RSS MiB | footprint vs ours |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in measured:
        versions = ", ".join(f"{name} {version}" for name, version in result["versions"].items())
        lines.append(
            f"| {result['peer']} | {result['label']} | {versions} | "
            f"{_ms(result['setup_wall_ms'])} | {_ms(result['teardown_ms'])} | "
            f"{_mib(result['rss_peak_kib'])} | {_mib(result['server_rss_peak_kib'])} | "
            f"{_ratio(_footprint(result), _footprint(ours) if ours else None)} |"
        )
    lines += ["", "What one run is, per runner, and what to know about it:", ""]
    lines += [
        f"- **{result['peer']}**: {result['run_rule']}. Note: {result['notes']}."
        for result in measured
    ]
    lines += [
        "",
        "How it was measured:",
        "",
        "- wall: `time.perf_counter` around each run; the median, min and max of the runs.",
        "- CPU: `time.process_time` (every thread of the runner's process) over the whole batch "
        "of runs, divided by the number of runs; for a runner with a server subprocess "
        "(temporal, temporal-v2) the server's utime + stime from `/proc/<pid>/stat` over the "
        "same batch is added (10 ms ticks, hence measured per batch, not per run). "
        "`resource.getrusage(RUSAGE_CHILDREN)` is not used: it counts a child only after it "
        "has exited, and the servers live through the whole batch.",
        "- Python heap peak/run: a second batch of the same runs under `tracemalloc`, the largest "
        "`get_traced_memory()` peak above the heap in use when the run began (reset before "
        "each run). It sees Python allocations only: not the Rust core of temporalio, nor the "
        "servers. Its own overhead does not touch the wall and CPU figures, measured before it "
        "is switched on.",
        "- process peak RSS: `VmHWM` of the runner's process after the timed batch (interpreter, "
        "imports and all); server peak RSS: `VmHWM` of the server subprocesses; footprint is "
        "their sum.",
        "- setup: entering the runner's environment once, before the warm-up (for Temporal: "
        "starting the server, connecting the client and starting the Worker; for aws: the "
        "three runners); teardown: leaving it.",
    ]
    not_run = [result for result in results if "workflows" not in result]
    if not_run:
        lines += ["", "Not run:", ""]
        for result in not_run:
            why = result.get("unavailable") or result.get("failed")
            lines.append(f"- **{result['peer']}**: {why}.")
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace the section in ``path`` (from its heading to the next ``## `` heading)."""
    current = path.read_text() if path.exists() else "# Cadenza benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _match: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per workflow per runner")
    parser.add_argument("--only", default="", help="comma-separated runners: " + ",".join(PEERS))
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc batch")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    memory = not args.no_memory
    if args.child:
        if args.out is None:
            parser.error("--child needs --out")
        return _child(args.child, args.runs, memory, args.out)
    names = [name for name in args.only.split(",") if name] or list(PEERS)
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        parser.error(f"unknown runner(s) {unknown}; known: {list(PEERS)}")
    results = []
    load_start = os.getloadavg()[0]
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        results.append(_run_child(name, args.runs, memory))
    text = render(results, args.runs, memory, (load_start, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"(written to {RESULTS})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
