"""The AWS Lambda durable functions local test runner (PyPI
``aws-durable-execution-sdk-python-testing``, with its SDK ``aws-durable-execution-sdk-python``).

A durable function is one handler written as steps and waits; the runner
(``DurableFunctionTestRunner``) runs it in process against an in-memory checkpoint service, with
its skip clock (``skip_time=True``, the default) jumping over waits. A runner takes one handler,
so the session builds one runner per workflow, once, and reuses it for every run (each run a new
execution name). The three workflows:

- a: ten ``context.step(work(i))`` calls, then ``context.wait(Duration.from_hours(1))``;
- b: ``context.map(range(100), ...)`` whose every item runs ``ctx.step(work(item))`` (all items
  at once: ``max_concurrency`` is unset);
- c: ``context.create_callback(name="go")`` and ``callback.result()``, then one step; the test
  side calls ``run_async``, ``wait_for_callback`` (it polls the history every ``poll_interval``,
  set here to 1 ms instead of the default 1 s, which would dominate), ``send_callback_success``
  and ``wait_for_result``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from importlib import metadata
from typing import Any

from .timing import NoServer

EXECUTION_TIMEOUT = 86_400  # seconds of (skipped) time: the one-hour wait must fit
WAIT_TIMEOUT = 60  # real seconds the runner may block for a result
POLL_INTERVAL = 0.001


def _build_handlers() -> dict[str, Callable[..., Any]]:
    from aws_durable_execution_sdk_python.config import Duration
    from aws_durable_execution_sdk_python.context import DurableContext, durable_step
    from aws_durable_execution_sdk_python.execution import durable_execution

    @durable_step
    def work(step_context: Any, value: int) -> int:
        return value + 1

    @durable_execution
    def sequential(event: Any, context: DurableContext) -> int:
        total = 0
        for index in range(10):
            total += context.step(work(index))
        context.wait(Duration.from_hours(1))
        return total

    @durable_execution
    def parallel(event: Any, context: DurableContext) -> int:
        batch: Any = context.map(
            list(range(100)), lambda ctx, item, _index, _items: ctx.step(work(item))
        )
        return sum(batch.get_results())

    @durable_execution
    def signalled(event: Any, context: DurableContext) -> int:
        context.create_callback(name="go").result()
        return context.step(work(41))

    return {"a": sequential, "b": parallel, "c": signalled}


class _AwsSession(NoServer):
    def __init__(self, runners: dict[str, Any]) -> None:
        self.runners = runners
        self.names = itertools.count()

    async def run(self, key: str) -> int:
        from aws_durable_execution_sdk_python.execution import InvocationStatus

        runner = self.runners[key]
        name = f"bench-{key}-{next(self.names)}"
        if key == "c":
            arn = runner.run_async(
                input="{}", execution_timeout=EXECUTION_TIMEOUT, execution_name=name
            )
            callback_id = runner.wait_for_callback(arn, name="go", timeout=WAIT_TIMEOUT)
            runner.send_callback_success(callback_id, result=b'"go"')
            outcome = runner.wait_for_result(arn, timeout=WAIT_TIMEOUT)
        else:
            outcome = runner.run(
                input="{}", execution_timeout=EXECUTION_TIMEOUT, execution_name=name
            )
        if outcome.status is not InvocationStatus.SUCCEEDED:
            raise AssertionError(f"workflow {key}: {outcome.status} {outcome.error}")
        return int(outcome.result)  # the runner returns the JSON text of the result


class AwsDurablePeer:
    name = "aws"
    label = "AWS durable functions `DurableFunctionTestRunner`"
    run_rule = (
        "one runner per workflow (it takes one handler), created once and reused; a run is "
        "run() -> result, or for c run_async -> wait_for_callback -> send_callback_success -> "
        "wait_for_result; skip clock on, poll_interval 1 ms"
    )
    notes = (
        "(c) waits on a callback, its form of a signal. Its wall time is mostly idle (compare "
        "its CPU): each Lambda invocation ends when the SDK's checkpoint thread notices its stop "
        "signal, which it polls every 100 ms (`_STOP_SIGNAL_POLL_SECONDS` in "
        "aws_durable_execution_sdk_python/state.py); (a) and (c) take two invocations (before "
        "and after the wait or the callback). Measured as shipped; with that constant patched "
        "to 1 ms in a one-off check the runs took about 20, 45 and 7 ms"
    )

    def unavailable(self) -> str | None:
        try:
            import aws_durable_execution_sdk_python_testing.runner  # noqa: F401
        except ImportError as error:
            return (
                f"aws-durable-execution-sdk-python-testing is not installed ({error}); "
                "pip install -e '.[bench]'"
            )
        return None

    def versions(self) -> dict[str, str]:
        return {
            package: metadata.version(package)
            for package in (
                "aws-durable-execution-sdk-python",
                "aws-durable-execution-sdk-python-testing",
            )
        }

    @asynccontextmanager
    async def session(self) -> AsyncIterator[_AwsSession]:
        from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

        with ExitStack() as stack:
            runners = {
                key: stack.enter_context(
                    DurableFunctionTestRunner(handler=handler, poll_interval=POLL_INTERVAL)
                )
                for key, handler in _build_handlers().items()
            }
            yield _AwsSession(runners)


PEER = AwsDurablePeer()
