"""The web UI in a real browser: the runs list, a run page's timeline and history, and the
actions (signal, terminate) checked afterwards through the client."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI selenium is installed (dev extra): its absence fails
    pytest.importorskip("selenium", reason="selenium is not installed (it is in the dev extra)")

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

from cadenza import Client
from cadenza.core import EventType
from cadenza.testing import Replayer

from .conftest import Stack, UiServer
from .workflows import reg

#: Generous: the machine may be loaded; nothing asserts how long anything took.
WAIT_SECONDS = 60


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # An open run's page redraws itself as its history grows: an element found just before a
    # redraw is stale, and the next poll finds its successor.
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException,
                                             StaleElementReferenceException))


def press(driver: WebDriver, selector: str) -> None:
    """Click the element ``selector`` names once it is there, again if a redraw replaced it."""
    def clicked(d: WebDriver) -> bool:
        element = d.find_element(By.CSS_SELECTOR, selector)
        if not element.is_displayed():
            return False
        element.click()
        return True
    wait(driver).until(clicked)


def css(driver: WebDriver, selector: str) -> WebElement:
    return wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def start(stack: Stack, workflow_type: str, arg: Any, *, workflow_id: str,
          search_attributes: dict[str, Any] | None = None) -> str:
    async def go(client: Client) -> str:
        run = await client.start_workflow(
            workflow_type, arg, task_list=stack.task_list, workflow_id=workflow_id,
            execution_start_to_close_timeout=timedelta(minutes=5),
            search_attributes=search_attributes)
        return run.run_id
    return stack.call(go)


def history(stack: Stack, workflow_id: str, run_id: str = "") -> list[Any]:
    async def go(client: Client) -> list[Any]:
        return list(await client.get_workflow_history(workflow_id, run_id))
    return stack.call(go)


def wait_for_history(stack: Stack, workflow_id: str, event_type: EventType) -> list[Any]:
    """The history once it holds ``event_type`` (polled through the client)."""
    found: list[Any] = []

    def holds(_: object) -> bool:
        found[:] = history(stack, workflow_id)
        return any(e.event_type == event_type for e in found)

    WebDriverWait(object(), WAIT_SECONDS, poll_frequency=0.3).until(holds)
    return found


def click(driver: WebDriver, element: WebElement) -> None:
    """Click it in the middle of the window (never under the sticky top bar)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def text_of(driver: WebDriver, selector: str) -> str:
    """The text of the element ``selector`` names, read again if a redraw replaced it."""
    return str(wait(driver).until(
        lambda d: d.find_element(By.CSS_SELECTOR, selector).text or False))


def fill(dialog: WebElement, name: str, value: str) -> None:
    field = dialog.find_element(By.CSS_SELECTOR, f"[name='{name}']")
    field.clear()
    field.send_keys(value)


def test_runs_list_shows_a_run_and_filters_it(browser: WebDriver, ui: UiServer,
                                              stack: Stack) -> None:
    workflow_id = f"list-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "Waiting", "listed", workflow_id=workflow_id)
    browser.get(f"{ui.url}/")
    row = css(browser, f"tr.run-row[data-workflow-id='{workflow_id}']")
    assert row.get_attribute("data-run-id") == run_id
    assert "Waiting" in row.text and run_id in row.text  # the full id, never cut
    assert row.find_element(By.CSS_SELECTOR, ".pill").get_attribute("data-status") == "OPEN"

    # The query box: the list language narrows the list to this run.
    box = css(browser, "#list-query")
    box.clear()
    box.send_keys(f"WorkflowID = '{workflow_id}'")
    browser.find_element(By.CSS_SELECTOR, "#query-form button[type=submit]").click()
    wait(browser).until(lambda d: "query=" in d.current_url)
    wait(browser).until(lambda d: [r.get_attribute("data-workflow-id") for r in
                                   d.find_elements(By.CSS_SELECTOR, "tr.run-row")]
                        == [workflow_id])
    # A status filter that excludes it: the open run is not among the closed ones.
    browser.find_element(By.CSS_SELECTOR, ".chip[data-status='closed']").click()
    css(browser, "#runs-body td.empty")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.run-row")

    # A bad query is refused with the API's message, shown to the user.
    browser.get(f"{ui.url}/#/?query=StartTime%20%3E%20'yesterday'")
    banner = css(browser, "#banner")
    assert "BadRequestError" in banner.text and "ISO 8601" in banner.text

    # Auto-refresh: a run started while the list is shown appears without a reload.
    later = f"later-{uuid.uuid4().hex[:8]}"
    browser.get(f"{ui.url}/#/?query=WorkflowID%20%3D%20'{later}'")
    css(browser, "#runs-body td.empty")
    start(stack, "Waiting", "appears", workflow_id=later)
    css(browser, f"tr.run-row[data-workflow-id='{later}']")

    # A click on the row opens its run page.
    browser.get(f"{ui.url}/")
    press(browser, f"tr.run-row[data-workflow-id='{workflow_id}'] a")
    assert text_of(browser, "#run-workflow-id") == workflow_id


