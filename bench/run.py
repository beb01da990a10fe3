"""The load benchmark (issue 6): the portal under gunicorn against a bare-Flask baseline.

    .venv/bin/python bench/run.py --database-url sqlite:////tmp/bench_city.db --scale city

Starts the portal (2 sync workers, QUERY_COUNT_HEADER=1) and bench/baseline_app.py under the same
gunicorn settings, signs in as volunteers, a grid worker and a secretary over HTTP, drives each
page with wrk (-t2 -c8, bench/wrk/cycle.lua) for --duration seconds, and writes bench/RESULTS.md.
See bench/README.md. The writes (sign-up/cancel, claim/release, redeem) change the database:
run it on a benchmark copy, never on live data.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
BENCH_PASSWORD = "tongxin-bench"
DEMO_PASSWORD = "tongxin-demo"

# The budget of issue 6.
READ_RATIO = 0.40
READ_P95_MS = 50.0
WRITE_P95_MS = 100.0
MAX_QUERIES = 10
MAX_MEMORY_MB = 200.0


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- a minimal browser ---------------------------------------------------------------------------


class Browser:
    """A cookie jar over http.client, no redirects followed (like tests/patrols' load test)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, data: dict | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = self.cookie_header()
        body = None
        if data is not None:
            body = urlencode(data)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text_ = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return response.status, response.headers, text_
        finally:
            conn.close()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def login(self, username: str, password: str) -> None:
        status, _, page = self.request("GET", "/login")
        match = CSRF_META.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"GET /login answered {status} without a CSRF token")
        status, headers, _ = self.request(
            "POST",
            "/login",
            {"identifier": username, "password": password, "csrf_token": match.group(1)},
        )
        if status != 303:
            raise RuntimeError(f"signing in as {username} failed ({status})")
        # The session is renewed at sign-in: its token is the one on the next page (one the
        # page cache does not keep, so the first sample of each measured page is a render).
        status, _, page = self.request("GET", "/notifications")
        match = CSRF_META.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"home page for {username} answered {status}")
        self.csrf = match.group(1)

    def headers(self, *, write: bool = False, htmx: bool = False) -> dict[str, str]:
        sent = {"Cookie": self.cookie_header()}
        if write:
            sent["X-CSRFToken"] = self.csrf
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            sent["HX-Request"] = "true"
        return sent


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def workers(self) -> list[int]:
        done = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in done.stdout.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def gunicorn_command(app: str, port: int, workers: int) -> list[str]:
    """The same settings for the portal and the baseline: sync workers (see README.md)."""
    return [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "--chdir",
        str(ROOT),
        app,
    ]


def start_server(name: str, app: str, workers: int, env: dict[str, str], tmp: Path) -> Server:
    port = free_port()
    log_path = tmp / f"{name}.log"
    process = subprocess.Popen(
        gunicorn_command(app, port, workers),
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"{name} did not listen on {port}")
    # Warm both workers (imports, engine, templates) before anything is measured.
    for _ in range(6):
        Browser(port).request("GET", "/login" if name == "portal" else "/")
    return server


def peak_memory_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- what to drive --------------------------------------------------------------------------------


@dataclass
class Page:
    key: str
    label: str
    kind: str  # "read" or "write"
    threads: list[list[dict]]
    connections: int | None = None  # fewer than --connections when too few users/objects
    expect: int = 200
    bad: str | None = None
    queries: str = "?"
    note: str = ""
    result: dict = field(default_factory=dict)


@dataclass
class Cast:
    """The signed-in users the run drives pages as."""

    volunteers: list[tuple[dict, Browser]]
    gridworker: tuple[dict, Browser]
    secretary: tuple[dict, Browser]
    community_id: int


def lua_string(value: str) -> str:
    """A Lua string literal: plain ASCII as it is, every other byte as a 3-digit escape."""
    plain = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 /?=&%.,:;_-+*()")
    return (
        '"'
        + "".join(chr(byte) if byte in plain else f"\\{byte:03d}" for byte in value.encode("utf-8"))
        + '"'
    )


