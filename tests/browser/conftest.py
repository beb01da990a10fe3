"""A live server on a free port and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
needs_browser = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("REQUIRE_BROWSER") != "1",
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        page = context.new_page()
        page.problems = []

        def console(msg) -> None:  # noqa: ANN001
            if msg.type != "error":
                return
            if msg.text.startswith("htmx:sendAbort"):
                # A filter form's hx-sync="this:replace" cancelled its previous request (Enter
                # fires change and submit): htmx logs the abort as an error pair; not a fault.
                if page.problems and page.problems[-1].startswith("htmx:afterRequest"):
                    page.problems.pop()
                return
            page.problems.append(msg.text)

        page.on("console", console)
        page.on("pageerror", lambda exc: page.problems.append(str(exc)))
        yield page
        context.close()
        browser.close()