def test_run_page_renders_timeline_history_links_and_download(
        browser: WebDriver, ui: UiServer, stack: Stack) -> None:
    workflow_id = f"order-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "OrderFlow", workflow_id, workflow_id=workflow_id)
    wait_for_history(stack, workflow_id, EventType.ActivityTaskCompleted)

    async def approve(client: Client) -> None:
        await client.signal_workflow(workflow_id, run_id, "approve", "ann")
    stack.call(approve)
    events = wait_for_history(stack, workflow_id, EventType.WorkflowExecutionCompleted)

    browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")
    assert css(browser, "#run-type").text == "OrderFlow"
    wait(browser).until(lambda d: d.find_element(
        By.CSS_SELECTOR, ".run-title .pill").get_attribute("data-status") == "COMPLETED")
    assert '"approved_by": "ann"' in css(browser, ".io-grid").text

    # The timeline: one row per activity, timer, child, signal and marker, drawn as bars.
    timeline = css(browser, "#timeline")
    labels = [e.text for e in timeline.find_elements(By.CSS_SELECTOR, ".row-label")]
    assert labels[:2] == ["OrderFlow", "decision tasks"]
    assert {"reserve_stock", "charge_card", "ship", "timer 0", "Invoice", "signal approve",
            "SideEffect"} <= set(labels)
    kinds = [e.get_attribute("data-kind") for e in timeline.find_elements(By.CSS_SELECTOR, ".row")]
    assert kinds.count("activity") == 3 and kinds.count("timer") == 1
    assert kinds.count("child") == 1 and kinds.count("signal") == 1 and kinds.count("marker") == 1
    assert len(timeline.find_elements(By.CSS_SELECTOR, ".bar-activity")) == 3
    # charge_card failed its first attempt: the retry shows before its last attempt's bar.
    assert timeline.find_elements(By.CSS_SELECTOR, ".row-activity .bar-wait.retry")
    decisions = [e for e in events if e.event_type == EventType.DecisionTaskCompleted]
    assert len(timeline.find_elements(By.CSS_SELECTOR, ".tick-decision")) == len(decisions)

    # A bar leads to its events in the history: the timer's row is selected and expanded.
    timer_started = next(e for e in events if e.event_type == EventType.TimerStarted)
    click(browser, timeline.find_element(By.CSS_SELECTOR, ".row-timer .bar"))
    css(browser, f"tr.event-row.selected[data-event-id='{timer_started.event_id}']")
    css(browser, f"tr[data-attributes-of='{timer_started.event_id}'] pre")

    # The history: every event, in order; a row expands to its attributes.
    rows = browser.find_elements(By.CSS_SELECTOR, "#history-table tr.event-row")
    assert [int(r.get_attribute("data-event-id") or 0) for r in rows] == [
        e.event_id for e in events]
    assert [r.get_attribute("data-event-type") for r in rows] == [
        str(e.event_type) for e in events]
    signaled = next(e for e in events if e.event_type == EventType.WorkflowExecutionSignaled)
    click(browser, browser.find_element(
        By.CSS_SELECTOR, f"tr.event-row[data-event-id='{signaled.event_id}'] td"))
    attributes = css(browser, f"tr[data-attributes-of='{signaled.event_id}'] pre")
    assert json.loads(attributes.text)["signal_name"] == "approve"
    assert json.loads(attributes.text)["input"] == "ann"  # the payload, decoded

    # The download is the history as `cadenza workflow show --json` writes it: the Replayer
    # reads it and today's code replays it.
    text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.cadenzaUi.historyJson(arguments[0], arguments[1])"
        ".then(done, e => done(String(e)));",
        workflow_id, run_id)
    assert json.loads(text) == [e.to_dict() for e in events]
    Replayer(reg).replay(text)

    # The child's link leads to its run page, which links back to its parent.
    click(browser, css(browser, ".child-link a"))
    assert css(browser, "#run-type").text == "Invoice"
    parent = css(browser, ".fact a[href*='/runs/']")
    assert workflow_id in parent.text
    click(browser, parent)
    assert text_of(browser, "#run-workflow-id") == workflow_id


