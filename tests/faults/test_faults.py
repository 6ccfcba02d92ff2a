"""Faults at every AWS call of the start, decision, activity, timer, signal and child paths
(docs/design.md, "Fault injection").

Each scenario is first run without a fault, recording its AWS calls: every (operation, actor,
site) it makes is an injection point. Then, for each fault kind, each point gets one run with
that fault at its first call (``CADENZA_FAULTS=full``: at every call the recording made there,
in every scenario). Runs of one test go concurrently, each on its own task list with its own
worker; every run must finish, with the expected result, a dense history and nothing recorded
or executed twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from .harness import Call, Fault, FaultKind
from .runner import Outcome, Runner
from .scenarios import ALL_SCENARIOS, SCENARIOS

#: CADENZA_FAULTS=full: every recorded call of every point, in every scenario.
FULL = os.environ.get("CADENZA_FAULTS", "").lower() == "full"
#: Runs in flight at once (each has a worker and its long polls).
CONCURRENCY = int(os.environ.get("CADENZA_FAULTS_CONCURRENCY", "32"))
#: One test sweeps a whole scenario (dozens of runs, each with its own worker restarts): on a
#: loaded 2-core machine that takes longer than the suite's 120 s per-test limit.
pytestmark = pytest.mark.timeout(600)

#: A known bug's run ends in a timeout or a hang: this bound is long enough for the run to
#: finish if the bug were fixed (its recovery takes a decision task's visibility, 10 s).
KNOWN_BUG_BOUND = 25.0
#: In the full sweep, at most this many calls per point (a worker's receives go on forever).
FULL_OCCURRENCES = 4

#: Operations that change nothing: a crash after one is a crash before it (the answer is lost
#: either way), and a 500 botocore retries is a throttle it retried. They get those two kinds.
READS = frozenset({"Query", "GetItem", "BatchGetItem", "Scan", "GetQueueUrl",
                   "GetQueueAttributes", "GetSchedule", "ListSchedules"})
READ_KINDS = (FaultKind.CRASH_BEFORE, FaultKind.THROTTLE)


@dataclass(frozen=True, slots=True)
class KnownBug:
    """A fault that broke an invariant when the harness was written (all four are fixed now:
    worker answers retried on 5xx, activity starts by request id, a BaseException-safe group
    commit leader): run by test_known_bug as a regression test, and left out of the sweep."""

    scenario: str
    fault: Fault
    reason: str
    #: False: a crashed invocation's sandbox is not replaced (see Injector).
    fresh_sandboxes: bool = True


_COMPLETE = "store.append < engine.complete_activity_task"
_START = "store.append < engine.start_activity_task"
_DECIDE = "store.append < engine.complete_decision_task"
_GIVES_UP = (
    "the worker gives up on a 5xx answer to its activity completion (_tasks._answer retries "
    "ServiceBusyError only): the finished result is lost, the attempt times out and a run "
    "without a retry policy fails")
KNOWN_BUGS: tuple[KnownBug, ...] = (
    KnownBug("activity-once", Fault("PutItem", "api", _COMPLETE, 1, FaultKind.CRASH_BEFORE),
             f"{_GIVES_UP} (here: the API function died, so the API answered 500)"),
    KnownBug("activity-once", Fault("PutItem", "api", _COMPLETE, 1, FaultKind.THROTTLE),
             f"{_GIVES_UP} (here: DynamoDB throttled the commit past botocore's retries and "
             "the API answered 500, not 503 ServiceBusyError)"),
    KnownBug("activity-once", Fault("PutItem", "api", _START, 1, FaultKind.CRASH_AFTER),
             "an activity start whose answer was lost cannot be retried: the attempt is "
             "recorded started and every retry or redelivery of its task is refused "
             "ActivityTaskAlreadyStartedError, so the attempt is lost until its timeout"),
    KnownBug("activity", Fault("PutItem", "api", _DECIDE, 1, FaultKind.CRASH_BEFORE),
             "CommitCombiner._lead catches Exception only: a BaseException in the leader's "
             "commit leaves the run in _leaders for good, and every later command on that run "
             "in this process waits forever", fresh_sandboxes=False),
)


async def _recordings(runner: Runner, recordings: dict[str, Outcome]) -> dict[str, Outcome]:
    missing = [name for name in SCENARIOS if name not in recordings]
    outcomes = await asyncio.gather(*(runner.run(SCENARIOS[name], None) for name in missing))
    for name, outcome in zip(missing, outcomes, strict=True):
        assert not outcome.problems, f"{name} fails without any fault: {outcome.problems}"
        recordings[name] = outcome
    return recordings


def injection_points(recordings: Mapping[str, Outcome], scenario: str) -> list[Call]:
    """The calls of ``scenario``'s recording that get a fault.

    Default: the first call of each point, in the first scenario (in SCENARIOS order) that
    makes it. Full: every call of each point up to FULL_OCCURRENCES, in every scenario."""
    if FULL:
        return [call for call in recordings[scenario].calls
                if call.occurrence <= FULL_OCCURRENCES]
    earlier = {call.point for name in SCENARIOS if name != scenario
               for call in recordings[name].calls
               if list(SCENARIOS).index(name) < list(SCENARIOS).index(scenario)}
    return [call for call in recordings[scenario].calls
            if call.occurrence == 1 and call.point not in earlier]


def _runs(calls: list[Call]) -> int:
    return sum(len(READ_KINDS) if call.operation in READS else len(FaultKind) for call in calls)


def _known(scenario: str, fault: Fault) -> bool:
    return any(bug.scenario == scenario and bug.fault == fault and bug.fresh_sandboxes
               for bug in KNOWN_BUGS)


async def _run_all(runner: Runner, scenario: str, faults: list[Fault]) -> list[Outcome]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(fault: Fault) -> Outcome:
        async with limit:
            return await runner.run(SCENARIOS[scenario], fault)

    return list(await asyncio.gather(*(one(fault) for fault in faults)))


def _report(outcomes: list[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        status = "FAIL" if outcome.problems else "ok"
        lines.append(f"{status:4} {outcome.seconds:5.1f}s restarts={outcome.restarts} "
                     f"{outcome.label}")
        lines += [f"       - {problem}" for problem in outcome.problems]
    return "\n".join(lines)


async def test_each_scenario_runs_clean_and_covers_its_paths(
    runner: Runner, recordings: dict[str, Outcome],
) -> None:
    recorded = await _recordings(runner, recordings)
    operations = {name: {call.operation for call in outcome.calls}
                  for name, outcome in recorded.items()}
    actors = {name: {call.actor for call in outcome.calls} for name, outcome in recorded.items()}
    # Every path has AWS calls to fault: the engine's commits and reads, the task lists'
    # sends, receives and deletes, a long timer's schedule, the stream and timer functions.
    for name in SCENARIOS:
        assert {"Query", "PutItem", "SendMessageBatch", "ReceiveMessage", "DeleteMessage"} \
            <= operations[name], name
        assert {"worker", "api", "stream"} <= actors[name], name
    assert "timer" in actors["timer"]
    assert "CreateSchedule" in operations["signal"]
    assert any("_start_child" in call.site for call in recorded["child"].calls)
    chosen = [call for name in SCENARIOS for call in injection_points(recorded, name)]
    print(f"\n{len(chosen)} injection points, {_runs(chosen)} runs"
          f" ({'full' if FULL else 'default'} sweep)")
    full = [call for outcome in recorded.values() for call in outcome.calls
            if call.occurrence <= FULL_OCCURRENCES]
    print(f"the full sweep: {len(full)} calls, {_runs(full)} runs")
    for name in SCENARIOS:
        for call in injection_points(recorded, name):
            print(f"  {name:8} {call}")


#: The sweep's tests: a scenario and the kinds of fault it gets (the largest scenario in two
#: halves, so that pytest-xdist can spread them).
CRASHES = (FaultKind.CRASH_BEFORE, FaultKind.CRASH_AFTER)
ERRORS = (FaultKind.THROTTLE, FaultKind.SERVER_ERROR)
SWEEP = {
    "activity-crashes": ("activity", CRASHES),
    "activity-errors": ("activity", ERRORS),
    "timer": ("timer", tuple(FaultKind)),
    "signal": ("signal", tuple(FaultKind)),
    "child": ("child", tuple(FaultKind)),
}


@pytest.mark.parametrize("part", list(SWEEP))
async def test_faults(runner: Runner, recordings: dict[str, Outcome], part: str) -> None:
    """Each fault kind of the part at each injection point of its scenario, concurrently."""
    scenario, kinds = SWEEP[part]
    recorded = await _recordings(runner, recordings)
    faults = [Fault.at(call, kind) for kind in kinds
              for call in injection_points(recorded, scenario)
              if call.operation not in READS or kind in READ_KINDS]
    faults = [fault for fault in faults if not _known(scenario, fault)]
    outcomes = await _run_all(runner, scenario, faults)
    report = _report(outcomes)
    print(f"\n{part}: {len(outcomes)} runs\n{report}")
    failed = [outcome for outcome in outcomes if outcome.problems]
    assert not failed, f"{len(failed)} of {len(outcomes)} runs broke an invariant:\n{report}"
    reached = sum(outcome.fired is not None for outcome in outcomes)
    # A point's call can depend on timing (a stream redrive that comes after the run closed,
    # once the run's probe is gone), but most must come.
    assert reached * 3 >= len(outcomes) * 2, f"only {reached} faults were reached:\n{report}"


@pytest.mark.parametrize("bug", [
    pytest.param(bug, id=f"{bug.scenario}-{bug.fault.kind}-{bug.fault.operation}")
    for bug in KNOWN_BUGS
])
async def test_known_bug(runner: Runner, bug: KnownBug) -> None:
    """Each bug this harness found, fixed since (see its reason): it must stay fixed."""
    outcome = await runner.run(ALL_SCENARIOS[bug.scenario], bug.fault, bound=KNOWN_BUG_BOUND,
                               fresh_sandboxes=bug.fresh_sandboxes)
    assert outcome.fired is not None, "the fault was not reached"
    assert not outcome.problems, _report([outcome])
