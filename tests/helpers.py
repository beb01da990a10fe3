"""Helpers shared by every test folder."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from sqlalchemy import event

from portal.extensions import db


@contextmanager
def count_queries():
    """Count the SQL statements sent while the block runs (``counter["n"]``)."""
    counter = {"n": 0}

    def before(conn, cursor, statement, parameters, context, executemany):
        counter["n"] += 1

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def reload(model, ident):
    """The row as the database has it now (ends the test's read snapshot first)."""
    db.session.commit()
    return db.session.get(model, ident)


def post_in_parallel(app, clients, urls, data=None) -> list[int]:
    """POST ``urls[n]`` (with ``data[n]``) from ``clients[n]``, every thread released together,
    each request in its own app context and database session as under a multi-worker server;
    returns the status codes in order. The CSRF tokens are read before the threads start."""
    data = data or [{}] * len(clients)
    barrier = threading.Barrier(len(clients))
    statuses: list[int | None] = [None] * len(clients)
    errors: list[BaseException] = []
    headers = [{"X-CSRFToken": client.csrf_token()} for client in clients]
    db.session.commit()  # what the test set up is visible to the threads

    def work(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                response = clients[n].post(urls[n], data=data[n], headers=headers[n])
                statuses[n] = response.status_code
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    db.session.commit()  # end the test's read snapshot: see what the requests wrote
    return statuses


def forged_jpeg(width: int, height: int) -> bytes:
    """A tiny JPEG (a few hundred bytes) whose header claims ``width`` x ``height`` pixels: the
    form of the attack on issue 15 (it cannot be decoded, only its size read)."""
    import io
    import struct

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_of(width: int, height: int, **save) -> bytes:
    """A real JPEG of this size (flat colour: small, quick to make)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 60)).save(buffer, format="JPEG", **save)
    return buffer.getvalue()
