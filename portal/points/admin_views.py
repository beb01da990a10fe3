"""(being written)"""

from flask import Blueprint

bp = Blueprint("points_admin", __name__, url_prefix="/points")
