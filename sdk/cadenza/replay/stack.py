"""The ``__stack_trace`` query: where each coroutine of a replayed run is waiting.

Cadence workers answer the built-in ``__stack_trace`` query with the stacks of the workflow's
goroutines; ours are the asyncio tasks of the run's deterministic event loop (the ``run``
method, signal handlers, tasks the workflow created). After a query's replay every task that
is not done is suspended at an ``await``: walking each coroutine's ``cr_await`` chain gives its
frames from the outermost call to the innermost ``await``, the same picture a traceback would
show. Only the answer to a query is built here; nothing feeds back into decisions, so reading
the source lines (as :mod:`traceback` does, through :mod:`linecache`) keeps replay
deterministic.
"""

from __future__ import annotations

import asyncio
import linecache
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

__all__ = ["STACK_TRACE_QUERY", "Frame", "TaskStack", "format_stacks", "task_stacks"]

#: The query type Cadence's clients and UIs send for a run's current stacks.
STACK_TRACE_QUERY = "__stack_trace"

#: Frames of these modules are machinery around the workflow's code (the loop, the replayer's
#: wrappers of ``run`` and of signal handlers), not where it waits.
_HIDDEN_PREFIXES = ("asyncio.", "cadenza.replay.")


@dataclass(frozen=True, slots=True)
class Frame:
    filename: str
    line: int
    function: str
    source: str


@dataclass(frozen=True, slots=True)
class TaskStack:
    """One suspended coroutine chain, numbered in creation order, frames outermost first."""

    number: int
    frames: tuple[Frame, ...]


def task_stacks(tasks: Sequence[asyncio.Task[Any]]) -> list[TaskStack]:
    """The stacks of the tasks that are still pending, in creation order."""
    stacks: list[TaskStack] = []
    for number, task in enumerate(tasks, start=1):
        if task.done():
            continue
        frames = tuple(_frames(task.get_coro()))
        stacks.append(TaskStack(number=number, frames=frames))
    return stacks


def format_stacks(stacks: Sequence[TaskStack]) -> str:
    """Traceback-style text: one block per coroutine, innermost ``await`` last."""
    if not stacks:
        return "no coroutine is waiting (the run's code has finished)\n"
    blocks: list[str] = []
    for stack in stacks:
        entry = stack.frames[0].function if stack.frames else "?"
        lines = [f"coroutine {stack.number} ({entry}):"]
        for frame in stack.frames:
            lines.append(f'  File "{frame.filename}", line {frame.line}, in {frame.function}')
            if frame.source:
                lines.append(f"    {frame.source}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _frames(coroutine: Any) -> Iterator[Frame]:
    """Follow ``cr_await`` (coroutines) and ``gi_yieldfrom`` (generators) down to the leaf."""
    seen: set[int] = set()
    current = coroutine
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frame: FrameType | None = getattr(current, "cr_frame", None) or getattr(
            current, "gi_frame", None)
        if frame is not None and not _hidden(frame):
            yield _frame(frame.f_code, frame.f_lineno, frame.f_globals)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)


def _hidden(frame: FrameType) -> bool:
    module = str(frame.f_globals.get("__name__", ""))
    return module.startswith(_HIDDEN_PREFIXES)


def _frame(code: CodeType, line: int, module_globals: dict[str, Any]) -> Frame:
    source = linecache.getline(code.co_filename, line, module_globals).strip()
    return Frame(filename=code.co_filename, line=line, function=code.co_qualname,
                 source=source)
