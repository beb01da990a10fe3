from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from portal.access import roles_required

bp = Blueprint("volunteers", __name__, url_prefix="/volunteers")


@bp.get("/")
@roles_required("secretary", "grid_worker", "subdistrict_admin")
def roster():
    return "roster"


@bp.get("/queue")
@roles_required("secretary", "grid_worker")
def queue():
    return "queue"


@bp.get("/mine")
@login_required
def mine():
    return "mine"