def test_signal_stack_and_terminate_from_the_run_page(browser: WebDriver, ui: UiServer,
                                                      stack: Stack) -> None:
    workflow_id = f"wait-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "Waiting", "acted on", workflow_id=workflow_id)
    wait_for_history(stack, workflow_id, EventType.DecisionTaskCompleted)
    browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")

    # The current stack, answered by the worker's replay of the open run.
    stack_text = text_of(browser, "#stack-text")
    assert "coroutine 1 (Waiting.run):" in stack_text
    assert 'await workflow.wait_condition(lambda: "stop" in self.messages)' in stack_text

    # Signal, with confirmation in a dialog.
    press(browser, "#action-signal")
    dialog = css(browser, "#signal-form")
    fill(dialog, "signal_name", "note")
    fill(dialog, "args", '"hello from the browser"')
    dialog.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    events = wait_for_history(stack, workflow_id, EventType.WorkflowExecutionSignaled)
    signal = next(e for e in events if e.event_type == EventType.WorkflowExecutionSignaled)
    assert signal.attributes["signal_name"] == "note"
    assert signal.attributes["input"] == '"hello from the browser"'
    # The page follows the open run: the signal appears on its timeline.
    wait(browser).until(lambda d: "signal note" in [
        e.text for e in d.find_elements(By.CSS_SELECTOR, "#timeline .row-label")])

    # A query from the page, answered by the worker.
    press(browser, "#action-query")
    dialog = css(browser, "#query-form")
    fill(dialog, "query_type", "messages")
    dialog.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    answer = css(browser, "#query-answer pre")
    assert json.loads(answer.text) == ["hello from the browser"]
    dialog.find_element(By.XPATH, ".//button[text()='Close']").click()

    # Terminate, with its reason, confirmed in the dialog.
    press(browser, "#action-terminate")
    dialog = css(browser, "#terminate-form")
    fill(dialog, "reason", "ended by the browser test")
    dialog.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    events = wait_for_history(stack, workflow_id, EventType.WorkflowExecutionTerminated)
    assert events[-1].event_type == EventType.WorkflowExecutionTerminated
    assert events[-1].attributes["reason"] == "ended by the browser test"
    wait(browser).until(lambda d: d.find_element(
        By.CSS_SELECTOR, ".run-title .pill").get_attribute("data-status") == "TERMINATED")
    assert not browser.find_elements(By.CSS_SELECTOR, "#action-terminate")  # closed: no more


