"""Photo uploads against sign-ups (issue 15): does one person's upload stall everyone's writes?

    .venv/bin/python bench/uploads.py --database-url sqlite:////tmp/i15_uploads_bench.db

Serves the portal with gunicorn (sync workers, as in the README's production section) on a
seeded database (``flask seed-bench --scale small``), signs volunteers in over HTTP, and while
``--uploaders`` clients keep submitting help requests with a photo (in turn the largest a
phone takes, a noisy 24 MP JPEG of a few MB, and the attack's form: a flat 7000 x 7000 JPEG of
a few hundred KB), other volunteers sign up for a shift and cancel, one request after another
(``--upload-workers``: the uploads go to a gunicorn of their own, as nginx would route them).
Reports the sign-ups' latency (p50/p95/p99/max) and errors, the uploads' outcomes, and the
gunicorn workers' peak memory (VmHWM); with ``--output`` it appends the row to a Markdown file
(bench/RESULTS.md). See bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import re
import secrets
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BENCH_PASSWORD,
    Browser,
    choose_accounts,
    log,
    peak_memory_mb,
    pick_signup_pairs,
    post_item,
    start_server,
    upcoming_shifts,
)

PHOTO_CACHE = Path(tempfile.gettempdir()) / "tongxin-bench-photos"
SIGNUP_P95_MS = 100.0
MAX_MEMORY_MB = 200.0


# --- photos ---------------------------------------------------------------------------------------


def phone_photo(seed: int, size=(6000, 4000)) -> bytes:
    """A photo-like JPEG of ``size`` (24 MP): blotchy texture, a gradient and sensor noise,
    saved at quality 88 like a phone camera: a few MB, not a flat colour that compresses to
    nothing. Made once per seed and kept in the temporary folder (it takes ~10 s)."""
    path = PHOTO_CACHE / f"phone-{size[0]}x{size[1]}-{seed}.jpg"
    if path.exists():
        return path.read_bytes()
    from PIL import Image

    width, height = size
    channels = []
    for channel in range(3):
        blotches = Image.effect_noise((width // 8, height // 8), 50 + 10 * channel + seed)
        texture = blotches.resize(size, Image.Resampling.BICUBIC)
        sensor = Image.effect_noise(size, 18)
        channels.append(Image.blend(texture, sensor, 0.25))
    image = Image.merge("RGB", channels)
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.blend(image, gradient, 0.35)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    PHOTO_CACHE.mkdir(exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def attack_photo(width: int = 7000, height: int = 7000) -> bytes:
    """The form of the attack: a valid JPEG of ``width`` x ``height`` pixels (49 MP) of one flat
    colour, which compresses to a few hundred KB and takes seconds and ~150 MB to decode."""
    path = PHOTO_CACHE / f"attack-{width}x{height}.jpg"
    if path.exists():
        return path.read_bytes()
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "gray").save(buffer, format="JPEG", optimize=True)
    PHOTO_CACHE.mkdir(exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def multipart(fields: dict[str, str], photo: bytes, filename: str) -> tuple[bytes, str]:
    boundary = "----tongxin" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- the clients ---------------------------------------------------------------------------------


def classify_upload(status: int, body: str) -> str:
    if status == 303:
        return "stored"
    if status == 200 and ("too many pixels" in body or "像素过高" in body):
        return "refused: too many pixels"
    if status == 200 and ("Many photos are being sent" in body or "发送照片的人较多" in body):
        return "refused: busy, send again"
    if status == 200 and ("not a photo" in body or "不是照片" in body):
        return "refused: not a photo"
    return f"error {status}"


def uploader(port: int, cookies: dict, csrf: str, bodies: list, stop: threading.Event, out: list):
    import http.client

    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    turn = 0
    while not stop.is_set():
        body, content_type, kind = bodies[turn % len(bodies)]
        turn += 1
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request(
                "POST",
                "/requests/new",
                body=body,
                headers={"Cookie": cookie, "X-CSRFToken": csrf, "Content-Type": content_type},
            )
            response = conn.getresponse()
            text_ = response.read().decode("utf-8", "replace")
            outcome = classify_upload(response.status, text_)
            conn.close()
        except OSError as error:
            outcome = f"error {type(error).__name__}"
        out.append((kind, outcome, time.monotonic() - started))


def signer(port: int, items: list[dict], seconds: float, queue) -> None:
    """Sign up and cancel, one request after another, for ``seconds``; (latency s, error)."""
    import http.client

    results = []
    deadline = time.monotonic() + seconds
    turn = 0
    # Whole rounds only (every sign-up cancelled again), so the next run starts from the same
    # state; a request sent after the deadline, to finish the round, is not counted.
    while time.monotonic() < deadline or turn % len(items):
        counted = time.monotonic() < deadline
        item = items[turn % len(items)]
        turn += 1
        started = time.monotonic()
        error = None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", item["path"], body=item["body"], headers=item["headers"])
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            conn.close()
            if response.status != 200:
                error = f"HTTP {response.status}"
            elif "flash-error" in body:
                found = re.search(r"flash-error[^>]*>\s*(?:<[^>]+>\s*)*([^<]{0,80})", body)
                error = "answered: " + (found.group(1).strip() if found else "an error message")
        except OSError as exc:
            error = type(exc).__name__
        if counted:
            results.append((time.monotonic() - started, error))
    queue.put(results)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure_signups(port: int, threads: list[list[dict]], seconds: float, at_end=None) -> list:
    """Run the sign-up clients for ``seconds``, then call ``at_end`` (the uploads stop while
    the clients finish their rounds)."""
    queue = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=signer, args=(port, items, seconds, queue))
        for items in threads
    ]
    for process in processes:
        process.start()
    time.sleep(seconds)
    if at_end is not None:
        at_end()
    results = []
    for _ in processes:
        results.extend(queue.get())
    for process in processes:
        process.join()
    return results


def summary(results: list) -> dict:
    latencies = [latency * 1000 for latency, _ in results]
    errors = [error for _, error in results if error]
    return {
        "n": len(results),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
    }


# --- the run -------------------------------------------------------------------------------------


def minor_category(engine, community_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id FROM category WHERE community_id = :c AND parent_id IS NOT NULL "
                "AND active ORDER BY id LIMIT 1"
            ),
            {"c": community_id},
        ).scalar_one()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--uploaders", type=int, default=8)
    parser.add_argument(
        "--upload-workers",
        type=int,
        default=0,
        help="serve the uploads from a second gunicorn with this many sync workers, as nginx "
        "routing multipart requests to their own pool would (0: the same workers)",
    )
    parser.add_argument("--signers", type=int, default=2, help="sign-up clients (processes)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds under uploads")
    parser.add_argument("--quiet-duration", type=float, default=10.0)
    parser.add_argument("--password", default=BENCH_PASSWORD)
    parser.add_argument("--app-root", default=str(ROOT), help="the checkout gunicorn serves")
    parser.add_argument("--label", default="", help="what is measured (e.g. the commit)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for gunicorn")
    parser.add_argument("--output", help="append the row to this Markdown file")
    args = parser.parse_args(argv)

    url = args.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url)
    accounts = choose_accounts(engine, "bench_", args.uploaders + 4 * args.signers + 8)
    community_id = accounts["community_id"]
    category = minor_category(engine, community_id)
    shifts = upcoming_shifts(engine, community_id, 40)

    log("preparing photos (a 24 MP one takes ~10 s the first time)")
    bodies = []
    for seed in range(2):
        photo = phone_photo(seed)
        bodies.append(("24 MP photo", photo))
    attack = attack_photo()
    fields = {
        "category": str(category),
        "description": "Bench: the street lamp at the gate is out",
        "where": "address",
        "address": "Bench road 1",
        "urgency": "normal",
    }
    sizes = ", ".join(f"{len(p) / 1e6:.1f} MB" for _, p in bodies)
    log(f"photos: {sizes}; attack: a flat 7000 x 7000 JPEG of {len(attack) / 1e3:.0f} KB")

    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        SECRET_KEY=secrets.token_urlsafe(48),
        PAGE_CACHE_BYTES=env.get("PAGE_CACHE_BYTES", str(32 * 1024 * 1024)),
    )
    for pair in args.env:
        name, _, value = pair.partition("=")
        env[name] = value
    tmp = Path(tempfile.mkdtemp(prefix="tongxin-uploads-"))
    # The portal keeps photos in its checkout's instance/uploads/: the run removes the ones
    # it made afterwards (the benchmark database's rows keep their names).
    uploads = Path(args.app_root) / "instance" / "uploads"
    before = set(uploads.rglob("*")) if uploads.exists() else set()
    import bench.run as run_module

    run_module.ROOT = Path(args.app_root)  # gunicorn --chdir: the checkout measured
    server = start_server("portal", "wsgi:app", args.workers, env, tmp)
    upload_server = None
    try:
        if args.upload_workers:
            upload_server = start_server("portal", "wsgi:app", args.upload_workers, env, tmp)
        upload_port = upload_server.port if upload_server else server.port
        log(f"portal on port {server.port}, {args.workers} sync workers, root {args.app_root}")
        volunteers = []
        for row in accounts["volunteers"]:
            browser = Browser(server.port)
            browser.login(row["username"], args.password)
            volunteers.append((row, browser))
        uploaders, signers = volunteers[: args.uploaders], volunteers[args.uploaders :]
        from bench.run import Cast

        cast = Cast(signers, None, None, community_id)  # type: ignore[arg-type]
        pairs, _, _ = pick_signup_pairs(server.port, cast, shifts, 4 * args.signers)
        if len(pairs) < args.signers:
            raise SystemExit("too few volunteer/shift pairs could sign up and cancel")
        threads: list[list[dict]] = [[] for _ in range(args.signers)]
        for index, (_, browser, shift_id) in enumerate(pairs):
            thread = threads[index % args.signers]
            for action in ("signup", "cancel"):
                item = post_item(f"/shifts/{shift_id}/{action}", browser, htmx=True)
                item["body"] = ""
                thread.append(item)
        # Each thread: sign up v1..vK, then cancel them (a volunteer's next request never
        # overlaps its last): reorder to all sign-ups first.
        threads = [t[0::2] + t[1::2] for t in threads]

        log(f"sign-ups alone for {args.quiet_duration:.0f} s ({len(pairs)} volunteers)")
        quiet = summary(measure_signups(server.port, threads, args.quiet_duration))
        log(f"  p95 {quiet['p95']:.1f} ms, {quiet['errors']} errors of {quiet['n']}")

        upload_bodies = []
        for kind, photo in bodies:
            body, content_type = multipart(fields, photo, "IMG_0001.JPG")
            upload_bodies.append((body, content_type, kind))
            body, content_type = multipart(fields, attack, "IMG_0002.JPG")
            upload_bodies.append((body, content_type, "attack 49 MP flat"))
        stop = threading.Event()
        outcomes: list = []
        clients = []
        for index, (_, browser) in enumerate(uploaders):
            rotated = upload_bodies[index % len(upload_bodies) :] + upload_bodies[: index % 4]
            client = threading.Thread(
                target=uploader,
                args=(upload_port, browser.cookies, browser.csrf, rotated, stop, outcomes),
                daemon=True,
            )
            clients.append(client)
            client.start()
        time.sleep(2.0)  # every uploader has a request in flight
        log(f"sign-ups under {args.uploaders} uploaders for {args.duration:.0f} s")
        loaded = summary(measure_signups(server.port, threads, args.duration, stop.set))
        for client in clients:
            client.join(timeout=150)
        workers = server.workers() + (upload_server.workers() if upload_server else [])
        memory = [peak_memory_mb(pid) for pid in workers]
    finally:
        server.stop()
        if upload_server:
            upload_server.stop()
        made = [p for p in uploads.rglob("*") if p.is_file() and p not in before]
        for path in made:
            path.unlink()
        log(f"removed the {len(made)} photo files the run stored")

    counts: dict[tuple[str, str], int] = {}
    for kind, outcome, _ in outcomes:
        counts[(kind, outcome)] = counts.get((kind, outcome), 0) + 1
    upload_times = sorted(t for kind, o, t in outcomes if o == "stored")
    log(
        f"sign-ups under uploads: p50 {loaded['p50']:.1f} p95 {loaded['p95']:.1f} "
        f"p99 {loaded['p99']:.1f} max {loaded['max']:.1f} ms, {loaded['errors']} errors "
        f"of {loaded['n']} {loaded['error_kinds']}"
    )
    for (kind, outcome), n in sorted(counts.items()):
        log(f"  uploads {kind}: {outcome} x{n}")
    if upload_times:
        log(f"  a stored upload took p50 {percentile(upload_times, 0.5):.2f} s")
    log(f"  workers' peak RSS: {', '.join(f'{m:.0f} MB' for m in memory)}")

    if args.output:
        write_row(args, quiet, loaded, counts, upload_times, memory, sizes)
    return 0


def write_row(args, quiet, loaded, counts, upload_times, memory, sizes) -> None:
    engine = "SQLite" if args.database_url.startswith("sqlite") else "PostgreSQL"
    ok = (
        loaded["p95"] <= SIGNUP_P95_MS
        and loaded["errors"] == 0
        and max(memory, default=0) <= MAX_MEMORY_MB
    )
    uploads = "; ".join(f"{kind}: {outcome} {n}" for (kind, outcome), n in sorted(counts.items()))
    stored = f"{percentile(upload_times, 0.5):.2f} s" if upload_times else "-"
    lines = [
        "",
        f"### Uploads against sign-ups — {engine}, {args.label or 'this checkout'}",
        "",
        f"{datetime.now():%Y-%m-%d %H:%M}, {platform.node()} ({os.cpu_count()} cores), "
        f"gunicorn {args.workers} sync workers"
        + (f" + {args.upload_workers} for uploads" if args.upload_workers else "")
        + f", {args.uploaders} uploaders "
        f"(24 MP photos of {sizes} and a flat 49 MP JPEG, in turn), "
        f"{args.signers} sign-up clients, "
        f"{args.duration:.0f} s. Command: `bench/uploads.py --database-url ... "
        f"--workers {args.workers} --upload-workers {args.upload_workers} "
        f"--uploaders {args.uploaders} "
        f"{' '.join('--env ' + e for e in args.env)}`".rstrip()
        + ".",
        "",
        "| | sign-ups | p50 ms | p95 ms | p99 ms | max ms | errors | workers' peak RSS | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        f"| alone | {quiet['n']} | {quiet['p50']:.1f} | {quiet['p95']:.1f} | {quiet['p99']:.1f} "
        f"| {quiet['max']:.1f} | {quiet['errors']} | | |",
        f"| under uploads | {loaded['n']} | {loaded['p50']:.1f} | {loaded['p95']:.1f} "
        f"| {loaded['p99']:.1f} | {loaded['max']:.1f} | {loaded['errors']} "
        f"{' '.join(loaded['error_kinds'])} | {', '.join(f'{m:.0f}' for m in memory)} MB "
        f"| {'pass' if ok else 'FAIL'} |",
        "",
        f"Uploads: {uploads}. A stored upload took {stored} (median).",
        "",
    ]
    with open(args.output, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
