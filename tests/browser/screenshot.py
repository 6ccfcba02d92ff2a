"""Make docs/ui.png: the run page of an OrderFlow run (activities, a retry, a signal, a marker,
a timer, a child), drawn by headless Chromium. ``python -m tests.browser.screenshot [PATH]``."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import make_server

from cadenza import Client, Worker
from cadenza.local import LocalStack
from cadenza.ui import wsgi_app

from .conftest import CHROMIUM_FLAGS
from .workflows import reg

WIDTH = 1360
TASK_LIST = "shop"


async def record_run(api_url: str) -> tuple[str, str]:
    async with Client(target=api_url) as client, Worker(client, TASK_LIST, reg):
        run = await client.start_workflow(
            "OrderFlow", "order-1138", task_list=TASK_LIST, workflow_id="order-1138",
            execution_start_to_close_timeout=timedelta(minutes=5))
        await asyncio.sleep(2.5)  # reserve and charge (with its retry) first
        await client.signal_workflow(run.workflow_id, run.run_id, "approve", "ann")
        await client.get_workflow_result(run.workflow_id, run.run_id,
                                         timeout=timedelta(seconds=60))
        return run.workflow_id, run.run_id


def main(path: Path) -> None:
    with LocalStack(api_port=0) as stack:
        workflow_id, run_id = asyncio.run(record_run(stack.api_url))
        app = wsgi_app(stack.api_url)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        profile = tempfile.mkdtemp(prefix="cadenza-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")),
                                  options=options)
        try:
            driver.set_window_size(WIDTH, 1000)
            driver.get(f"http://127.0.0.1:{server.server_port}/#/runs/{workflow_id}/{run_id}")
            WebDriverWait(driver, 30).until(
                EC.visibility_of_element_located((By.CSS_SELECTOR, "#timeline")))
            # Down to the end of the timeline card: header, input and result, timeline.
            bottom = driver.execute_script(
                "return document.getElementById('timeline-card').getBoundingClientRect().bottom")
            inner = driver.execute_script("return window.innerHeight")
            driver.set_window_size(WIDTH, 1000 + int(bottom) + 24 - int(inner))
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(path))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
            server.shutdown()
            app.close()
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui.png"))
