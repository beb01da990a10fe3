from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("catalogue", __name__)


@bp.get("/catalogue")
@login_required
def index():
    return "catalogue"
