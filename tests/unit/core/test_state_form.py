"""RunState's stored form: compact (defaults left out), request ids as short digests."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from cadenza.core import RunState, RunStatus
from cadenza.core.state import (
    REQUEST_DIGEST_LENGTH,
    REQUEST_IDS_KEPT,
    PendingActivity,
    request_digest,
)

from .test_outbox import begin


def test_the_stored_form_leaves_defaults_out_and_reads_back_equal() -> None:
    state = begin().state
    busy = replace(state, activities=(PendingActivity(
        scheduled_event_id=5, activity_id="a", activity_type="t", task_list="l",
        started_time=7),), close_attributes={"result": None})
    for value in (state, busy, replace(state, status=RunStatus.COMPLETED)):
        stored = value.to_dict()
        assert RunState.from_dict(json.loads(json.dumps(stored))) == value
    stored = busy.to_dict()
    assert "cancel_requested" not in stored and "timers" not in stored
    assert set(stored["activities"][0]) == {"scheduled_event_id", "activity_id",
                                            "activity_type", "task_list", "started_time"}


def test_a_run_remembers_request_ids_by_short_digest_within_a_bound() -> None:
    state = begin().state
    ids = [str(uuid.uuid4()) for _ in range(REQUEST_IDS_KEPT + 5)]
    for request_id in ids:
        state = state.remembering(request_id)
    assert len(state.request_ids) == REQUEST_IDS_KEPT
    assert all(len(d) == REQUEST_DIGEST_LENGTH for d in state.request_ids)
    assert state.knows_request(ids[-1]) and not state.knows_request(ids[0])  # oldest forgotten
    assert not state.knows_request("") and not state.knows_request("never-seen")
    stored = state.to_dict()
    assert stored["request_ids"] == "".join(state.request_ids)  # one string, 8 bytes an id
    assert RunState.from_dict(stored).knows_request(ids[-1])


def test_a_state_stored_with_whole_request_ids_still_knows_them() -> None:
    old = begin().state.to_dict()
    old["request_ids"] = ["first-request", "second-request"]
    state = RunState.from_dict(old)
    assert state.knows_request("first-request") and state.knows_request("second-request")
    assert state.request_ids == (request_digest("first-request"),
                                 request_digest("second-request"))