def test_list_pages_newest_first(browser: WebDriver, ui: UiServer, stack: Stack) -> None:
    tag = uuid.uuid4().hex
    ids = [f"paged-{tag[:6]}-{n}" for n in range(3)]
    for workflow_id in ids:
        start(stack, "Waiting", "paged", workflow_id=workflow_id,
              search_attributes={"CustomKeywordField": tag})

    def listed(driver: WebDriver) -> list[str | None]:
        return [r.get_attribute("data-workflow-id")
                for r in driver.find_elements(By.CSS_SELECTOR, "tr.run-row")]

    browser.get(f"{ui.url}/#/?query=CustomKeywordField%20%3D%20'{tag}'&page_size=2")
    wait(browser).until(lambda d: listed(d) == ids[::-1][:2])  # newest first
    press(browser, "#load-more")
    wait(browser).until(lambda d: listed(d) == ids[::-1])
    assert text_of(browser, "#runs-count") == "3 runs"


def test_reset_to_a_chosen_decision_then_cancel(browser: WebDriver, ui: UiServer,
                                                stack: Stack) -> None:
    workflow_id = f"reset-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "Waiting", "to reset", workflow_id=workflow_id)

    async def note(client: Client) -> None:
        await client.signal_workflow(workflow_id, run_id, "note", "before the reset")
    first = wait_for_history(stack, workflow_id, EventType.DecisionTaskCompleted)
    stack.call(note)
    wait_for_history(stack, workflow_id, EventType.WorkflowExecutionSignaled)
    reset_point = next(e for e in first if e.event_type == EventType.DecisionTaskCompleted)

    browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")
    press(browser, f"button[data-reset-event='{reset_point.event_id}']")
    dialog = css(browser, "#reset-form")
    chosen = dialog.find_element(By.CSS_SELECTOR, "select[name='event_id']")
    assert chosen.get_attribute("value") == str(reset_point.event_id)
    fill(dialog, "reason", "redo from the browser")
    dialog.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    # The page moves to the new run.
    wait(browser).until(lambda d: run_id not in d.current_url
                        and f"/runs/{workflow_id}/" in d.current_url)
    new_run_id = browser.current_url.rsplit("/", 1)[1]
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#run-run-id").text
                        == new_run_id)
    old = history(stack, workflow_id, run_id)
    assert old[-1].event_type == EventType.WorkflowExecutionTerminated
    assert old[-1].attributes["reason"].endswith(": redo from the browser")
    new = history(stack, workflow_id, new_run_id)
    # The new run's history is the old one's up to the chosen decision, decided again there.
    before = reset_point.event_id - 1
    assert [e.event_type for e in new[:before]] == [e.event_type for e in old[:before]]
    assert new[before].event_type == EventType.DecisionTaskFailed
    # The signal after the reset point is applied again in the new run.
    assert any(e.event_type == EventType.WorkflowExecutionSignaled
               and e.attributes["input"] == '"before the reset"' for e in new)

    # Cancel the new run from its page: the workflow's wait is cancelled, the run closes.
    press(browser, "#action-cancel")
    dialog = css(browser, "#cancel-form")
    dialog.find_element(By.CSS_SELECTOR, "[data-confirm]").click()
    events = wait_for_history(stack, workflow_id, EventType.WorkflowExecutionCanceled)
    assert any(e.event_type == EventType.WorkflowExecutionCancelRequested for e in events)
    wait(browser).until(lambda d: d.find_element(
        By.CSS_SELECTOR, ".run-title .pill").get_attribute("data-status") == "CANCELED")


def fact_link(driver: WebDriver, label: str) -> WebElement:
    """The link of the run page's fact labelled ``label`` ("Parent", "Continued as", ...)."""
    return wait(driver).until(EC.visibility_of_element_located(
        (By.XPATH, f"//div[@class='fact'][dt[text()='{label}']]//a")))


