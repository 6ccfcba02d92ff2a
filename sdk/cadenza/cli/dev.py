"""``cadenza dev``: the embedded local stack in the foreground until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from rich.console import Console
from rich.markup import escape

from ..local import LocalStack, LocalStackError, PortInUseError

console = Console()
errors = Console(stderr=True)

#: Which option moves each listener of the stack elsewhere.
_PORT_OPTIONS = {"HTTP API server": "--port", "AWS emulator (moto)": "--emulator-port"}


def run_dev(*, api_port: int, emulator_port: int | None, aws_endpoint: str | None = None) -> int:
    stack = LocalStack(api_port=api_port, emulator_port=emulator_port, aws_endpoint=aws_endpoint)
    # SIGTERM stops it like Ctrl-C, from the start: the API answers before start() returns.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            stack.start()
        except LocalStackError as error:
            errors.print(f"[bold red]cadenza dev could not start[/]: {escape(str(error))}")
            if isinstance(error, PortInUseError) and error.what in _PORT_OPTIONS:
                errors.print(f"Use {_PORT_OPTIONS[error.what]} to choose another port.")
            return 2
        console.print(
            f"[bold green]cadenza dev[/] HTTP API on [bold]{stack.api_url}[/]  "
            f"(emulator {stack.emulator_endpoint}; domain \"default\")\n"
            "Ctrl-C stops it."
        )
        forever = threading.Event()
        while not forever.wait(0.5):  # until Ctrl-C (KeyboardInterrupt) or SIGTERM
            pass
    except KeyboardInterrupt:
        # Said before stopping, which takes a moment (pollers finish their receive).
        console.print("stopping...")
    finally:
        stack.stop()  # idempotent; start() already cleaned up if it failed
        signal.signal(signal.SIGTERM, previous)
    console.print("stopped.")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
