"""``cadenza workflow stack``: where an open run's workflow code is waiting right now.

It sends Cadence's built-in ``__stack_trace`` query: a worker of the run's task list replays
the run and answers with each suspended coroutine's frames (cadenza/replay/stack.py), the
picture a traceback would give. Like every query it needs a worker polling that task list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..client import Client
from ..replay.stack import STACK_TRACE_QUERY

__all__ = ["add_parser", "run_stack"]

DESCRIPTION = """\
Show where an open run's workflow code is waiting: each coroutine (the run method, signal
handlers, tasks it created) with its file, line and source, innermost await last. A worker of
the run's task list answers (Cadence's __stack_trace query), so one must be running."""


def add_parser(actions: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``stack`` under ``cadenza workflow``; ``common`` gives --address, --domain and
    --json. Its ``func`` runs it."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "stack", parents=[common],
        help="show where an open run's code is waiting (the __stack_trace query)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow_id", help="the run's workflow id")
    parser.add_argument("--run-id", "--rid", default="", help="a run of the workflow id "
                        "(default: its current run)")
    parser.set_defaults(func=run_stack)
    return parser


def run_stack(args: argparse.Namespace) -> int:
    """Print the stack as the worker wrote it (``{"stack": ...}`` with --json)."""
    text = asyncio.run(_stack(args.address, args.domain, args.workflow_id, args.run_id))
    if args.json:
        print(json.dumps({"workflow_id": args.workflow_id, "run_id": args.run_id,
                          "stack": text}))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


async def _stack(address: str, domain: str, workflow_id: str, run_id: str) -> str:
    async with Client(domain=domain, target=address) as client:
        answer = await client.query_workflow(workflow_id, run_id, STACK_TRACE_QUERY)
    return str(answer)
