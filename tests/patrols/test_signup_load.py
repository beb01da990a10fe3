"""Capacity under real concurrency: 50 volunteers sign up at once, against gunicorn with 4 sync
workers (separate processes, each with its own database connections), on the suite's database
(SQLite or PostgreSQL). Exactly 10 places are taken, the other 40 wait, nothing answers 5xx; and
10 parallel clicks of one volunteer give one place.

The data is committed through the app fixture before the server starts serving; each simulated
browser signs in over HTTP and reads its CSRF token from the page's meta tag.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.patrols.models import Shift, Signup
from tests import factories
from tests.patrols.conftest import su_make_shift, su_make_volunteer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "load-test-secret-key-that-is-long-enough-0123456789"
VOLUNTEERS = 50
CAPACITY = 10
CLICKS = 10
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """A minimal browser: a cookie jar over http.client, no redirects followed."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, data: dict | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return response.status, response.headers, text
        finally:
            conn.close()

    def sign_in(self, username: str, page: str) -> None:
        status, _headers, text = self.request("GET", "/login")
        assert status == 200, status
        token = CSRF_META.search(text).group(1)
        status, headers, _text = self.request(
            "POST",
            "/login",
            {"identifier": username, "password": factories.PASSWORD, "csrf_token": token},
        )
        assert status == 303, (username, status)
        status, _headers, text = self.request("GET", page)
        assert status == 200, (page, status)
        self.csrf = CSRF_META.search(text).group(1)

    def post(self, path: str) -> int:
        status, _headers, _text = self.request("POST", path, headers={"X-CSRFToken": self.csrf})
        return status


def _wait_until_serving(port: int, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if Browser(port).request("GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail("gunicorn did not start:\n" + log.read().decode(errors="replace"))
        time.sleep(0.1)


@contextmanager
def gunicorn_serving(database_url: str, workers: int = 4):
    """gunicorn with ``workers`` sync workers on a free port, serving the suite's database;
    yields the port. A traceback in a worker fails the test even if every answer looked fine."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET}
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--timeout", "60", "wsgi:app"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(port, process, log)
            yield port
        finally:
            # Graceful stop: a worker finishes the request in hand (a quick stop mid-answer logs
            # a SystemExit traceback that is no fault of the app).
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def su_server(database_url):
    """Started once for this module: the workers keep no state between requests, so the tables
    emptied after each test (by the app fixture) are all they see."""
    with gunicorn_serving(database_url) as port:
        yield port


def _signed_in(port: int, usernames: list[str], page: str) -> list[Browser]:
    def sign_in(username: str) -> Browser:
        browser = Browser(port)
        browser.sign_in(username, page)
        return browser

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(sign_in, usernames))


def _all_at_once(calls) -> list[int]:
    """Run the calls in threads released together by a barrier; their HTTP statuses."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            statuses[n] = calls[n]()
        except BaseException as exc:  # reported in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors, errors
    return statuses


def _counts(shift_id: int) -> tuple[int, dict[str, int]]:
    db.session.commit()  # a fresh snapshot: what the server's workers wrote
    taken = db.session.scalar(select(Shift.taken).where(Shift.id == shift_id))
    rows = db.session.execute(
        select(Signup.status, func.count(Signup.id))
        .where(Signup.shift_id == shift_id)
        .group_by(Signup.status)
    ).all()
    return taken, dict(rows)


def test_fifty_volunteers_at_once_take_exactly_ten_places(app, world, su_server):
    shift = su_make_shift(world.a, capacity=CAPACITY, title="压力测试巡逻")
    usernames = [
        su_make_volunteer(world.a, username=f"load_{n:02d}").username for n in range(VOLUNTEERS)
    ]
    shift_id = shift.id
    db.session.commit()
    browsers = _signed_in(su_server, usernames, f"/shifts/{shift_id}")

    statuses = _all_at_once([lambda b=b: b.post(f"/shifts/{shift_id}/signup") for b in browsers])

    assert all(status < 500 for status in statuses), statuses
    assert statuses.count(303) == VOLUNTEERS
    taken, rows = _counts(shift_id)
    assert taken == CAPACITY
    assert rows.get("confirmed") == CAPACITY
    # Every one of them passes the rules, so nobody is refused: the 40 others wait.
    assert rows.get("waitlisted") == VOLUNTEERS - CAPACITY
    # Each volunteer holds one row at most.
    people = db.session.scalar(
        select(func.count(func.distinct(Signup.person_id))).where(Signup.shift_id == shift_id)
    )
    assert people == sum(rows.values())


def test_ten_parallel_clicks_of_one_volunteer_take_one_place(app, world, su_server):
    shift = su_make_shift(world.a, capacity=CAPACITY, title="连点测试")
    shift_id = shift.id
    person_id = world.a.volunteer.person.id
    db.session.commit()
    (browser,) = _signed_in(su_server, ["volunteer_a"], f"/shifts/{shift_id}")

    statuses = _all_at_once([lambda: browser.post(f"/shifts/{shift_id}/signup")] * CLICKS)

    assert all(status < 500 for status in statuses), statuses
    taken, rows = _counts(shift_id)
    assert taken == 1
    assert rows == {"confirmed": 1}
    held = db.session.scalar(
        select(func.count(Signup.id)).where(
            Signup.shift_id == shift_id, Signup.person_id == person_id
        )
    )
    assert held == 1
