"""Argument parsing and dispatch of the ``cadenza`` command (the user-facing text is in
``DESCRIPTION``, ``EPILOG`` and each option's help)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from .._activity_definition import ActivityDefinition
from .._workflow_definition import WorkflowDefinition
from ..client import Client, WorkflowExecutionInfo
from ..core.policies import ReusePolicy
from ..error import (
    ApiUnreachableError,
    BadRequestError,
    CadenzaError,
    EntityNotExistsError,
    NonDeterministicError,
    ServiceError,
    StaleTaskError,
    WorkflowExecutionAlreadyCompletedError,
    WorkflowFailure,
)
from ..registry import Registry
from . import dev, stack, ui
from .format import (
    describe_view,
    event_line,
    history_table,
    print_describe,
    print_history,
    print_runs,
    runs_table,
)

__all__ = ["history_table", "main", "runs_table"]

#: Where commands find the HTTP API unless --address says otherwise.
FALLBACK_ADDRESS = "http://127.0.0.1:7933"
ADDRESS_VARIABLE = "CADENZA_ADDRESS"
#: How often --watch asks again while the run is open, in seconds.
WATCH_INTERVAL = 1.0

DESCRIPTION = """\
Cadence-style durable workflows on AWS, from the command line.

Run `cadenza dev` in one terminal for a local stack (HTTP API on 127.0.0.1:7933), then start,
inspect, signal, query, cancel, terminate, reset and list workflow runs against it, or against
a deployed stack with --address (its API Gateway URL)."""

EPILOG = f"""\
environment:
  {ADDRESS_VARIABLE}   the HTTP API URL every command uses when --address is not given
                    (default {FALLBACK_ADDRESS})

exit codes: 0 done; 1 a task token refused, or a replay found non-determinism; 2 a usage,
connection or service error; 3 the workflow failed, timed out, was canceled or terminated;
130 interrupted (Ctrl-C).

examples:
  cadenza dev
  cadenza workflow start Greeting --task-list greetings --execution-timeout 60 -i '"world"'
  cadenza workflow show <workflow-id> --watch
  cadenza workflow list --query "WorkflowType = 'Greeting' AND CloseStatus = 'FAILED'"
"""

INPUT_HELP = ("one argument as JSON, @FILE to read it from a file, or - to read it from stdin "
              "(repeat for several)")

console = Console()
errors = Console(stderr=True)


def _version() -> str:
    try:
        return metadata.version("cadenza")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _reuse_policy(text: str) -> str:
    """A reuse policy in any spelling the client takes, as its canonical name."""
    try:
        return str(ReusePolicy.parse(text).value)
    except CadenzaError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadenza", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cadenza {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_dev_parser(commands)
    ui.add_parser(commands)
    _add_workflow_parsers(commands)
    _add_activity_parsers(commands)
    return parser


def _add_dev_parser(commands: Any) -> None:
    """``cadenza dev``'s flags (owned with cli/dev.py)."""
    dev.add_parser(commands)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    address = os.environ.get(ADDRESS_VARIABLE) or FALLBACK_ADDRESS
    common.add_argument("--address", default=address, metavar="URL",
                        help=f"the stack's HTTP API (default: ${ADDRESS_VARIABLE}, else "
                             f"{FALLBACK_ADDRESS}; now {address})")
    common.add_argument("--domain", default="default", help="the domain (default: default)")
    common.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return common


