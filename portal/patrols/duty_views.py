from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("duty", __name__)


@bp.get("/shifts/<int:shift_id>/lead")
@login_required
def lead(shift_id: int):
    return "lead"


@bp.route("/checkin", methods=["GET", "POST"])
@login_required
def checkin_code():
    return "checkin"
