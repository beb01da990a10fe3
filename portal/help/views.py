from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("help", __name__)


@bp.get("/requests")
@login_required
def index():
    return "help"


@bp.get("/requests/<int:request_id>")
@login_required
def detail(request_id: int):
    return "detail"


@bp.route("/requests/new", methods=["GET", "POST"])
@login_required
def new():
    return "new"
