"""(being written)"""

from flask import Blueprint

bp = Blueprint("rewards_manage", __name__, url_prefix="/rewards")