def _add_workflow_parsers(commands: Any) -> None:
    common = _common()
    workflow = commands.add_parser("workflow", help="start, inspect and change workflow runs")
    actions = workflow.add_subparsers(dest="action", required=True, metavar="ACTION")

    start = actions.add_parser("start", parents=[common], help="start a workflow run")
    start.add_argument("workflow_type", help="the workflow type name (its class name by default)")
    start.add_argument("--task-list", "--tl", required=True,
                       help="the task list its workers poll")
    start.add_argument("--execution-timeout", type=float, required=True, metavar="SECONDS",
                       help="how long the whole run may take (execution_start_to_close_timeout)")
    start.add_argument("--decision-timeout", type=float, default=None, metavar="SECONDS",
                       help="how long one decision task may take (default 10)")
    start.add_argument("--workflow-id", "--wid", default=None,
                       help="the run's workflow id (default: a random UUID)")
    start.add_argument("--input", "-i", action="append", default=[], metavar="JSON",
                       help=INPUT_HELP)
    start.add_argument("--reuse-policy", type=_reuse_policy, default=None,
                       choices=[policy.value for policy in ReusePolicy],
                       help="whether a used workflow id may start again (default "
                            "AllowDuplicateFailedOnly; Cadence's proto spelling works too)")
    start.add_argument("--delay-start", type=float, default=None, metavar="SECONDS",
                       help="wait this long before the first decision task")
    start.add_argument("--cron", dest="cron_schedule", default=None, metavar="EXPRESSION",
                       help='cron schedule in UTC, e.g. "*/15 * * * *" or @daily')
    retry = start.add_argument_group("retry policy of the run (any --retry-* sets one)")
    retry.add_argument("--retry-initial-interval", type=float, default=None, metavar="SECONDS",
                       help="backoff before the first retry (default 1)")
    retry.add_argument("--retry-backoff", "--retry-backoff-coefficient", type=float,
                       dest="retry_backoff", default=None, metavar="FACTOR",
                       help="each backoff is this times the previous one (default 2)")
    retry.add_argument("--retry-max-interval", type=float, default=None, metavar="SECONDS",
                       help="longest backoff (default 100 x the initial interval)")
    retry.add_argument("--retry-max-attempts", type=int, default=None, metavar="N",
                       help="attempts in all, the first included (0: no limit)")
    retry.add_argument("--retry-expiration", type=float, default=None, metavar="SECONDS",
                       help="no retry starts later than this after the first attempt")
    retry.add_argument("--retry-non-retryable", action="append", default=[], metavar="REASON",
                       help="a failure reason never retried (repeat for several)")

    for name, text in (("describe", "show a run's state (pending activities included)"),
                       ("show", "show a run's history"),
                       ("result", "wait for a run's result")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("workflow_id")
        action.add_argument("--run-id", "--rid", default="",
                            help="a run of the workflow id (default: its current run)")
        if name == "result":
            action.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                                help="give up after this long (default: wait until it closes)")
        else:
            action.add_argument("--watch", "-w", action="store_true",
                                help="follow the run live until it closes (Ctrl-C stops)")
        if name == "show":
            action.add_argument("--wait", action="store_true",
                                help="wait until the run closes, then show the whole history")

    terminate = actions.add_parser("terminate", parents=[common], help="terminate a run")
    terminate.add_argument("workflow_id")
    terminate.add_argument("--run-id", "--rid", default="")
    terminate.add_argument("--reason", default="terminated from the command line")

    reset = actions.add_parser(
        "reset", parents=[common],
        help="start a new run from a run's history up to a DecisionTaskCompleted event")
    reset.add_argument("workflow_id", nargs="?", default=None)
    reset.add_argument("--workflow-id", "--wid", dest="workflow_id_option", default=None)
    reset.add_argument("--run-id", "--rid", default="")
    reset.add_argument("--event-id", "--decision-finish-event-id", dest="event_id", type=int,
                       required=True, metavar="N",
                       help="id of the DecisionTaskCompleted event to reset to")
    reset.add_argument("--reason", default="reset from the command line")

    query = actions.add_parser("query", parents=[common], help="ask a run's workflow code")
    query.add_argument("workflow_id")
    query.add_argument("--run-id", "--rid", default="")
    query.add_argument("--type", "-t", dest="query_type", required=True, help="query name")
    query.add_argument("--input", "-i", action="append", default=[], metavar="JSON",
                       help=INPUT_HELP)

    cancel = actions.add_parser("cancel", parents=[common], help="ask a run to cancel")
    cancel.add_argument("workflow_id")
    cancel.add_argument("--run-id", "--rid", default="")
    cancel.add_argument("--cause", default="cancelled from the command line")

    signal = actions.add_parser("signal", parents=[common], help="send a signal to a run")
    signal.add_argument("workflow_id")
    signal.add_argument("--run-id", "--rid", default="")
    signal.add_argument("--name", "-n", required=True, help="signal name")
    signal.add_argument("--input", "-i", action="append", default=[], metavar="JSON",
                        help=INPUT_HELP)

    listing = actions.add_parser("list", parents=[common], help="list runs, newest first")
    listing.add_argument("--status", type=str.lower, default=None,
                         choices=["open", "closed", "completed", "failed", "canceled",
                                  "terminated", "continued_as_new", "timed_out"],
                         help="only runs in this state")
    listing.add_argument("--type", dest="workflow_type", default=None,
                         help="only runs of this workflow type")
    listing.add_argument(
        "--query", "-q", default=None,
        help="visibility query, e.g. \"WorkflowType = 'Order' AND CloseStatus = 'FAILED' AND "
             "StartTime > '2026-01-01T00:00:00Z'\" (fields and search attributes joined by AND)")
    listing.add_argument("--page-size", type=int, default=100,
                         help="at most this many runs (a page's size with --page)")
    listing.add_argument("--all", action="store_true", help="every matching run")
    listing.add_argument("--page", action="store_true",
                         help="one page and the token of the next one")
    listing.add_argument("--next-page-token", default=None,
                         help="with --page: the page this token (of an earlier --page) names")

    stack.add_parser(actions, common)

    replay = actions.add_parser(
        "replay", help="replay a stored history (show --json) against today's workflow code")
    replay.add_argument("file", help="history JSON file written by show --json ('-': stdin)")
    replay.add_argument("--module", "-m", dest="modules", action="append", required=True,
                        metavar="MODULE",
                        help="module holding the workflows: its 'registry', else every "
                             "workflow class in it (repeat for several)")
    replay.add_argument("--workflow-type", default=None,
                        help="workflow type to replay (default: the one history names)")