def lua_item(item: dict) -> str:
    headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in item["headers"].items())
    body = lua_string(item["body"]) if item.get("body") else "nil"
    return (
        f"{{method = {lua_string(item['method'])}, path = {lua_string(item['path'])}, "
        f"headers = {{{headers}}}, body = {body}}}"
    )


def write_lua_data(page: Page, path: Path) -> None:
    threads = ",\n".join(
        "  {\n" + ",\n".join("    " + lua_item(i) for i in items) + "\n  }"
        for items in page.threads
    )
    bad = lua_string(page.bad) if page.bad else "nil"
    path.write_text(
        f"return {{\nexpect = {page.expect},\nbad = {bad},\nthreads = {{\n{threads}\n}}\n}}\n"
    )


def get_item(path: str, browser: Browser | None) -> dict:
    return {"method": "GET", "path": path, "headers": browser.headers() if browser else {}}


def post_item(path: str, browser: Browser, *, htmx: bool = False, form: dict | None = None) -> dict:
    return {
        "method": "POST",
        "path": path,
        "headers": browser.headers(write=True, htmx=htmx),
        "body": urlencode(form or {}),
    }


def split(items: list, threads: int) -> list[list]:
    return [items[n::threads] for n in range(threads)] if len(items) >= threads else [items]


def write_shape(pairs: int, args) -> tuple[int, int]:
    """(threads, connections) for a write page of ``pairs`` users: each thread cycles through
    at least twice as many users as it has connections, so one user's sign-up and cancel (or
    claim and release) are never in flight together."""
    threads = args.threads if pairs >= 2 * args.connections else 1
    connections = min(args.connections, max(1, pairs // 2))
    return threads, max(connections, threads)


def sample_queries(port: int, item: dict) -> int | None:
    return sample(port, item)[0]


def sample(port: int, item: dict) -> tuple[int | None, str | None]:
    """One request: its X-Query-Count and its X-Page-Cache (hit, miss or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(item["method"], item["path"], body=item.get("body"), headers=item["headers"])
        response = conn.getresponse()
        response.read()
        value = response.getheader("X-Query-Count")
        return (int(value) if value is not None else None), response.getheader("X-Page-Cache")
    finally:
        conn.close()


def read_queries(samples: list[tuple[int | None, str | None]]) -> str:
    """The queries of a rendered answer, and of one from the page cache when there was one:
    "8" (never cached), "8 / hit 1"."""
    rendered = [q for q, cache in samples if cache != "hit"]
    hits = [q for q, cache in samples if cache == "hit"]
    shown = [str(rendered[0])] if rendered else []
    if hits:
        shown.append(f"hit {hits[0]}")
    return " / ".join(shown)


# --- choosing users and objects from the database ----------------------------------------------


def choose_accounts(engine, pattern: str | None, volunteers_wanted: int) -> dict:
    """Volunteers (approved, with a person) of the community that has most of them, and that
    community's grid worker and secretary."""

    def like(infix: str) -> str:
        return f"{pattern}{infix}%" if pattern else "%"

    with engine.connect() as conn:
        community = conn.execute(
            text(
                'SELECT v.community_id, count(*) AS n FROM "user" u '
                "JOIN volunteer v ON v.person_id = u.person_id "
                "WHERE u.role = 'volunteer' AND u.active AND v.status = 'approved' "
                "AND u.username LIKE :like GROUP BY v.community_id ORDER BY n DESC LIMIT 1"
            ),
            {"like": like("vol")},
        ).first()
        if community is None:
            raise SystemExit("no approved volunteer accounts found")
        community_id = community[0]
        vols = (
            conn.execute(
                text(
                    'SELECT u.username, u.person_id, v.grid_id, v.community_id FROM "user" u '
                    "JOIN volunteer v ON v.person_id = u.person_id "
                    "WHERE u.role = 'volunteer' AND u.active AND v.status = 'approved' "
                    "AND v.community_id = :c AND u.username LIKE :like ORDER BY u.id LIMIT :n"
                ),
                {
                    "c": community_id,
                    "like": like("vol"),
                    "n": volunteers_wanted,
                },
            )
            .mappings()
            .all()
        )

        def staff(role: str, infix: str) -> dict:
            row = (
                conn.execute(
                    text(
                        'SELECT username, id, community_id FROM "user" '
                        "WHERE role = :role AND active AND community_id = :c "
                        "AND username LIKE :like ORDER BY id LIMIT 1"
                    ),
                    {
                        "role": role,
                        "c": community_id,
                        "like": like(infix),
                    },
                )
                .mappings()
                .first()
            )
            if row is None:
                raise SystemExit(f"no {role} account in community {community_id}")
            return dict(row)

        return {
            "community_id": community_id,
            "volunteers": [dict(v) for v in vols],
            "gridworker": staff("grid_worker", "gw"),
            "secretary": staff("secretary", "sec"),
        }


def sign_in_cast(port: int, accounts: dict, password: str) -> Cast:
    volunteers = []
    for row in accounts["volunteers"]:
        browser = Browser(port)
        browser.login(row["username"], password)
        volunteers.append((row, browser))
    gw, sec = Browser(port), Browser(port)
    gw.login(accounts["gridworker"]["username"], password)
    sec.login(accounts["secretary"]["username"], password)
    return Cast(
        volunteers,
        (accounts["gridworker"], gw),
        (accounts["secretary"], sec),
        accounts["community_id"],
    )


def upcoming_shifts(engine, community_id: int, limit: int) -> list[int]:
    # Far enough ahead that the cancel cut-off (2 h before the start) never applies.
    after = datetime.now(UTC) + timedelta(days=1)
    if engine.dialect.name == "sqlite":
        after = after.replace(tzinfo=None)
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id FROM shift WHERE community_id = :c AND status = 'scheduled' "
                    "AND starts_at > :after ORDER BY starts_at, id LIMIT :n"
                ),
                {"c": community_id, "after": after, "n": limit},
            ).scalars()
        )


