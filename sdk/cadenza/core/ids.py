"""Run ids that order runs of one workflow id and make concurrent starts collide.

The n-th run of a workflow id gets a UUID whose first 32 bits are ``n`` and whose rest is a hash
of (domain, workflow id, n). Two starters that both saw run n-1 as the latest compute the same id
for run n, so the store's conditional write lets exactly one of them create it: workflow-id
uniqueness costs one conditional PutItem, no transaction and no extra "current run" item.
Sorting run ids as strings sorts runs by age, which is how the latest run is found.
"""

from __future__ import annotations

import hashlib
import re

_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run_id_for(domain: str, workflow_id: str, sequence: int) -> str:
    if not 0 < sequence < 2**32:
        raise ValueError("run sequence out of range")
    digest = hashlib.sha256(f"{domain}\x00{workflow_id}\x00{sequence}".encode()).hexdigest()
    variant = "89ab"[int(digest[4], 16) % 4]
    return (
        f"{sequence:08x}-{digest[0:4]}-8{digest[5:8]}-{variant}{digest[8:11]}-{digest[11:23]}"
    )


def run_sequence(run_id: str) -> int:
    """The n of a run id made by run_id_for; 0 for anything else."""
    if not _RUN_ID.match(run_id):
        return 0
    return int(run_id[:8], 16)


def next_run_id(domain: str, workflow_id: str, latest_run_id: str | None) -> str:
    sequence = run_sequence(latest_run_id) if latest_run_id else 0
    return run_id_for(domain, workflow_id, sequence + 1)


def is_run_id(value: str) -> bool:
    return bool(_RUN_ID.match(value))
