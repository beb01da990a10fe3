"""Who may see what: roles, the communities and grids a user acts in, and scoped lookups.

Every record carries ``community_id``. An object outside the user's communities answers 404,
never 403, so that ids of other communities reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.extensions import db

T = TypeVar("T")


def community_ids() -> list[int]:
    """Communities the signed-in user may see (cached for the request)."""
    if "community_ids" not in g:
        from portal.places.models import Community

        if current_user.role == "subdistrict_admin":
            g.community_ids = list(
                db.session.scalars(
                    select(Community.id).where(
                        Community.subdistrict_id == current_user.subdistrict_id
                    )
                )
            )
        else:
            g.community_ids = [current_user.community_id]
    return g.community_ids


def grid_ids() -> list[int] | None:
    """Grids a grid worker acts in; None means not limited to grids."""
    if current_user.role != "grid_worker":
        return None
    if "grid_ids" not in g:
        from portal.places.models import grid_worker

        g.grid_ids = list(
            db.session.scalars(
                select(grid_worker.c.grid_id).where(grid_worker.c.user_id == current_user.id)
            )
        )
    return g.grid_ids


def roles_required(*roles: str) -> Callable:
    """Sign-in required, then one of ``roles``; other roles get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def get_scoped_or_404(model: type[T], ident: Any, options: list | None = None) -> T:
    """Load ``model`` by primary key (with loader ``options``), or 404 when missing or outside
    the user's communities."""
    # Ids beyond a 64-bit integer cannot exist (and overflow SQLite's driver): not found.
    if isinstance(ident, int) and not 0 < ident < 2**63:
        abort(404)
    obj = db.session.get(model, ident, options=options or [])
    if obj is None or obj.community_id not in community_ids():
        abort(404)
    return obj


def require_grid(grid_id: int | None) -> None:
    """404 for a grid worker touching something outside their grids."""
    allowed = grid_ids()
    if allowed is not None and grid_id not in allowed:
        abort(404)
