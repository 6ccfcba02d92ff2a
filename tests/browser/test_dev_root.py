"""The UI ``cadenza dev`` mounts at its own port's root: the pages call the API under the same
origin, with no forwarding in between."""

from __future__ import annotations

import uuid

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cadenza.local import LocalStack

from .conftest import Stack
from .test_ui import css, press, start, text_of, wait


def test_the_local_stack_serves_the_ui_at_its_root(browser: WebDriver, stack: Stack) -> None:
    workflow_id = f"root-{uuid.uuid4().hex[:8]}"
    run_id = start(stack, "Waiting", "at the root", workflow_id=workflow_id)
    browser.get(f"{stack.api_url}/")
    assert browser.title == "Cadenza"
    press(browser, f"tr.run-row[data-workflow-id='{workflow_id}'] a")
    assert text_of(browser, "#run-run-id") == run_id
    css(browser, "#timeline")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.event-row")) >= 3)
    # The stack's own routes answered: the page's API calls went to the same origin.
    assert browser.execute_script("return location.origin") == stack.api_url


def test_an_iam_protected_stack_says_how_to_reach_it(browser: WebDriver) -> None:
    """The browser cannot sign: the mounted pages say to use `cadenza ui --address`."""
    with LocalStack(api_port=0, auth="iam") as protected:
        browser.get(f"{protected.api_url}/")
        banner = text_of(browser, "#banner")
        # The API page reads its document through /api/ too: refused the same way, said so.
        press(browser, "#nav-api")
        api_page = text_of(browser, "#app .empty-card")
        api_banner = text_of(browser, "#banner")
    assert "UnsignedRequestError" in banner
    assert "cadenza ui --address" in banner
    assert "Cannot load the API's OpenAPI document" in api_page
    assert "UnsignedRequestError" in api_banner and "cadenza ui --address" in api_banner