def test_links_follow_a_continue_as_new_chain(browser: WebDriver, ui: UiServer,
                                              stack: Stack) -> None:
    workflow_id = f"chain-{uuid.uuid4().hex[:8]}"
    first = start(stack, "Chain", 2, workflow_id=workflow_id)

    async def result(client: Client) -> Any:
        return await client.get_workflow_result(workflow_id, first, timeout=timedelta(minutes=1))
    assert stack.call(result) == "end of the chain"
    runs = [first]
    for _ in range(2):
        closing = history(stack, workflow_id, runs[-1])[-1]
        assert closing.event_type == EventType.WorkflowExecutionContinuedAsNew
        runs.append(closing.attributes["new_execution_run_id"])

    browser.get(f"{ui.url}/#/runs/{workflow_id}/{first}")
    assert "Continued as new run" in text_of(browser, "#continued-as")
    for previous, following in itertools.pairwise(runs):
        link = fact_link(browser, "Continued as")
        assert link.text == following
        click(browser, link)
        wait(browser).until(lambda d, run=following: text_of(d, "#run-run-id") == run)
        assert fact_link(browser, "Continued from").text == previous
        assert fact_link(browser, "First run").text == first
    # The last run completed: its result, and no link further on.
    assert '"end of the chain"' in text_of(browser, ".io-grid")
    assert not browser.find_elements(
        By.XPATH, "//div[@class='fact'][dt[text()='Continued as']]")
    click(browser, fact_link(browser, "Continued from"))
    wait(browser).until(lambda d: text_of(d, "#run-run-id") == runs[1])


def test_pending_activity_shows_attempt_heartbeat_and_timeouts(
        browser: WebDriver, ui: UiServer, stack: Stack) -> None:
    workflow_id = f"dawdle-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "Dawdling", 400, workflow_id=workflow_id)
    try:
        browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")
        # The page refreshes itself while the run is open: the heartbeat shows up.
        row = "#pending-card tr[data-activity-id]"
        wait(browser).until(lambda d: '"step"' in d.find_element(By.CSS_SELECTOR, row).text)
        text = text_of(browser, row)
        assert "dawdle" in text and "started" in text.lower()
        assert "heartbeat 2.00 s" in text and "start→close 2m 00s" in text
        # On the timeline the activity is a pending bar with its last heartbeat.
        css(browser, "#timeline .row-activity .bar.pending")
        css(browser, "#timeline .row-activity .heartbeat")
    finally:
        async def terminate(client: Client) -> None:
            await client.terminate_workflow(workflow_id, run_id, reason="test over")
        stack.call(terminate)


def test_failed_decision_tasks_show_red_on_the_timeline(browser: WebDriver, ui: UiServer,
                                                        stack: Stack) -> None:
    workflow_id = f"broken-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "NotRegisteredAnywhere", 1, workflow_id=workflow_id)
    try:
        events = wait_for_history(stack, workflow_id, EventType.DecisionTaskFailed)
        failed = next(e for e in events if e.event_type == EventType.DecisionTaskFailed)
        browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")
        tick = css(browser, f"#timeline .tick-decision.failed[data-event-id='{failed.event_id}']")
        title = tick.find_element(By.TAG_NAME, "title").get_attribute("textContent") or ""
        assert str(failed.attributes["cause"]) in title
        assert "failed" in text_of(browser, "#timeline .row-decisions .row-sub")
    finally:
        async def terminate(client: Client) -> None:
            await client.terminate_workflow(workflow_id, run_id, reason="test over")
        stack.call(terminate)


def test_a_long_timeline_shows_its_first_rows_then_all(browser: WebDriver, ui: UiServer,
                                                      stack: Stack) -> None:
    workflow_id = f"markers-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "ManyMarkers", 90, workflow_id=workflow_id)
    wait_for_history(stack, workflow_id, EventType.WorkflowExecutionCompleted)
    browser.get(f"{ui.url}/#/runs/{workflow_id}/{run_id}")
    css(browser, "#timeline")

    def marker_rows(driver: WebDriver) -> int:
        return len(driver.find_elements(By.CSS_SELECTOR, "#timeline .row-marker"))

    assert marker_rows(browser) == 80
    assert "Show all 90 rows (10 more)" in text_of(browser, "#timeline-all")
    press(browser, "#timeline-all")
    wait(browser).until(lambda d: marker_rows(d) == 90)
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline-all")
