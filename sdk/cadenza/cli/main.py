"""Argument parsing and dispatch of the ``cadenza`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .._activity_definition import ActivityDefinition
from .._workflow_definition import WorkflowDefinition
from ..client import Client, WorkflowExecutionInfo
from ..core import HistoryEvent
from ..error import (
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

DEFAULT_ADDRESS = os.environ.get("CADENZA_ADDRESS", "http://127.0.0.1:7933")

console = Console()
errors = Console(stderr=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadenza", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the embedded local stack until Ctrl-C")
    dev.add_argument("--port", type=int, default=7933, help="HTTP API port (default 7933)")
    dev.add_argument("--emulator-port", type=int, default=None,
                     help="moto server port (default: a free port)")
    dev.add_argument("--aws-endpoint", default=None, metavar="URL",
                     help="use this AWS endpoint (e.g. LocalStack's http://localhost:4566) "
                          "instead of starting moto (default: $CADENZA_AWS_ENDPOINT)")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=DEFAULT_ADDRESS, help="HTTP API URL")
    common.add_argument("--domain", default="default")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    workflow = commands.add_parser("workflow", help="work with workflow executions")
    actions = workflow.add_subparsers(dest="action", required=True)

    start = actions.add_parser("start", parents=[common], help="start a workflow")
    start.add_argument("workflow_type")
    start.add_argument("--task-list", "--tl", required=True)
    start.add_argument("--execution-timeout", type=float, required=True,
                       help="execution_start_to_close_timeout in seconds")
    start.add_argument("--decision-timeout", type=float, default=None,
                       help="task_start_to_close_timeout in seconds")
    start.add_argument("--workflow-id", "--wid", default=None)
    start.add_argument("--input", "-i", action="append", default=[],
                       help="one JSON argument (repeat for several)")
    start.add_argument("--reuse-policy", default=None)
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

    for name, text in (("describe", "show a run's state"), ("show", "show a run's history"),
                       ("result", "wait for a run's result")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("workflow_id")
        action.add_argument("--run-id", "--rid", default="")
        if name == "result":
            action.add_argument("--timeout", type=float, default=None)

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
    query.add_argument("--input", "-i", action="append", default=[],
                       help="one JSON argument (repeat for several)")

    cancel = actions.add_parser("cancel", parents=[common], help="ask a run to cancel")
    cancel.add_argument("workflow_id")
    cancel.add_argument("--run-id", "--rid", default="")
    cancel.add_argument("--cause", default="cancelled from the command line")

    signal = actions.add_parser("signal", parents=[common], help="send a signal to a run")
    signal.add_argument("workflow_id")
    signal.add_argument("--run-id", "--rid", default="")
    signal.add_argument("--name", "-n", required=True, help="signal name")
    signal.add_argument("--input", "-i", action="append", default=[],
                        help="one JSON argument (repeat for several)")

    listing = actions.add_parser("list", parents=[common], help="list runs, newest first")
    listing.add_argument("--status", type=str.lower, default=None,
                         choices=["open", "closed", "completed", "failed", "canceled",
                                  "terminated", "continued_as_new", "timed_out"])
    listing.add_argument("--type", dest="workflow_type", default=None)
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

    replay = actions.add_parser(
        "replay", help="replay a stored history (show --json) against today's workflow code")
    replay.add_argument("file", help="history JSON file written by show --json ('-': stdin)")
    replay.add_argument("--module", "-m", dest="modules", action="append", required=True,
                        metavar="MODULE",
                        help="module holding the workflows: its 'registry', else every "
                             "workflow class in it (repeat for several)")
    replay.add_argument("--workflow-type", default=None,
                        help="workflow type to replay (default: the one history names)")

    activity = commands.add_parser(
        "activity", help="answer for an activity by its task token (one completed later)")
    activity_actions = activity.add_subparsers(dest="action", required=True)
    complete = activity_actions.add_parser("complete", parents=[common],
                                           help="complete an activity with a result")
    complete.add_argument("task_token")
    complete.add_argument("--input", "-i", "--result", dest="result", default=None,
                          metavar="JSON", help="the result as JSON (default: null)")
    fail = activity_actions.add_parser("fail", parents=[common], help="fail an activity")
    fail.add_argument("task_token")
    fail.add_argument("--reason", required=True, help="the failure's reason")
    fail.add_argument("--details", default=None, help="the failure's details (text)")
    heartbeat = activity_actions.add_parser(
        "heartbeat", parents=[common],
        help="record an activity's progress; says whether it should stop")
    heartbeat.add_argument("task_token")
    heartbeat.add_argument("--input", "-i", dest="details", action="append", default=[],
                           metavar="JSON", help="one JSON heartbeat detail (repeat for several)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "dev":
            from .dev import run_dev

            return run_dev(api_port=args.port, emulator_port=args.emulator_port,
                           aws_endpoint=args.aws_endpoint)
        if args.command == "workflow" and args.action == "replay":
            return _replay(args)
        if args.command == "activity":
            return asyncio.run(_activity(args))
        return asyncio.run(_workflow(args))
    except WorkflowFailure as error:
        _fail(args, error, "WorkflowFailure")
        return 3
    except ServiceError as error:
        _fail(args, error, error.code)
        return 1 if args.command == "activity" and _refused_token(error) else 2
    except CadenzaError as error:
        _fail(args, error, type(error).__name__)
        return 2
    except KeyboardInterrupt:
        return 130


def _fail(args: argparse.Namespace, error: Exception, code: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": code, "message": str(error)}))
    else:
        errors.print(f"[bold red]{escape(code)}[/]: {escape(str(error))}")


async def _workflow(args: argparse.Namespace) -> int:
    async with Client(domain=args.domain, target=args.address) as client:
        action = args.action
        if action == "start":
            values = [_json_input(text) for text in args.input]
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
            info = await client.describe_workflow(args.workflow_id, args.run_id)
            if args.json:
                print(json.dumps(info.raw, indent=2))
            else:
                _describe(info)
        elif action == "show":
            events = await client.get_workflow_history(args.workflow_id, args.run_id)
            if args.json:
                print(json.dumps([e.to_dict() for e in events], indent=2))
            else:
                console.print(history_table(events, title=args.workflow_id))
        elif action == "result":
            timeout = args.timeout
            result = await client.get_workflow_result(args.workflow_id, args.run_id,
                                                      timeout=timeout)
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
            values = [_json_input(text) for text in args.input]
            result = await client.query_workflow(args.workflow_id, args.run_id, args.query_type,
                                                 *values)
            _out(args, {"result": result}, f"result: {escape(json.dumps(result))}")
        elif action == "cancel":
            await client.cancel_workflow(args.workflow_id, args.run_id, cause=args.cause)
            _out(args, {"cancel_requested": args.workflow_id},
                 f"cancellation of {escape(args.workflow_id)} requested")
        elif action == "signal":
            values = [_json_input(text) for text in args.input]
            await client.signal_workflow(args.workflow_id, args.run_id, args.name, *values)
            _out(args, {"signaled": args.workflow_id, "signal_name": args.name},
                 f"signaled {escape(args.workflow_id)} with {escape(args.name)}")
        elif action == "list":
            if args.page or args.next_page_token:
                runs, token = await client.list_workflows_page(
                    args.query or "", args.page_size, args.next_page_token,
                    status=args.status, workflow_type=args.workflow_type)
                if args.json:
                    print(json.dumps({"executions": [r.raw for r in runs],
                                      "next_page_token": token}, indent=2))
                else:
                    console.print(runs_table(runs))
                    if token:
                        console.print(f"next page: --page --next-page-token {escape(token)}")
            else:
                runs = await client.list_workflows(
                    args.query, status=args.status, workflow_type=args.workflow_type,
                    page_size=None if args.all else args.page_size)
                if args.json:
                    print(json.dumps([r.raw for r in runs], indent=2))
                else:
                    console.print(runs_table(runs))
    return 0


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
    return given.pop()


async def _activity(args: argparse.Namespace) -> int:
    """Answer for an activity by its task token, from any process (see activity.complete_async).

    The token names the domain, so ``--domain`` changes nothing here.
    """
    async with Client(domain=args.domain, target=args.address) as client:
        action = args.action
        if action == "complete":
            result = None if args.result is None else _json_input(args.result)
            await client.complete_activity(args.task_token, result)
            _out(args, {"completed": True}, "activity completed")
        elif action == "fail":
            await client.fail_activity_task(args.task_token, args.reason, args.details)
            _out(args, {"failed": True, "reason": args.reason},
                 f"activity failed: {escape(args.reason)}")
        elif action == "heartbeat":
            details = [_json_input(text) for text in args.details]
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


def _json_input(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise BadRequestError(
            f"--input {text!r} is not JSON ({error}); quote a string as '\"text\"'",
            field="input",
        ) from None


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """``data`` as JSON with --json, else ``text`` (rich markup: escape what it quotes)."""
    if args.json:
        print(json.dumps(data))
    else:
        console.print(text)


def _describe(info: WorkflowExecutionInfo) -> None:
    # Text, not str: ids and payloads are data, never rich markup ("[/]" would not print).
    table = Table(show_header=False, title=Text(info.workflow_id))
    for key, value in info.raw.items():
        table.add_row(Text(key),
                      Text(json.dumps(value) if isinstance(value, dict | list) else str(value)))
    console.print(table)


def history_table(events: Sequence[HistoryEvent], *, title: str = "history") -> Table:
    table = Table(title=Text(title))
    table.add_column("id", justify="right")
    table.add_column("time")
    table.add_column("event")
    table.add_column("attributes", overflow="fold")
    for event in events:
        attributes = {
            k: _short(v) for k, v in event.attributes.items() if v not in (None, "", {}, [])
        }
        table.add_row(str(event.event_id), event.timestamp.strftime("%H:%M:%S.%f")[:-3],
                      str(event.event_type), Text(json.dumps(attributes)))
    return table


def _short(value: Any, limit: int = 80) -> Any:
    """Long payloads (stack traces, big inputs) cut to their first line and ``limit`` characters."""
    if not isinstance(value, str):
        return value
    first = value.splitlines()[0] if value else value
    return first if len(first) <= limit and first == value else first[:limit] + " …"


def runs_table(runs: Sequence[WorkflowExecutionInfo]) -> Table:
    table = Table(title="workflow executions")
    for column in ("workflow id", "run id", "type", "status", "started", "closed"):
        table.add_column(column)
    for run in runs:
        table.add_row(Text(run.workflow_id), Text(run.run_id), Text(run.workflow_type),
                      run.status,
                      run.start_time.isoformat(timespec="seconds"),
                      run.close_time.isoformat(timespec="seconds") if run.close_time else "")
    return table


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
