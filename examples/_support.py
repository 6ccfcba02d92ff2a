"""What the examples share: running against a stack, and the worker processes they kill.

Every example runs against a stack that is already up (``--address``) or an embedded one it
starts and stops. The examples that show a worker dying run that worker as a process of its
own, so it can be killed with SIGKILL as a machine that loses power: no clean-up, no last
heartbeat, no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from rich.console import Console

if TYPE_CHECKING:
    from cadenza.local import LocalStack

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[1]
console = Console()


def on_stack(
    address: str | None, run: Callable[[str, LocalStack | None], Coroutine[Any, Any, T]]
) -> T:
    """``run(api_url, stack)`` against ``address``, or against an embedded local stack started
    for it (``stack`` is None for a stack that runs elsewhere)."""
    if address:
        return asyncio.run(run(address, None))
    from cadenza.local import LocalStack

    with LocalStack(api_port=0) as stack:
        console.print(f"local stack: API {stack.api_url}, AWS {stack.emulator_endpoint}")
        return asyncio.run(run(stack.api_url, stack))


class Processes:
    """Python module processes by name; whatever still runs at exit is stopped."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, module: str, *args: str) -> asyncio.subprocess.Process:
        """Run ``python -m module args`` and wait for the line ``ready`` it prints once it
        polls its task lists."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
        )
        self._running[name] = process
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"{name} did not start (exit code {await process.wait()})")
        return process

    async def kill(self, name: str) -> None:
        """SIGKILL: the process vanishes without finishing or reporting anything."""
        process = self._running.pop(name)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        console.print(f"[red]{name} killed[/] (pid {process.pid})")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in self._running.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._running.clear()
