"""The worker's history read on moto: the events of a run's commits after a version."""

from __future__ import annotations

from cadenza.aws.settings import AwsSettings
from cadenza.aws.store import DynamoHistoryStore

from .test_store import complete_decision, start_run


def test_events_after_a_version_are_those_of_the_later_commits_of_that_run_only(
        aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    state = start_run(store, "w1", "r1")
    start_run(store, "w1", "r2")  # another run of the workflow id: never read
    start_run(store, "w1", "r10")  # a run id that sorts right after "r1#..."
    second = complete_decision(state, 2)
    store.append(second, committed_at=1)
    everything, version, more = store.events_after("default", "w1", "r1", 0)
    assert (version, more) == (2, False)
    assert [e.event_id for e in everything] == list(range(1, second.state.next_event_id))
    after_start, version, more = store.events_after("default", "w1", "r1", 1)
    assert (version, more) == (2, False)
    assert [e.event_id for e in after_start] == [e.event_id for e in second.events]
    nothing, version, more = store.events_after("default", "w1", "r1", 2)
    assert (nothing, version, more) == ([], 2, False)
    # Paged by whole commits: the next read starts after the last commit of the page.
    first_page, version, more = store.events_after("default", "w1", "r1", 0, page_size=1)
    assert (version, more) == (1, True)
    assert first_page == everything[:len(first_page)]
