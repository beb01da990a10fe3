from __future__ import annotations

from flask import Blueprint

from portal.access import roles_required

bp = Blueprint("schedule", __name__)


@bp.route("/shifts/new", methods=["GET", "POST"])
@roles_required("secretary", "grid_worker")
def shift_new():
    return "new"


@bp.get("/coverage")
@roles_required("secretary", "grid_worker", "subdistrict_admin")
def coverage():
    return "coverage"
