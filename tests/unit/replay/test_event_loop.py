"""The deterministic event loop on its own: ordering, asyncio primitives, refused APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from cadenza.replay.loop import DeterministicEventLoop, WorkflowStuckError


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[Any]:
    loop = DeterministicEventLoop()  # type: ignore[abstract]
    task = loop.create_task(main())
    loop.run_until_idle()
    return task


def test_tasks_interleave_in_a_fixed_fifo_order() -> None:
    trace: list[str] = []

    async def worker(name: str, steps: int) -> str:
        for step in range(steps):
            trace.append(f"{name}{step}")
            await asyncio.sleep(0)
        return name

    async def main() -> list[str]:
        return await asyncio.gather(worker("a", 3), worker("b", 2), worker("c", 1))

    task = run(main)

    assert task.result() == ["a", "b", "c"]
    assert trace == ["a0", "b0", "c0", "a1", "b1", "a2"]
    # Same code, same order: every run.
    again: list[str] = []
    trace_copy = list(trace)
    trace.clear()
    run(main)
    again = list(trace)
    assert again == trace_copy


def test_loop_stops_when_idle_and_resumes_when_a_future_resolves() -> None:
    loop = DeterministicEventLoop()  # type: ignore[abstract]
    future: asyncio.Future[int] = loop.create_future()

    async def main() -> int:
        return await future + 1

    task = loop.create_task(main())
    loop.run_until_idle()
    assert not task.done()

    future.set_result(41)
    loop.run_until_idle()
    assert task.result() == 42


def test_asyncio_primitives_work() -> None:
    async def main() -> list[Any]:
        event = asyncio.Event()
        lock = asyncio.Lock()
        queue: asyncio.Queue[int] = asyncio.Queue()
        order: list[Any] = []

        async def producer() -> None:
            for item in range(3):
                await queue.put(item)
            async with lock:
                order.append("producer locked")
            event.set()

        async def consumer() -> None:
            await event.wait()
            while not queue.empty():
                order.append(await queue.get())

        async with asyncio.TaskGroup() as group:
            group.create_task(consumer())
            group.create_task(producer())
        order.append(asyncio.current_task() is not None)
        return order

    assert run(main).result() == ["producer locked", 0, 1, 2, True]


def test_task_cancel_delivers_cancelled_error() -> None:
    async def main() -> str:
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def waiter() -> None:
            await never

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return f"cancelled, inner future cancelled={never.cancelled()}"
        return "not cancelled"

    assert run(main).result() == "cancelled, inner future cancelled=True"


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (lambda: asyncio.sleep(0.1), "workflow.sleep"),
        (
            lambda: asyncio.wait_for(asyncio.get_running_loop().create_future(), timeout=1),
            "wait_condition",
        ),
        (lambda: asyncio.to_thread(print), "activity"),
    ],
)
def test_time_and_thread_apis_raise_a_clear_error(
    code: Callable[[], Coroutine[Any, Any, Any]], hint: str
) -> None:
    async def main() -> None:
        coroutine = code()
        try:
            await coroutine
        finally:
            coroutine.close()

    task = run(main)

    error = task.exception()
    assert isinstance(error, RuntimeError)
    assert hint in str(error)


def test_timeout_context_manager_is_refused() -> None:
    async def main() -> None:
        async with asyncio.timeout(1):
            pass

    error = run(main).exception()
    assert isinstance(error, RuntimeError)
    assert "workflow" in str(error)


def test_busy_loop_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cadenza.replay.loop._MAX_STEPS", 1000)

    async def spin() -> None:
        while True:
            await asyncio.sleep(0)

    loop = DeterministicEventLoop()  # type: ignore[abstract]
    loop.create_task(spin())
    with pytest.raises(WorkflowStuckError):
        loop.run_until_idle()


def test_conditions_are_checked_when_idle_in_registration_order() -> None:
    loop = DeterministicEventLoop()  # type: ignore[abstract]
    state = {"n": 0}
    order: list[str] = []

    async def wait(name: str, predicate: Callable[[], bool]) -> None:
        await loop.create_condition(predicate)
        order.append(name)
        state["n"] += 1

    loop.create_task(wait("second", lambda: state["n"] >= 1))
    loop.create_task(wait("first", lambda: True))
    loop.run_until_idle()

    # "first" was satisfiable at once; its effect then satisfied "second".
    assert order == ["first", "second"]


def test_exception_in_a_callback_surfaces_from_run_until_idle() -> None:
    loop = DeterministicEventLoop()  # type: ignore[abstract]

    def explode() -> None:
        raise KeyError("internal")

    loop.call_soon(explode)
    with pytest.raises(KeyError, match="internal"):
        loop.run_until_idle()


def test_running_inside_another_loop_restores_it() -> None:
    async def outer() -> bool:
        before = asyncio.get_running_loop()
        run(lambda: asyncio.sleep(0))
        return asyncio.get_running_loop() is before

    assert asyncio.run(outer())