def pick_signup_pairs(
    port: int, cast: Cast, shifts: list[int], wanted: int
) -> tuple[list, int, int]:
    """(volunteer browser, shift id) pairs whose sign-up and cancel both work, found by trying
    them; returns the queries of one sign-up and of one cancel too."""
    pairs, q_signup, q_cancel = [], 0, 0
    for row, browser in cast.volunteers:
        for shift_id in shifts[:12]:
            up = post_item(f"/shifts/{shift_id}/signup", browser, htmx=True)
            status, _, body = browser.request("POST", up["path"], data={}, headers=up["headers"])
            if status != 200 or "flash-error" in body:
                continue
            down = post_item(f"/shifts/{shift_id}/cancel", browser, htmx=True)
            status, _, body = browser.request(
                "POST", down["path"], data={}, headers=down["headers"]
            )
            if status != 200 or "flash-error" in body:
                continue
            pairs.append((row, browser, shift_id))
            break
        if len(pairs) >= wanted:
            break
    if pairs:
        _, browser, shift_id = pairs[0]
        q_signup = (
            sample_queries(port, post_item(f"/shifts/{shift_id}/signup", browser, htmx=True)) or 0
        )
        q_cancel = (
            sample_queries(port, post_item(f"/shifts/{shift_id}/cancel", browser, htmx=True)) or 0
        )
    return pairs, q_signup, q_cancel


