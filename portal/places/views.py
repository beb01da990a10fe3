from __future__ import annotations

from flask import Blueprint

from portal.access import roles_required

bp = Blueprint("places", __name__, url_prefix="/places")


@bp.get("/")
@roles_required("secretary", "grid_worker", "subdistrict_admin")
def index():
    return "places"
