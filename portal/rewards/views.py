"""(being written)"""

from flask import Blueprint

bp = Blueprint("rewards", __name__, url_prefix="/rewards")
