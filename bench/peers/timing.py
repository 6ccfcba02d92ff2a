"""The timing helper every runner of the side-by-side bench goes through.

A runner module offers a :class:`Peer`: ``unavailable()`` says why it cannot run here (or None),
``versions()`` names the packages it measured, and ``session()`` is an async context manager that
builds the runner's test environment once and yields a :class:`Session` whose ``run(key)`` runs
one workflow to its result and returns that result.

:func:`measure` drives one peer the same way for all of them:

1. the environment is created once (its wall and CPU time are reported as *setup*, apart);
2. each workflow runs once as a warm-up (not counted);
3. a timing pass: ``runs`` runs of each workflow, wall time per run with ``time.perf_counter``;
   CPU time per batch with ``time.process_time`` (every thread of this process), plus the
   ``utime + stime`` of the session's server subprocesses from ``/proc/<pid>/stat`` for a peer
   that runs one, divided by ``runs``;
4. the peak RSS of this process (``VmHWM``) and of each server subprocess, read after the timing
   pass and before tracemalloc is switched on;
5. a memory pass: ``runs`` more runs of each workflow under ``tracemalloc``, keeping the largest
   peak above the heap in use when the run began (Python allocations only; native memory of a
   Rust or Java component is not seen by tracemalloc, which is why 4 exists).

Every run's result is checked against the workflow's expected value, so a wrong peer fails loudly
instead of producing fast nonsense.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The three workflows, by key: what each does and what it must return.
WORKFLOWS: dict[str, str] = {
    "a": "ten sequential activities, then a one-hour sleep",
    "b": "one hundred parallel activities",
    "c": "wait for a signal (a callback for the AWS runner), then one activity",
}
EXPECTED: dict[str, int] = {
    "a": sum(i + 1 for i in range(10)),  # 55
    "b": sum(i + 1 for i in range(100)),  # 5050
    "c": 42,  # work(41)
}
RUNS = 20
#: a run that takes longer than this (real seconds) fails the peer instead of hanging the bench
RUN_TIMEOUT_S = 120.0


class CannotExpress(Exception):
    """Raised by ``Session.run`` for a workflow the peer has no way to express."""


class Session(Protocol):
    async def run(self, key: str) -> int: ...

    def server_pids(self) -> list[int]: ...


class Peer(Protocol):
    name: str
    label: str
    #: how a "run" is defined for this peer, for the results notes
    run_rule: str
    #: what a reader of the figures should know about this peer
    notes: str

    def unavailable(self) -> str | None: ...

    def versions(self) -> dict[str, str]: ...

    def session(self) -> AbstractAsyncContextManager[Session]: ...


class NoServer:
    """Mixin for in-process sessions: no subprocess whose CPU or memory must be added."""

    def server_pids(self) -> list[int]:
        return []


# --- /proc readers (Linux) -------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU of one process (all its threads), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")" the fields start at number 3 (state): utime is 14, stime is 15
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_status_kib(pid: int | str, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant process of ``pid`` (default: this process)."""
    root = os.getpid() if pid is None else pid
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                after = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(after[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


# --- the driver ------------------------------------------------------------------------------


@dataclass
class WorkflowFigures:
    key: str
    result: int | None = None
    cannot: str | None = None
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms_per_run: float = 0.0
    heap_peak_kib: float = 0.0

    def summary(self) -> dict[str, Any]:
        walls = sorted(self.wall_ms)
        return {
            "result": self.result,
            "cannot": self.cannot,
            "runs": len(walls),
            "wall_ms_median": statistics.median(walls) if walls else None,
            "wall_ms_min": walls[0] if walls else None,
            "wall_ms_max": walls[-1] if walls else None,
            "wall_ms_total": sum(walls) if walls else None,
            "cpu_ms_per_run": self.cpu_ms_per_run if walls else None,
            "heap_peak_kib": self.heap_peak_kib if walls else None,
        }


def _cpu_now(session: Session) -> float:
    return time.process_time() + sum(proc_cpu_seconds(pid) for pid in session.server_pids())


async def _checked(session: Session, key: str) -> int:
    try:
        result = await asyncio.wait_for(session.run(key), RUN_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(
            f"a run of workflow ({key}) did not finish within {RUN_TIMEOUT_S:.0f} s"
        ) from None
    if result != EXPECTED[key]:
        raise AssertionError(f"workflow {key}: got {result!r}, expected {EXPECTED[key]!r}")
    return result


async def measure(
    peer: Peer,
    runs: int = RUNS,
    *,
    memory: bool = True,
    keys: tuple[str, ...] = tuple(WORKFLOWS),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure one peer: setup, then ``runs`` timed runs and ``runs`` traced runs per workflow."""
    say = progress or (lambda _message: None)
    figures = {key: WorkflowFigures(key) for key in keys}
    rss_before = proc_status_kib("self", "VmRSS")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    context = peer.session()
    session = await context.__aenter__()
    try:
        setup_wall_ms = (time.perf_counter() - wall0) * 1000
        setup_cpu_ms = (time.process_time() - cpu0) * 1000
        servers = session.server_pids()
        live = [key for key in keys if not await _warm_up(session, figures[key])]
        for key in live:
            gc.collect()
            say(f"{peer.name}: timing {key} x{runs}")
            cpu_start = _cpu_now(session)
            for _ in range(runs):
                start = time.perf_counter()
                figures[key].result = await _checked(session, key)
                figures[key].wall_ms.append((time.perf_counter() - start) * 1000)
            figures[key].cpu_ms_per_run = (_cpu_now(session) - cpu_start) * 1000 / runs
        rss_peak = proc_status_kib("self", "VmHWM")
        server_peak = sum(proc_status_kib(pid, "VmHWM") for pid in servers)
        if memory:
            tracemalloc.start()
            try:
                for key in live:
                    say(f"{peer.name}: tracemalloc {key} x{runs}")
                    for _ in range(runs):
                        gc.collect()
                        tracemalloc.reset_peak()
                        base = tracemalloc.get_traced_memory()[0]
                        await _checked(session, key)
                        peak = tracemalloc.get_traced_memory()[1] - base
                        figures[key].heap_peak_kib = max(figures[key].heap_peak_kib, peak / 1024)
            finally:
                tracemalloc.stop()
    finally:
        close0 = time.perf_counter()
        await context.__aexit__(None, None, None)
        teardown_ms = (time.perf_counter() - close0) * 1000
    return {
        "peer": peer.name,
        "label": peer.label,
        "run_rule": peer.run_rule,
        "notes": peer.notes,
        "versions": peer.versions(),
        "runs": runs,
        "setup_wall_ms": setup_wall_ms,
        "setup_cpu_ms": setup_cpu_ms,
        "teardown_ms": teardown_ms,
        "server_processes": len(servers),
        "rss_after_import_kib": rss_before,
        "rss_peak_kib": rss_peak,
        "server_rss_peak_kib": server_peak,
        "workflows": {key: figures[key].summary() for key in keys},
    }


async def _warm_up(session: Session, figures: WorkflowFigures) -> bool:
    """One uncounted run; True when the peer cannot express the workflow."""
    try:
        figures.result = await _checked(session, figures.key)
    except CannotExpress as reason:
        figures.cannot = str(reason) or "cannot be expressed"
        return True
    return False

