from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("shifts", __name__)


@bp.get("/shifts")
@login_required
def index():
    return "shifts"


@bp.get("/shifts/<int:shift_id>")
@login_required
def detail(shift_id: int):
    return "shift"


@bp.get("/my/shifts")
@login_required
def mine():
    return "mine"
