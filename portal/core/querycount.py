"""Per-request SQL statement count, sent as ``X-Query-Count`` when ``QUERY_COUNT_HEADER`` is on.

Used by the load benchmark (bench/run.py) to report queries per page; off by default because
the event listener costs a little on every statement.
"""

from __future__ import annotations

from flask import Flask, Response, g, has_request_context
from sqlalchemy import event

HEADER = "X-Query-Count"


def _count(*_args, **_kwargs) -> None:
    # Statements run outside a request (CLI, startup) are not anyone's page.
    if has_request_context():
        g.query_count = g.get("query_count", 0) + 1


def _add_header(response: Response) -> Response:
    response.headers[HEADER] = str(g.get("query_count", 0))
    return response


def init_app(app: Flask) -> None:
    """Count statements on the app's engine and answer the count in a header (flag on only)."""
    if not app.config.get("QUERY_COUNT_HEADER"):
        return
    from portal.extensions import db

    with app.app_context():
        # Listening on the Engine class would count every app's engine in the process (tests).
        event.listen(db.engine, "before_cursor_execute", _count)
    app.after_request(_add_header)
