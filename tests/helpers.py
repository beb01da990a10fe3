"""Helpers shared by every test folder."""

from __future__ import annotations

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
