from __future__ import annotations

import uuid

from cadenza.core.ids import is_run_id, next_run_id, run_sequence


def test_run_ids_are_uuids_ordered_by_run_and_shared_by_concurrent_starters() -> None:
    first = next_run_id("default", "order-1", None)
    second = next_run_id("default", "order-1", first)
    assert str(uuid.UUID(first)) == first and is_run_id(second)
    assert first < second and run_sequence(second) == 2
    # Two starters that saw the same latest run compute the same next id (they collide).
    assert next_run_id("default", "order-1", first) == second
    assert next_run_id("default", "order-2", None) != first
