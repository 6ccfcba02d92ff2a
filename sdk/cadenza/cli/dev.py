"""``cadenza dev``: the embedded local stack in the foreground until Ctrl-C."""

from __future__ import annotations

from rich.console import Console

from ..local import LocalStack

console = Console()


def run_dev(*, api_port: int, emulator_port: int | None) -> int:
    stack = LocalStack(api_port=api_port, emulator_port=emulator_port)
    stack.start()
    console.print(
        f"[bold green]cadenza dev[/] HTTP API on [bold]{stack.api_url}[/]  "
        f"(emulator {stack.emulator_endpoint}; domain \"default\")\n"
        "Ctrl-C stops it."
    )
    try:
        stack.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping...")
        stack.stop()
    return 0
