"""Worker options: Cadence's names, validation, and the activity start pace."""

from __future__ import annotations

import pytest

from cadenza import Client, Registry, Worker
from cadenza.worker import WorkerOptions, _Pace


def test_cadence_option_names_are_accepted_and_unknown_ones_refused() -> None:
    client = Client(target="127.0.0.1:7933")
    worker = Worker(client, "tl", Registry(), max_concurrent_activity_execution_size=5,
                    decision_task_pollers=2, identity="me", task_list_activities_per_second=3)
    assert worker.task_list == "tl" and worker.client is client
    with pytest.raises(TypeError, match="max_concurrent_activities"):
        Worker(client, "tl", Registry(), max_concurrent_activities=5)
    with pytest.raises(ValueError, match="activity_task_pollers"):
        WorkerOptions(activity_task_pollers=0)
    with pytest.raises(ValueError, match="task_list"):
        Worker(client, "", Registry())


async def test_pace_spaces_starts_by_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pace = _Pace(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await pace.wait()
    assert slept == [0.25, 0.25]  # the first start is immediate
    now[0] += 10  # idle for a while: no burst credit is owed, the next start is immediate
    await pace.wait()
    assert slept == [0.25, 0.25]
