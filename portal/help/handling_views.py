from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("handling", __name__)


@bp.get("/handling")
@login_required
def index():
    return "handling"
