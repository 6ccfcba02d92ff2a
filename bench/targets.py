"""Issue 8's local-stack targets that are not request counts: timers firing on time.

(Throughput at concurrency 50 and the single-workflow latency come from ``bench.run.latency``.)
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from cadenza import Client, Registry, Worker, workflow
from cadenza.core import EventType
from cadenza.local import LocalStack

registry = Registry()


@registry.workflow()
class Sleeper:
    @workflow.run
    async def run(self, seconds: int) -> int:
        await workflow.sleep(timedelta(seconds=seconds))
        return seconds


async def timer_lateness(stack: LocalStack, count: int = 20, seconds: int = 3) \
        -> dict[str, float]:
    """``count`` workflows each sleeping ``seconds``, started together: how late each timer
    fired (TimerFired's time minus TimerStarted's minus the duration; never negative by
    invariant 5). Seconds, sorted."""
    task_list = f"timers-{uuid.uuid4().hex[:6]}"
    async with Client(target=stack.api_url) as client, Worker(client, task_list, registry):
        runs = await asyncio.gather(*(
            client.start_workflow(Sleeper, seconds, task_list=task_list,
                                  execution_start_to_close_timeout=timedelta(minutes=10))
            for _ in range(count)))
        await asyncio.gather(*(client.get_workflow_result(run.workflow_id,
                                                          timeout=timedelta(minutes=2))
                               for run in runs))
        late = []
        for run in runs:
            events = await client.get_workflow_history(run.workflow_id)
            started = next(e for e in events if e.event_type is EventType.TimerStarted)
            fired = next(e for e in events if e.event_type is EventType.TimerFired)
            late.append((fired.timestamp - started.timestamp).total_seconds() - seconds)
    late.sort()
    return {"timers": count, "seconds": seconds, "p50_late_s": late[len(late) // 2],
            "p99_late_s": late[min(len(late) - 1, int(0.99 * len(late)))],
            "max_late_s": late[-1], "min_late_s": late[0]}
