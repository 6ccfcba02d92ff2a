"""``cadenza dev``: the embedded local stack in the foreground until Ctrl-C (or SIGTERM).

The HTTP API (and the web UI at its root, when installed) listens on ``--port`` (7933, Cadence's
frontend port); the embedded AWS emulator on ``--emulator-port`` (default: the API's port + 1,
so a restarted stack is found where it was). The emulator keeps everything in memory: runs,
histories, queues and timers are gone when it stops.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape

from .ui import _port

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

#: Which option moves each listener of the stack elsewhere.
_PORT_OPTIONS = {"HTTP API server": "--port", "AWS emulator (moto)": "--emulator-port"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``cadenza dev`` on the top-level subparsers; its ``func`` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev", help="run the embedded local stack until Ctrl-C", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=_port, default=7933,
                        help="HTTP API port (default 7933; 0: any free port)")
    parser.add_argument("--emulator-port", type=_port, default=None,
                        help="AWS emulator (moto) port (default: the API port + 1)")
    parser.add_argument("--aws-endpoint", type=_endpoint, default=None, metavar="URL",
                        help="use this AWS endpoint (e.g. LocalStack's http://localhost:4566) "
                             "instead of starting moto (default: $CADENZA_AWS_ENDPOINT)")
    parser.add_argument("--auth", choices=("none", "iam"), default="none",
                        help="none: requests need no credentials (default); iam: every API "
                             "request must be SigV4-signed with the stack's credentials, as "
                             "the deployed API requires")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print one line per API request (method, path, status, ms)")
    parser.set_defaults(func=_run_from_args)
    return parser


def _endpoint(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has no valid port") from None
    return text


def _run_from_args(args: argparse.Namespace) -> int:
    if args.emulator_port and args.emulator_port == args.port:
        errors.print(f"cadenza dev: --emulator-port {args.emulator_port} is the API's port; "
                     "choose another one")
        return 2
    return run_dev(api_port=args.port, emulator_port=args.emulator_port,
                   aws_endpoint=args.aws_endpoint, auth=args.auth, verbose=args.verbose)


class _OneLine(logging.Formatter):
    """A record as one line: its message and, for an error, its type and text; no traceback
    (they are for --verbose readers of the code, not for a user of the stack)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f" ({type(error).__name__}: {error})"
        return " ".join(line.split())


def _log_to_terminal() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("cadenza.local")
    logger.addHandler(handler)
    logger.propagate = False
    return handler


def run_dev(*, api_port: int, emulator_port: int | None, aws_endpoint: str | None = None,
            auth: str = "none", verbose: bool = False) -> int:
    from ..local import LocalStack, LocalStackError, PortInUseError

    def request_log(method: str, path: str, status: int, milliseconds: float) -> None:
        style = "red" if status >= 500 else "yellow" if status >= 400 else "dim"
        console.print(f"[{style}]{method} {escape(path)} {status} {milliseconds:.0f} ms[/]")

    stack = LocalStack(api_port=api_port, emulator_port=emulator_port,
                       aws_endpoint=aws_endpoint, auth=auth,
                       request_log=request_log if verbose else None, readable_logs=True)
    handler = _log_to_terminal()
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
        console.print(f"[bold green]cadenza dev[/] HTTP API on [bold]{stack.api_url}[/]"
                      + (" (web UI at its root)" if _has_ui() else "")
                      + '; domain "default"')
        if stack.embedded:
            console.print(f"AWS emulator (moto) on {stack.emulator_endpoint}. It keeps "
                          "everything in memory: runs, histories, queues and timers are lost "
                          "when cadenza dev stops.")
        else:
            console.print(f"AWS endpoint {stack.emulator_endpoint}: the stack's tables and "
                          "queues are kept there when cadenza dev stops.")
        if auth == "iam":
            console.print("Auth iam: every API request must be SigV4-signed (service "
                          f"execute-api, region {stack.region}) with AWS_ACCESS_KEY_ID=testing "
                          "AWS_SECRET_ACCESS_KEY=testing.")
        console.print("Ctrl-C stops it.")
        forever = threading.Event()
        while not forever.wait(0.5):  # until Ctrl-C (KeyboardInterrupt) or SIGTERM
            pass
    except KeyboardInterrupt:
        # Said before stopping, which takes a moment (pollers finish their receive).
        console.print("stopping...")
    finally:
        stack.stop()  # idempotent; start() already cleaned up if it failed
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger("cadenza.local").removeHandler(handler)
    console.print("stopped.")
    return 0


def _has_ui() -> bool:
    try:
        import cadenza.ui  # noqa: F401
    except ImportError:
        return False
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
