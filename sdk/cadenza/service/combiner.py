"""Group commit: commands on one run that arrive together in one process become one commit.

Every commit of a run is a conditional write on one key, so concurrent writers of a hot run (a
burst of signals, a fan-out whose activities finish together) mostly lose the race, re-read
and try again; with enough of them some run out of attempts. Here the first caller for a run
becomes its leader: it takes every command queued for the run meanwhile, applies them all to
one read of the state and writes one commit; the others wait for its answer. A leader that is
done hands the queue to the oldest waiter. Leaders never run a commit's effects while leading
(the caller does, after), so two leaders never wait on each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..core import Command
from ..core.records import StoredBatch

#: A run: (domain, workflow id, run id; empty for the workflow id's current run).
RunKey = tuple[str, str, str]
#: What a command came to: True (it changed the run), False (nothing to change) or its error.
Outcome = bool | Exception
#: Applies commands to one read of the run and commits them once: the batch and the outcomes.
CommitGroup = Callable[[RunKey, Sequence[Command]], tuple[StoredBatch | None, list[Outcome]]]

#: How long a waiter waits before it checks whether its leader is stuck behind it.
_PATIENCE_SECONDS = 5.0


@dataclass(eq=False)
class _Waiter:
    command: Command
    wake: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    batch: StoredBatch | None = None
    #: Set by a leader handing the queue over: this waiter leads next.
    promoted: bool = False

    def answer(self) -> StoredBatch | None:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.batch if self.outcome else None


class CommitCombiner:
    """``after`` runs once for every batch committed (its dispatch and effects), by the thread
    that led the commit, once it no longer leads."""

    def __init__(self, commit_group: CommitGroup, after: Callable[[StoredBatch], None]) -> None:
        self._commit_group = commit_group
        self._after = after
        self._lock = threading.Lock()
        self._queues: dict[RunKey, list[_Waiter]] = {}
        self._leaders: set[RunKey] = set()
        self._local = threading.local()

    def submit(self, key: RunKey, command: Command) -> StoredBatch | None:
        """Commit ``command`` on the run, with any others waiting for it: the batch it was
        part of (None when it changed nothing); raises the command's error."""
        leading: set[RunKey] = self._leading()
        if key in leading:  # re-entered from this leader's own commit: no one else can lead
            batch, (outcome,) = self._commit_group(key, [command])
            if batch is not None:
                self._after(batch)
            return _Waiter(command, outcome=outcome, batch=batch).answer()
        waiter = _Waiter(command)
        with self._lock:
            self._queues.setdefault(key, []).append(waiter)
            lead = key not in self._leaders
            if lead:
                self._leaders.add(key)
        if not lead and not self._wait(key, waiter):
            return self.submit(key, command)  # taken out of a stuck queue: go again
        if waiter.outcome is None:
            self._lead(key, leading)
        return waiter.answer()

    def _wait(self, key: RunKey, waiter: _Waiter) -> bool:
        """Wait for an answer or a promotion; False when the waiter left a queue whose leader
        made no progress for a while (it may be waiting on this very thread)."""
        while not waiter.wake.wait(_PATIENCE_SECONDS):
            with self._lock:
                queue = self._queues.get(key, [])
                if waiter in queue:
                    queue.remove(waiter)
                    return False
        return True

    def _lead(self, key: RunKey, leading: set[RunKey]) -> None:
        """Commit the queue once as its leader, answer every waiter, hand over, dispatch.

        Whatever happens to the commit (even a BaseException standing for the process dying),
        the waiters get an answer and the queue a new leader."""
        with self._lock:
            group = self._queues.pop(key, [])
        leading.add(key)
        batch: StoredBatch | None = None
        outcomes: list[Outcome] = [RuntimeError("the commit of this run was interrupted")] * len(
            group)
        try:
            batch, outcomes = self._commit_group(key, [w.command for w in group])
        except Exception as error:  # every waiter gets the failure
            outcomes = [error] * len(group)
        finally:
            leading.discard(key)
            for waiter, outcome in zip(group, outcomes, strict=True):
                waiter.outcome, waiter.batch = outcome, batch
                waiter.wake.set()
            with self._lock:
                queue = self._queues.get(key)
                if queue:
                    queue[0].promoted = True
                    queue[0].wake.set()
                else:
                    self._queues.pop(key, None)
                    self._leaders.discard(key)
        if batch is not None:
            self._after(batch)

    def _leading(self) -> set[RunKey]:
        leading: set[RunKey] | None = getattr(self._local, "leading", None)
        if leading is None:
            leading = self._local.leading = set()
        return leading


__all__ = ["CommitCombiner", "Outcome", "RunKey"]