def pick_claim_pairs(engine, port: int, cast: Cast, wanted: int) -> tuple[list, int, int]:
    """(volunteer, open neighbour-help request of their grid) pairs whose claim and release
    both work; one request per volunteer."""
    by_grid: dict[int, list] = {}
    for row, browser in cast.volunteers:
        by_grid.setdefault(row["grid_id"], []).append((row, browser))
    with engine.connect() as conn:
        open_requests = conn.execute(
            text(
                "SELECT r.id, r.grid_id FROM help_request r "
                "JOIN category c ON c.id = r.category_id "
                "WHERE r.community_id = :c AND c.kind = 'neighbour_help' "
                "AND r.status IN ('submitted', 'accepted') AND r.volunteer_id IS NULL "
                "AND r.grid_id IS NOT NULL ORDER BY r.id LIMIT 400"
            ),
            {"c": cast.community_id},
        ).all()
    pairs, used = [], set()
    for request_id, grid_id in open_requests:
        for row, browser in by_grid.get(grid_id, []):
            if row["username"] in used:
                continue
            claim = post_item(f"/handling/{request_id}/claim", browser, form={"view": "board"})
            status, _, _ = browser.request(
                "POST", claim["path"], data={"view": "board"}, headers=claim["headers"]
            )
            if status != 303:
                break
            release = post_item(f"/handling/{request_id}/release", browser, form={"view": "board"})
            status, _, _ = browser.request(
                "POST", release["path"], data={"view": "board"}, headers=release["headers"]
            )
            if status != 303:
                break
            pairs.append((row, browser, request_id))
            used.add(row["username"])
            break
        if len(pairs) >= wanted:
            break
    q_claim = q_release = 0
    if pairs:
        _, browser, request_id = pairs[0]
        q_claim = (
            sample_queries(
                port, post_item(f"/handling/{request_id}/claim", browser, form={"view": "board"})
            )
            or 0
        )
        q_release = (
            sample_queries(
                port, post_item(f"/handling/{request_id}/release", browser, form={"view": "board"})
            )
            or 0
        )
    return pairs, q_claim, q_release


def prepare_redeem(database_url: str, cast: Cast, budget: int) -> int | None:
    """Make one reward of the community redeemable for the whole run: stock and points enough
    for ``budget`` redemptions, no per-person limit (benchmark data only)."""
    from portal import create_app
    from portal.extensions import db
    from portal.points import ledger

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            db.session.connection(execution_options={"sqlite_immediate": True})
        row = db.session.execute(
            text(
                "SELECT id, cost FROM reward WHERE community_id = :c AND active "
                "ORDER BY cost, id LIMIT 1"
            ),
            {"c": cast.community_id},
        ).first()
        if row is None:
            return None
        reward_id, cost = row
        db.session.execute(
            text("UPDATE reward SET stock = stock + :n, per_person_limit = NULL WHERE id = :id"),
            {"n": budget, "id": reward_id},
        )
        per_person = max(cost, 1) * (budget // max(len(cast.volunteers), 1) + 1)
        for vol, _ in cast.volunteers:
            left = per_person
            while left > 0:
                step = min(left, ledger.MAX_ADJUST_POINTS)
                ledger.adjust(
                    vol["person_id"],
                    points=step,
                    hours=0,
                    reason="benchmark top-up",
                    actor_id=cast.secretary[0]["id"],
                )
                left -= step
        db.session.commit()
        db.engine.dispose()
        return reward_id


def request_with_timeline(engine, community_id: int) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT e.request_id FROM request_event e WHERE e.community_id = :c "
                "AND e.request_id IN (SELECT id FROM help_request WHERE community_id = :c "
                "ORDER BY id DESC LIMIT 200) "
                "GROUP BY e.request_id ORDER BY count(*) DESC, e.request_id LIMIT 1"
            ),
            {"c": community_id},
        ).scalar()


def roster_query(engine, cast: Cast) -> str:
    with engine.connect() as conn:
        name = conn.execute(
            text("SELECT name FROM person WHERE id = :id"),
            {"id": cast.volunteers[-1][0]["person_id"]},
        ).scalar()
    return (name or "a")[:1]


# --- one page under wrk ------------------------------------------------------------------------


