from __future__ import annotations

from functools import cache

from flask import Blueprint, jsonify
from flask_login import current_user, login_required
from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.orm import joinedload

from portal.access import community_ids, grid_ids
from portal.core.pagecache import cached_page
from portal.extensions import db
from portal.htmx import render
from portal.people.models import Person
from portal.places.models import Community, Grid
from portal.volunteers.models import Volunteer

bp = Blueprint("core", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy"
        db.session.rollback()
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


@cache
def _own_volunteer() -> Select:
    # The status card reads the registration's types and grid: one query for all three.
    # Built once: building a statement costs SQLAlchemy more than running it.
    return (
        select(Volunteer)
        .options(joinedload(Volunteer.type_links), joinedload(Volunteer.grid))
        .where(Volunteer.person_id == bindparam("person_id"))
    )


@cache
def _own_account() -> Select:
    from portal.points.models import PointsAccount

    return select(PointsAccount).where(PointsAccount.person_id == bindparam("person_id"))


@bp.get("/")
@login_required
@cached_page()
def home():
    stats = None
    if current_user.is_staff:
        ids = community_ids()
        grids = grid_ids()
        pending = select(func.count(Volunteer.id)).where(
            Volunteer.community_id.in_(ids), Volunteer.status == "pending"
        )
        approved = select(func.count(Volunteer.id)).where(
            Volunteer.community_id.in_(ids), Volunteer.status == "approved"
        )
        if grids is not None:
            pending = pending.where(Volunteer.grid_id.in_(grids))
            approved = approved.where(Volunteer.grid_id.in_(grids))
        stats = {
            "pending": db.session.scalar(pending),
            "approved": db.session.scalar(approved),
            "residents": db.session.scalar(
                select(func.count(Person.id)).where(Person.community_id.in_(ids))
            ),
            "grids": len(grids)
            if grids is not None
            else db.session.scalar(select(func.count(Grid.id)).where(Grid.community_id.in_(ids))),
            "communities": db.session.scalars(
                select(Community).where(Community.id.in_(ids)).order_by(Community.name)
            ).all(),
        }
    volunteer = account = None
    if current_user.person_id is not None:
        params = {"person_id": current_user.person_id}
        volunteer = db.session.scalar(_own_volunteer(), params)
        account = db.session.scalar(_own_account(), params)
    return render("core/home.html", stats=stats, volunteer=volunteer, account=account)