def _add_activity_parsers(commands: Any) -> None:
    common = _common()
    activity = commands.add_parser(
        "activity", help="answer for an activity by its task token (one completed later)")
    activity_actions = activity.add_subparsers(dest="action", required=True)
    complete = activity_actions.add_parser("complete", parents=[common],
                                           help="complete an activity with a result")
    complete.add_argument("task_token")
    complete.add_argument("--input", "-i", "--result", dest="result", default=None,
                          metavar="JSON",
                          help="the result as JSON, @FILE or - for stdin (default: null)")
    fail = activity_actions.add_parser("fail", parents=[common], help="fail an activity")
    fail.add_argument("task_token")
    fail.add_argument("--reason", required=True, help="the failure's reason")
    fail.add_argument("--details", default=None, help="the failure's details (text)")
    heartbeat = activity_actions.add_parser(
        "heartbeat", parents=[common],
        help="record an activity's progress; says whether it should stop")
    heartbeat.add_argument("task_token")
    heartbeat.add_argument("--input", "-i", dest="details", action="append", default=[],
                           metavar="JSON",
                           help="one heartbeat detail as JSON, @FILE or - (repeat for several)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cadenza`` command with ``argv`` (default: the process's arguments); returns
    the exit code."""
    args = _parser().parse_args(argv)
    try:
        if callable(getattr(args, "func", None)):  # commands that bring their own (ui)
            return int(args.func(args))
        if args.command == "workflow" and args.action == "replay":
            return _replay(args)
        if args.command == "activity":
            return asyncio.run(_activity(args))
        return asyncio.run(_workflow(args))
    except WorkflowFailure as error:
        _fail(args, error, "WorkflowFailure")
        return 3
    except ApiUnreachableError as error:  # the usual first mistake: say what to do about it
        _fail(args, _unreachable_hint(error), "ApiUnreachableError")
        return 2
    except ServiceError as error:
        _fail(args, error, error.code)
        return 1 if args.command == "activity" and _refused_token(error) else 2
    except CadenzaError as error:
        _fail(args, error, type(error).__name__)
        return 2
    except KeyboardInterrupt:
        return 130


def _unreachable_hint(error: ApiUnreachableError) -> str:
    """Nobody answers at the address: the one line that says where to look."""
    hint = (f"cannot reach the Cadenza API at {error.target}: start `cadenza dev`, or set "
            f"--address / {ADDRESS_VARIABLE}")
    return f"{hint} ({error.reason})" if error.reason else hint


def _fail(args: argparse.Namespace, error: Exception | str, code: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": code, "message": str(error)}))
    else:
        # One line however long (the terminal wraps it): greppable, never cut mid-word by rich.
        errors.print(f"[bold red]{escape(code)}[/]: {escape(str(error))}", soft_wrap=True)


async def _workflow(args: argparse.Namespace) -> int:
    async with Client(domain=args.domain, target=args.address) as client:
        action = args.action
        if action == "start":
            values = _json_inputs(args.input)
            options: dict[str, Any] = {
                "task_list": args.task_list,
                "execution_start_to_close_timeout": timedelta(seconds=args.execution_timeout),
            }
            if args.workflow_id:
                options["workflow_id"] = args.workflow_id
            if args.decision_timeout:
                options["task_start_to_close_timeout"] = timedelta(seconds=args.decision_timeout)
            if args.reuse_policy:
                options["workflow_id_reuse_policy"] = args.reuse_policy
            options.update(_start_schedule_options(args))
            execution = await client.start_workflow(args.workflow_type, *values, **options)
            _out(args, {"workflow_id": execution.workflow_id, "run_id": execution.run_id},
                 f"started [bold]{escape(execution.workflow_id)}[/] "
                 f"run [cyan]{escape(execution.run_id)}[/]")
        elif action == "describe":
            if args.watch:
                await _watch_describe(client, args)
            else:
                info = await client.describe_workflow(args.workflow_id, args.run_id)
                if args.json:
                    print(json.dumps(info.raw, indent=2))
                else:
                    print_describe(console, info.raw)
        elif action == "show":
            if args.watch:
                await _watch_history(client, args)
                return 0
            with _waiting(f"waiting for {args.workflow_id} to close", enabled=args.wait):
                events = await client.get_workflow_history(args.workflow_id, args.run_id,
                                                           wait_for_close=args.wait)
            if args.json:
                print(json.dumps([e.to_dict() for e in events], indent=2))
            else:
                print_history(console, events, title=_run_title(args))
        elif action == "result":
            with _waiting(f"waiting for the result of {args.workflow_id}"):
                result = await client.get_workflow_result(args.workflow_id, args.run_id,
                                                          timeout=args.timeout)
            _out(args, {"result": result}, f"result: {escape(json.dumps(result))}")
        elif action == "terminate":
            await client.terminate_workflow(args.workflow_id, args.run_id, reason=args.reason)
            _out(args, {"terminated": args.workflow_id},
                 f"terminated {escape(args.workflow_id)}")
        elif action == "reset":
            workflow_id = _reset_workflow_id(args)
            new_run_id = await client.reset_workflow(
                workflow_id, args.run_id, decision_finish_event_id=args.event_id,
                reason=args.reason,
            )
            if args.json:
                print(json.dumps({"workflow_id": workflow_id, "run_id": new_run_id}))
            else:
                print(new_run_id)  # the bare id, for scripts: RUN=$(cadenza workflow reset ...)
        elif action == "query":
            values = _json_inputs(args.input)
            result = await client.query_workflow(args.workflow_id, args.run_id, args.query_type,
                                                 *values)
            _out(args, {"result": result}, f"result: {escape(json.dumps(result))}")
        elif action == "cancel":
            await client.cancel_workflow(args.workflow_id, args.run_id, cause=args.cause)
            _out(args, {"cancel_requested": args.workflow_id},
                 f"cancellation of {escape(args.workflow_id)} requested")
        elif action == "signal":
            values = _json_inputs(args.input)
            await client.signal_workflow(args.workflow_id, args.run_id, args.name, *values)
            _out(args, {"signaled": args.workflow_id, "signal_name": args.name},
                 f"signaled {escape(args.workflow_id)} with {escape(args.name)}")
        elif action == "list":
            if args.page or args.next_page_token:
                runs, token = await client.list_workflows_page(
                    args.query or "", args.page_size, args.next_page_token,
                    status=args.status, workflow_type=args.workflow_type)
                runs = await _with_current_history_lengths(client, runs)
                if args.json:
                    print(json.dumps({"executions": [r.raw for r in runs],
                                      "next_page_token": token}, indent=2))
                else:
                    print_runs(console, runs)
                    if token:
                        console.print(Text(f"next page: --page --next-page-token {token}"),
                                      soft_wrap=True)
            else:
                runs = await client.list_workflows(
                    args.query, status=args.status, workflow_type=args.workflow_type,
                    page_size=None if args.all else args.page_size)
                runs = await _with_current_history_lengths(client, runs)
                if args.json:
                    print(json.dumps([r.raw for r in runs], indent=2))
                else:
                    print_runs(console, runs)
    return 0


def _run_title(args: argparse.Namespace) -> str:
    return f"{args.workflow_id} run {args.run_id}" if args.run_id else args.workflow_id


@contextlib.contextmanager
def _waiting(text: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr during a long wait, only when both stdout and stderr are terminals:
    nothing is written to a pipe or a file (scripts read the output unchanged)."""
    if not (enabled and console.is_terminal and errors.is_terminal):
        yield
        return
    with errors.status(Text(text)):
        yield


async def _with_current_history_lengths(
    client: Client, runs: Sequence[WorkflowExecutionInfo],
) -> list[WorkflowExecutionInfo]:
    """``runs`` with each open run's history length as of now.

    A visibility record is written when its run starts, upserts or closes, so an open run's
    stored length is the one it had then; describe reads the run itself (one request per open
    run listed, a few at a time). A run that closed or vanished meanwhile keeps what was
    listed."""
    limit = asyncio.Semaphore(8)

    async def current(run: WorkflowExecutionInfo) -> WorkflowExecutionInfo:
        if not run.is_open:
            return run
        async with limit:
            try:
                live = await client.describe_workflow(run.workflow_id, run.run_id)
            except EntityNotExistsError:
                return run
        length = live.history_length
        return dataclasses.replace(run, history_length=length,
                                   raw={**run.raw, "history_length": length})

    return list(await asyncio.gather(*(current(run) for run in runs)))


async def _poll_describe(client: Client, args: argparse.Namespace) \
        -> AsyncIterator[WorkflowExecutionInfo]:
    """The run as described now, then again each time its history grows, until it closes."""
    last: tuple[str, int | None] | None = None
    run_id = args.run_id
    while True:
        info = await client.describe_workflow(args.workflow_id, run_id)
        run_id = info.run_id  # the run that was current when the watch began, to its close
        if (info.status, info.history_length) != last:
            last = (info.status, info.history_length)
            yield info
        if not info.is_open:
            return
        await asyncio.sleep(WATCH_INTERVAL)


async def _watch_describe(client: Client, args: argparse.Namespace) -> None:
    """describe --watch: on a terminal one view redrawn in place; elsewhere (and with --json)
    the run again each time it changes. Ends when the run closes, or on Ctrl-C."""
    if args.json or not console.is_terminal:
        async for info in _poll_describe(client, args):
            if args.json:
                print(json.dumps(info.raw), flush=True)
            else:
                print_describe(console, info.raw)
                console.print()
        return
    with Live(console=console, auto_refresh=False) as live:
        async for info in _poll_describe(client, args):
            live.update(describe_view(info.raw), refresh=True)


async def _watch_history(client: Client, args: argparse.Namespace) -> None:
    """show --watch: the history so far, then each new event as it is written, one line each
    (one JSON object per line with --json), until the run closes or Ctrl-C. The run is
    described each second (one small read); its history is read again only when it grew."""
    shown = 0
    async for info in _poll_describe(client, args):
        if shown == 0 and not args.json:
            console.print(Text(f"{info.workflow_id} run {info.run_id}", style="bold"),
                          soft_wrap=True)
        if info.history_length is not None and info.history_length <= shown:
            continue
        # The run that was current when the watch began, followed to its close.
        events = await client.get_workflow_history(args.workflow_id, info.run_id)
        for event in events[shown:]:
            if args.json:
                print(json.dumps(event.to_dict()), flush=True)
            else:
                console.print(event_line(event), soft_wrap=True)
        shown = max(shown, len(events))


def _start_schedule_options(args: argparse.Namespace) -> dict[str, Any]:
    """The start options of --delay-start, --cron and --retry-* (only those given)."""
    options: dict[str, Any] = {}
    if args.delay_start is not None:
        if args.delay_start < 0:
            raise BadRequestError("--delay-start cannot be negative", field="delay_start")
        options["delay_start"] = timedelta(seconds=args.delay_start)
    if args.cron_schedule:
        options["cron_schedule"] = args.cron_schedule
    retry: dict[str, Any] = {}
    for option, key in (("retry_initial_interval", "initial_interval"),
                        ("retry_backoff", "backoff_coefficient"),
                        ("retry_max_interval", "maximum_interval"),
                        ("retry_max_attempts", "maximum_attempts"),
                        ("retry_expiration", "expiration_interval")):
        value = getattr(args, option)
        if value is not None:
            retry[key] = value
    if args.retry_non_retryable:
        retry["non_retryable_error_reasons"] = list(args.retry_non_retryable)
    if retry:
        # RetryPolicy reads durations given in seconds and checks every value.
        options["retry_policy"] = retry
    return options


def _reset_workflow_id(args: argparse.Namespace) -> str:
    given = {value for value in (args.workflow_id, args.workflow_id_option) if value}
    if len(given) != 1:
        raise BadRequestError(
            "give the workflow id once: WORKFLOW_ID or --workflow-id"
            if given else "the workflow id is required (--workflow-id)",
            field="workflow_id",
        )
    return str(given.pop())


async def _activity(args: argparse.Namespace) -> int:
    """Answer for an activity by its task token, from any process (see activity.complete_async).

    The token names the domain, so ``--domain`` changes nothing here.
    """
    async with Client(domain=args.domain, target=args.address) as client:
        action = args.action
        if action == "complete":
            result = None if args.result is None else _json_inputs([args.result])[0]
            await client.complete_activity(args.task_token, result)
            _out(args, {"completed": True}, "activity completed")
        elif action == "fail":
            await client.fail_activity_task(args.task_token, args.reason, args.details)
            _out(args, {"failed": True, "reason": args.reason},
                 f"activity failed: {escape(args.reason)}")
        elif action == "heartbeat":
            details = _json_inputs(args.details)
            stop = await client.record_activity_heartbeat(args.task_token, *details)
            _out(args, {"cancel_requested": stop}, "cancel requested" if stop else "keep going")
    return 0


def _refused_token(error: ServiceError) -> bool:
    """The service refused the task token itself: malformed, forged, of another kind, or
    naming an attempt (or run) that is no longer pending. Exit code 1, not 2."""
    if isinstance(error, BadRequestError):
        return error.field == "task_token"
    return isinstance(error, StaleTaskError | EntityNotExistsError
                      | WorkflowExecutionAlreadyCompletedError)


def _replay(args: argparse.Namespace) -> int:
    """Replay a history file offline; 0 if deterministic, 1 if not, 2 for usage errors.

    Nothing is contacted: this checks a code change against recorded runs before deploying.
    The non-determinism message goes to stderr unwrapped, so it can be read (and grepped) whole.
    """
    # Imported here: the testing package is not needed by the other commands.
    from ..testing._replayer import Replayer, load_history, workflow_type_of

    registry = _registry_from_modules(args.modules)
    try:
        source: Any = sys.stdin.read().encode() if args.file == "-" else Path(args.file)
        events = load_history(source)
    except OSError as error:
        raise BadRequestError(f"cannot read {args.file}: {error.strerror or error}",
                              field="file") from None
    workflow_type = args.workflow_type or workflow_type_of(events)
    try:
        Replayer(registry).replay(events, workflow_type=workflow_type)
    except NonDeterministicError as error:
        print(f"NonDeterministicError: {error}", file=sys.stderr)
        return 1
    print(f"ok: {len(events)} events of {workflow_type} replay deterministically")
    return 0


def _registry_from_modules(names: Sequence[str]) -> Registry:
    """The workflows (and activities) of the named modules.

    A module's ``registry`` (a :class:`~cadenza.Registry`) when it has one; otherwise every
    workflow class and activity definition among its attributes. The current directory is
    importable, as with ``python -m``, so ``--module app.workflows`` finds ./app/workflows.py.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registries: list[Registry] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as error:
            raise BadRequestError(f"cannot import module {name!r}: {type(error).__name__}: "
                                  f"{error}", field="module") from None
        found = getattr(module, "registry", None)
        registries.append(found if isinstance(found, Registry) else _module_registry(module))
    try:
        return Registry.of(*registries)
    except KeyError as error:
        raise BadRequestError(f"the modules clash: {error.args[0]}", field="module") from None


def _module_registry(module: Any) -> Registry:
    found = Registry()
    try:
        for value in list(vars(module).values()):
            if isinstance(value, ActivityDefinition) and value.is_bound:
                found.register_activity(value)
            elif isinstance(value, type | WorkflowDefinition):
                with contextlib.suppress(TypeError):  # a class that is not a workflow
                    found.register_workflow(WorkflowDefinition.of(value))
    except KeyError as error:
        raise BadRequestError(f"module {module.__name__!r}: {error.args[0]}",
                              field="module") from None
    return found


def _json_inputs(texts: Sequence[str]) -> list[Any]:
    """The values of ``-i`` options: JSON text, ``@FILE`` (the file's JSON), or ``-`` (stdin's,
    read once: at most one ``-``)."""
    if sum(1 for text in texts if text == "-") > 1:
        raise BadRequestError("--input - (stdin) can be given once", field="input")
    return [_json_input(text) for text in texts]


def _json_input(text: str) -> Any:
    source = text
    if text == "-":
        text, source = sys.stdin.read(), "- (stdin)"
    elif text.startswith("@"):  # no JSON value starts with @
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise BadRequestError(f"--input {source}: cannot read {text[1:]!r}: "
                                  f"{error.strerror or error}", field="input") from None
    try:
        return json.loads(text)
    except ValueError as error:
        shown = source if source != text else repr(text)
        raise BadRequestError(
            f"--input {shown} is not JSON ({error}); quote a string as '\"text\"'",
            field="input",
        ) from None


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """``data`` as JSON with --json, else ``text`` (rich markup: escape what it quotes)."""
    if args.json:
        print(json.dumps(data))
    else:
        console.print(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