def run_wrk(port: int, page: Page, args, tmp: Path) -> dict:
    data = tmp / f"{page.key}.lua"
    write_lua_data(page, data)
    connections = page.connections or args.connections
    command = [
        args.wrk,
        f"-t{len(page.threads)}",
        f"-c{max(connections, len(page.threads))}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "wrk" / "cycle.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        str(data),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    bad = [
        line[len("BENCHBAD ") :]
        for line in done.stdout.splitlines()
        if line.startswith("BENCHBAD ")
    ]
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result = json.loads(line[len("BENCHJSON ") :])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["bad"] = bad
            return result
    raise RuntimeError(f"wrk gave no result for {page.key}:\n{done.stdout}\n{done.stderr}")


# --- the report ---------------------------------------------------------------------------------


def machine() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def verdict(page: Page, baseline_rps: float) -> tuple[str, list[str]]:
    r = page.result
    why = []
    errors = r["status_errors"] + r["socket_errors"] + r["unexpected"]
    queries = [int(q) for q in re.findall(r"\d+", page.queries)]
    if page.kind == "read":
        if r["rps"] < READ_RATIO * baseline_rps:
            why.append("throughput")
        if r["p95_us"] / 1000 > READ_P95_MS:
            why.append("p95")
    elif r["p95_us"] / 1000 > WRITE_P95_MS:
        why.append("p95")
    if errors:
        why.append("errors")
    if not queries or max(queries) > MAX_QUERIES:
        why.append("queries")
    return ("pass" if not why else "FAIL"), why


def hit_share(result: dict) -> str:
    answered = result.get("answered") or 0
    return f"{result.get('cache_hits', 0) / answered:.0%}" if answered else "–"


def write_results(
    path: Path, pages: list[Page], baseline: list[dict], memory: dict, meta: dict, append: bool
):
    base_rps = sum(b["rps"] for b in baseline) / len(baseline)
    lines = [
        f"## {meta['engine']}, {meta['scale']} data, {meta['date']}",
        "",
        f"- Command: `{meta['command']}`",
        f"- Database: {meta['engine']} (`{meta['database']}`), data scale: **{meta['scale']}**",
        f"- Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
        f"{meta['machine']['ram_gb']} GB RAM, Linux {meta['machine']['kernel']}, "
        f"Python {meta['machine']['python']}",
        f"- Load average (1/5/15 min) before and after the run: {meta['load_before']} → "
        f"{meta['load_after']} (other processes on the machine lower every figure)",
        f"- Load: wrk -t{meta['threads']} -c{meta['connections']}, {meta['duration']} s per page; "
        "gunicorn 2 sync workers for the portal and the baseline alike",
        f"- Accounts: {meta['accounts']}",
        "- Baseline (bare Flask, 50-row table): "
        + ", ".join(f"{b['rps']:.0f} req/s (p95 {b['p95_us'] / 1000:.1f} ms)" for b in baseline)
        + f"; ratios use the mean, {base_rps:.0f} req/s",
        "",
        "Budget: read pages >= 40 % of the baseline's throughput and p95 <= 50 ms; writes p95 "
        "<= 100 ms; no error answers; <= 10 SQL queries per request; worker peak memory "
        "<= 200 MB.",
        "",
        "| Page | Kind | req/s | vs baseline | p50 ms | p95 ms | p99 ms | errors | queries "
        "| page cache hits | budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for page in pages:
        r = page.result
        if not r:
            lines.append(
                f"| {page.label} | {page.kind} | – | – | – | – | – | – | – | – "
                f"| not run: {page.note} |"
            )
            continue
        outcome, why = verdict(page, base_rps)
        errors = r["status_errors"] + r["socket_errors"] + r["unexpected"]
        shape = (
            f" (-c{page.connections})"
            if page.connections and page.connections != meta["connections"]
            else ""
        )
        lines.append(
            f"| {page.label}{shape} | {page.kind} | {r['rps']:.0f} | {r['rps'] / base_rps:.0%} "
            f"| {r['p50_us'] / 1000:.1f} | {r['p95_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} "
            f"| {errors} | {page.queries} | {hit_share(r)} "
            f"| {outcome}{' (' + ', '.join(why) + ')' if why else ''} |"
        )
    peak = max(memory["portal"], default=0.0)
    lines += [
        "",
        "Worker peak memory (VmHWM): portal "
        + ", ".join(f"{m:.0f} MB" for m in memory["portal"])
        + "; baseline "
        + ", ".join(f"{m:.0f} MB" for m in memory["baseline"])
        + f" — {'pass' if peak <= MAX_MEMORY_MB else 'FAIL'} (budget {MAX_MEMORY_MB:.0f} MB)",
        "",
        "Errors = non-2xx/3xx answers + socket errors + answers that were not what the page "
        "should answer (a write refused with a message, a redirect to sign-in). Queries = the "
        "X-Query-Count header of one sample request (sign-up/cancel, claim/release: both; a "
        'read page: a rendered answer, and one from the page cache, "hit"). Page cache hits = '
        "answers the portal did not render (portal/core/pagecache.py; `X-Page-Cache: hit`). "
        f"Page cache: {meta['page_cache']}. Database: {meta['settled']}.",
    ]
    notes = [f"- {p.label}: {p.note}" for p in pages if p.note]
    notes += [
        f"- {p.label}: first unexpected answer: `{bad[:200]}`"
        for p in pages
        for bad in (p.result.get("bad") or [])[:1]
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    report = "\n".join(lines) + "\n"
    if append and path.exists():
        path.write_text(path.read_text().rstrip("\n") + "\n\n" + report)
    else:
        path.write_text("# Benchmark results\n\n" + report)


# --- the run --------------------------------------------------------------------------------------


def settle(engine) -> str:
    """Write out what setting up left dirty (the bulk build, the redeem top-up) before the
    measurements, so that a checkpoint of that work does not fall into them: PostgreSQL's
    CHECKPOINT (superuser or pg_checkpoint), SQLite's WAL checkpoint. What was done, for the
    report."""
    if engine.dialect.name == "postgresql":
        statement = "CHECKPOINT"
    else:
        statement = "PRAGMA wal_checkpoint(TRUNCATE)"
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(statement))
    except Exception as error:  # noqa: BLE001 - a role without the right: measure anyway
        log(f"{statement} failed ({error.__class__.__name__}); measuring without it")
        return f"`{statement}` failed before the measurements"
    return f"`{statement}` before the measurements"


def build_pages(engine, port: int, cast: Cast, args) -> list[Page]:
    threads = args.threads
    vols = cast.volunteers
    sec = cast.secretary[1]
    gw = cast.gridworker[1]
    shifts = upcoming_shifts(engine, cast.community_id, 40)
    pages: list[Page] = []

    def each_volunteer(path: str) -> list[list[dict]]:
        return split([get_item(path, b) for _, b in vols[: args.connections * 2]], threads)

    pages.append(Page("home", "Volunteer home `/`", "read", each_volunteer("/")))
    pages.append(
        Page(
            "week",
            "Shift list, week `/shifts?view=week`",
            "read",
            each_volunteer("/shifts?view=week"),
        )
    )
    if shifts:
        pages.append(
            Page(
                "shift",
                f"Shift detail `/shifts/{shifts[0]}`",
                "read",
                each_volunteer(f"/shifts/{shifts[0]}"),
            )
        )
    pages.append(Page("points", "My points `/points`", "read", each_volunteer("/points")))
    pages.append(
        Page(
            "lb_grid", "Leaderboard grid", "read", each_volunteer("/points/leaderboard?scope=grid")
        )
    )
    pages.append(
        Page(
            "lb_community",
            "Leaderboard community",
            "read",
            each_volunteer("/points/leaderboard?scope=community"),
        )
    )
    pages.append(Page("board", "Help board `/board`", "read", each_volunteer("/board")))
    pages.append(
        Page("queue", "Grid worker queue `/handling`", "read", [[get_item("/handling", gw)]])
    )
    q = roster_query(engine, cast)
    pages.append(
        Page(
            "roster",
            "Roster search `/volunteers/?q=…`",
            "read",
            [[get_item(f"/volunteers/?q={quote(q)}", sec)]],
        )
    )
    request_id = request_with_timeline(engine, cast.community_id)
    if request_id:
        pages.append(
            Page(
                "timeline",
                f"Request timeline `/requests/{request_id}`",
                "read",
                [[get_item(f"/requests/{request_id}", sec)]],
            )
        )
    # As Open311 clients ask for it (HTTP libraries send Accept-Encoding: gzip): the list is
    # up to 1,000 requests, ~300 KB as it is, ~30 KB compressed.
    open311 = get_item(f"/open311/v2/requests.json?jurisdiction_id={cast.community_id}", None)
    open311["headers"] = {"Accept-Encoding": "gzip"}
    pages.append(Page("open311", "Open311 GET requests.json (gzip)", "read", [[open311]]))
    for page in pages:
        # Each gunicorn worker keeps its own page cache: four samples see both workers.
        page.queries = read_queries([sample(port, page.threads[0][0]) for _ in range(4)])

    # Writes: each volunteer alternates sign-up and cancel of one shift; K volunteers per thread.
    signup = Page("signup", "Sign-up + cancel (POST, htmx)", "write", [], bad="flash-error")
    pairs, q_up, q_down = pick_signup_pairs(port, cast, shifts, args.write_users)
    if pairs:
        shape_threads, signup.connections = write_shape(len(pairs), args)
        signup.threads = [
            [post_item(f"/shifts/{s}/signup", b, htmx=True) for _, b, s in chunk]
            + [post_item(f"/shifts/{s}/cancel", b, htmx=True) for _, b, s in chunk]
            for chunk in split(pairs, shape_threads)
        ]
        signup.queries = f"{q_up} / {q_down}"
        signup.note = f"{len(pairs)} volunteers, each alternating on one shift"
    else:
        signup.note = "no volunteer/shift pair could sign up and cancel"
    pages.append(signup)

    claim = Page("claim", "Claim + release (POST)", "write", [], expect=303)
    pairs, q_claim, q_release = pick_claim_pairs(engine, port, cast, args.write_users)
    if pairs:
        shape_threads, claim.connections = write_shape(len(pairs), args)
        claim.threads = [
            [post_item(f"/handling/{r}/claim", b, form={"view": "board"}) for _, b, r in chunk]
            + [post_item(f"/handling/{r}/release", b, form={"view": "board"}) for _, b, r in chunk]
            for chunk in split(pairs, shape_threads)
        ]
        claim.queries = f"{q_claim} / {q_release}"
        claim.note = f"{len(pairs)} volunteers, each alternating on one open request of their grid"
    else:
        claim.note = f"only {len(pairs)} volunteer/open-request pairs found"
    pages.append(claim)

    redeem = Page("redeem", "Redeem (POST)", "write", [], expect=303)
    reward_id = prepare_redeem(args.database_url, cast, budget=args.redeem_budget)
    if reward_id:
        items = [post_item(f"/rewards/{reward_id}/redeem", b) for _, b in vols]
        redeem.threads = split(items, threads)
        redeem.queries = str(sample_queries(port, items[0]))
        redeem.note = (
            f"reward {reward_id}, stock and {len(vols)} volunteers' points topped up "
            f"for {args.redeem_budget} redemptions before the run"
        )
    else:
        redeem.note = "no active reward in the community"
    pages.append(redeem)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--scale", default="demo", help="label of the data set: demo, small, city")
    parser.add_argument("--duration", type=int, default=15, help="seconds per page")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--accounts",
        choices=("auto", "bench", "demo"),
        default="auto",
        help="bench: bench_vol_*/bench_gw_*/bench_sec_* (password tongxin-bench); "
        "demo: any account (password tongxin-demo)",
    )
    parser.add_argument("--password", help="overrides the accounts' preset password")
    parser.add_argument("--volunteers", type=int, default=64, help="volunteers to sign in")
    parser.add_argument(
        "--write-users",
        type=int,
        default=64,
        help="volunteers per write page (more than --connections)",
    )
    parser.add_argument("--redeem-budget", type=int, default=20000)
    parser.add_argument("--only", help="comma-separated page keys to run")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"))
    parser.add_argument("--append", action="store_true", help="add to --output, not replace it")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument(
        "--page-cache-bytes",
        type=int,
        help="PAGE_CACHE_BYTES of the portal's workers (0: every page rendered; unset: the app's "
        "default)",
    )
    args = parser.parse_args(argv)
    if args.database_url.startswith("postgresql://"):
        args.database_url = "postgresql+psycopg://" + args.database_url[len("postgresql://") :]

    engine = create_engine(args.database_url)
    accounts_kind = args.accounts
    if accounts_kind == "auto":
        with engine.connect() as conn:
            has_bench = conn.execute(
                text("SELECT 1 FROM \"user\" WHERE username LIKE 'bench_vol_%' LIMIT 1")
            ).first()
        accounts_kind = "bench" if has_bench else "demo"
    password = args.password or (BENCH_PASSWORD if accounts_kind == "bench" else DEMO_PASSWORD)
    accounts = choose_accounts(
        engine, "bench_" if accounts_kind == "bench" else None, args.volunteers
    )
    log(
        f"community {accounts['community_id']}: {len(accounts['volunteers'])} volunteers, "
        f"grid worker {accounts['gridworker']['username']}, "
        f"secretary {accounts['secretary']['username']}"
    )

    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    tmp = Path(tempfile.mkdtemp(prefix="tongxin-bench-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        QUERY_COUNT_HEADER="1",
        SECRET_KEY=secrets.token_urlsafe(48),
        PYTHONUNBUFFERED="1",
    )
    if args.page_cache_bytes is not None:
        env["PAGE_CACHE_BYTES"] = str(args.page_cache_bytes)
    env.pop("FLASK_DEBUG", None)
    servers: list[Server] = []
    try:
        portal = start_server("portal", "wsgi:app", args.workers, env, tmp)
        servers.append(portal)
        baseline_server = start_server("baseline", "bench.baseline_app:app", args.workers, env, tmp)
        servers.append(baseline_server)
        log(
            f"portal on :{portal.port} (workers {portal.workers()}), "
            f"baseline on :{baseline_server.port}"
        )
        cast = sign_in_cast(portal.port, accounts, password)
        pages = build_pages(engine, portal.port, cast, args)
        if args.only:
            keep = set(args.only.split(","))
            pages = [p for p in pages if p.key in keep]
        settled = settle(engine)
        base_page = Page("baseline", "baseline", "read", [[get_item("/", None)]])
        baseline = [run_wrk(baseline_server.port, base_page, args, tmp)]
        log(f"baseline: {baseline[0]['rps']:.0f} req/s, p95 {baseline[0]['p95_us'] / 1000:.1f} ms")
        for page in pages:
            if not page.threads:
                log(f"{page.key}: skipped ({page.note})")
                continue
            page.result = run_wrk(portal.port, page, args, tmp)
            r = page.result
            log(
                f"{page.key}: {r['rps']:.0f} req/s, p95 {r['p95_us'] / 1000:.1f} ms, "
                f"errors {r['status_errors'] + r['socket_errors'] + r['unexpected']}, "
                f"queries {page.queries}"
            )
        baseline.append(run_wrk(baseline_server.port, base_page, args, tmp))
        log(f"baseline again: {baseline[1]['rps']:.0f} req/s")
        memory = {
            "portal": [peak_memory_mb(pid) for pid in portal.workers()],
            "baseline": [peak_memory_mb(pid) for pid in baseline_server.workers()],
        }
    finally:
        for server in servers:
            server.stop()
    safe_url = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", args.database_url)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python bench/run.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "engine": engine.dialect.name,
        "database": safe_url,
        "scale": args.scale,
        "machine": machine(),
        "threads": args.threads,
        "load_before": load_before,
        "load_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "connections": args.connections,
        "duration": args.duration,
        "settled": settled,
        "page_cache": (
            "off (PAGE_CACHE_BYTES=0): every page rendered"
            if args.page_cache_bytes == 0
            else f"on, {env.get('PAGE_CACHE_BYTES') or 'the default'} bytes per worker"
        ),
        "accounts": f"{accounts_kind} ({len(cast.volunteers)} volunteers of community "
        f"{cast.community_id}, {cast.gridworker[0]['username']}, {cast.secretary[0]['username']})",
    }
    write_results(Path(args.output), pages, baseline, memory, meta, args.append)
    log(f"written {args.output}")
    print(Path(args.output).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
