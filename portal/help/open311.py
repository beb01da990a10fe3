from __future__ import annotations

from flask import Blueprint

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")


@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    return "discovery"
