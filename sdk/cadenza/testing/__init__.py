"""Test workflows and activities without a stack: the real engine in memory, in virtual time.

- :class:`TestWorkflowEnvironment`: ``env.client`` has the whole Client API against the real
  engine over in-memory adapters; time is virtual (``env.sleep``; waits skip ahead).
- :class:`TestActivityEnvironment`: run one activity with captured heartbeats and cancellation.
- :class:`Replayer`: check today's workflow code against a recorded history.
- The in-memory adapters themselves, behind the same ports as the AWS ones.
"""

from __future__ import annotations

from ._activity_env import TestActivityEnvironment
from ._env import TestWorkflowEnvironment
from ._memory import (
    InMemoryHistoryStore,
    InMemoryQueryAnswers,
    InMemoryTaskQueues,
    InMemoryVisibility,
    VirtualClock,
)
from ._replayer import Replayer

__all__ = [
    "InMemoryHistoryStore",
    "InMemoryQueryAnswers",
    "InMemoryTaskQueues",
    "InMemoryVisibility",
    "Replayer",
    "TestActivityEnvironment",
    "TestWorkflowEnvironment",
    "VirtualClock",
]
