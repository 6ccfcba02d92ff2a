"""A local stack for the fault runs, and the injector installed for the duration of each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cadenza.local import LocalStack

from .harness import Injector
from .runner import Outcome, Runner

#: The timer queue's visibility timeout on this stack. template.yaml gives 180 s (six times
#: the function's timeout, as AWS advises); a timer whose invocation died comes back after it,
#: so a shorter one stands for a deployment whose timer function has a 0.5 s timeout, and lets
#: a run whose timer invocation crashed finish in seconds. Nothing depends on its length.
TIMER_QUEUE_VISIBILITY_SECONDS = 3
#: Pollers per SQS event source: Lambda runs a queue's batches concurrently, and one batch
#: whose calls botocore is backing off from must not hold up every other run's timers.
SQS_POLLERS = 4


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[LocalStack]:
    """Module-scoped, not session-scoped: a running stack sets its environment in os.environ
    (the handlers read it), so it must not outlive the tests that use it while another
    module's stack serves other tests in this process."""
    with LocalStack(api_port=0, stack_name="faults", sqs_pollers=SQS_POLLERS) as stack:
        stack.client("sqs").set_queue_attributes(
            QueueUrl=stack.queue_url("TimerQueue"),
            Attributes={"VisibilityTimeout": str(TIMER_QUEUE_VISIBILITY_SECONDS)},
        )
        yield stack


@pytest.fixture(scope="module")
def recordings() -> dict[str, Outcome]:
    """The fault-free run of each scenario, made once per stack by the first test that needs
    it: its calls are the injection points."""
    return {}


@pytest.fixture
async def runner(fault_stack: LocalStack) -> AsyncIterator[Runner]:
    injector = Injector()
    injector.install()
    runner = Runner(fault_stack, injector)
    try:
        yield runner
    finally:
        await runner.close()
        injector.uninstall()
