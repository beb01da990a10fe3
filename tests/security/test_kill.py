"""Writes survive killed workers: gunicorn with 4 sync workers on the suite's database (SQLite or
PostgreSQL) takes 500 points adjustments, each with its own Idempotency-Key, from 8 client
threads (spread over at least 8 seconds) while a worker is SIGKILLed every 2 seconds. A
dropped request (connection error, 5xx) is sent again with the same key until it is
acknowledged (303, or 409 "already done"). Afterwards every write is present exactly once, the
balances equal the ledger, SQLite's integrity check passes, and PostgreSQL holds no transaction
left open by a dead worker.
"""

from __future__ import annotations

import http.client
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.points.models import PointsAccount, PointsEntry
from tests.patrols.test_signup_load import SECRET, Browser, _free_port

ROOT = Path(__file__).resolve().parents[2]
WRITES = 500
CLIENTS = 8
KILL_EVERY = 2.0
# The writes are spread over at least this long, so that several kills land among them however
# fast the machine writes (500 writes can take under 6 seconds).
SPREAD = 4 * KILL_EVERY
DEADLINE = 300  # seconds: a hung run fails instead of blocking the suite (~15 s when idle)


def _wait_until_serving(port: int, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 120  # a loaded CI machine boots slowly
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
def gunicorn(database_url: str, workers: int = 4):
    """gunicorn on a free port; yields (port, master pid); its log must hold no traceback."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET}
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    # --preload: a killed worker is replaced by a fork of the loaded app in milliseconds (the
    # app opens no connection before the fork), not by a fresh import that takes seconds.
    command += ["--preload", "--log-level", "warning", "--timeout", "30", "wsgi:app"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(port, process, log)
            yield port, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert "Traceback" not in output, output


def _workers(master: int) -> list[int]:
    try:
        with open(f"/proc/{master}/task/{master}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        return []


class Killer(threading.Thread):
    def __init__(self, master: int):
        super().__init__(daemon=True)
        self.master = master
        self.stop = threading.Event()
        self.kills = 0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stop.wait(KILL_EVERY):
            workers = _workers(self.master)
            if workers:
                try:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass


def _post(port: int, path: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    """One POST; (status, Location). Raises OSError/HTTPException when the worker died."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.headers.get("Location", "")
    finally:
        conn.close()


def test_acknowledged_writes_survive_killed_workers_exactly_once(app, world, database_url):
    people = [
        world.a.resident.person_id,
        world.a.volunteer.person_id,
        world.a.pending.person_id,
        world.a.gridworker.person_id,
    ]
    db.session.commit()
    run = uuid.uuid4().hex[:8]
    jobs: queue.Queue[tuple[int, str, int]] = queue.Queue()
    for n in range(WRITES):
        jobs.put((n, f"{run}-{n:03d}", people[n % len(people)]))
    acknowledged: dict[str, int] = {}
    failures: list[str] = []
    retries = [0]
    lock = threading.Lock()

    with gunicorn(database_url) as (port, master):
        browser = Browser(port)
        browser.sign_in("secretary_a", f"/points/people/{people[0]}")
        # The cookie as signed in: answers' cookies (flash messages) are not kept, as a client
        # that never reads the pages would not.
        base_headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
            "X-CSRFToken": browser.csrf,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.monotonic()

        def client() -> None:
            while True:
                try:
                    n, key, person_id = jobs.get_nowait()
                except queue.Empty:
                    return
                time.sleep(max(0.0, started + n * SPREAD / WRITES - time.monotonic()))
                body = urlencode({"points": "1", "hours": "", "reason": f"kill {key}"})
                headers = {**base_headers, "Idempotency-Key": key}
                while True:
                    if time.monotonic() - started > DEADLINE:
                        with lock:
                            failures.append(f"{key}: not acknowledged before the deadline")
                        return
                    try:
                        status, _location = _post(
                            port, f"/points/people/{person_id}/adjust", body, headers
                        )
                    except (OSError, http.client.HTTPException):
                        status = 0  # dropped: the worker died under it
                    if status in (303, 409):
                        with lock:
                            acknowledged[key] = status
                        break
                    if status == 0 or status >= 500:
                        with lock:
                            retries[0] += 1
                        time.sleep(0.05)
                        continue
                    with lock:
                        failures.append(f"{key}: answered {status}")
                    break

        killer = Killer(master)
        killer.start()
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE + 30)
        killer.stop.set()
        killer.join(timeout=10)
        elapsed = time.monotonic() - started

        if db.engine.dialect.name == "postgresql":
            # A worker killed inside a transaction leaves no session holding it open.
            idle = None
            for _ in range(30):
                idle = db.session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
                db.session.commit()
                if idle == 0:
                    break
                time.sleep(0.1)
            assert idle == 0

    assert failures == []
    assert len(acknowledged) == WRITES
    assert killer.kills >= 3, (killer.kills, elapsed)
    notes = db.session.execute(
        select(PointsEntry.note, func.count(PointsEntry.id))
        .where(PointsEntry.note.like(f"kill {run}-%"))
        .group_by(PointsEntry.note)
    ).all()
    counts = dict(notes)
    assert all(counts.get(f"kill {key}") == 1 for key in acknowledged)
    assert sum(counts.values()) == WRITES
    for person_id in people:
        balance = db.session.get(PointsAccount, person_id).balance
        total = db.session.scalar(
            select(func.sum(PointsEntry.points)).where(PointsEntry.person_id == person_id)
        )
        assert balance == total == WRITES // len(people)
    if db.engine.dialect.name == "sqlite":
        assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    print(f"kill test: {killer.kills} kills, {retries[0]} retries, {elapsed:.1f} s")
