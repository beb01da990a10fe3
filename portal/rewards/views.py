"""The rewards shop for residents and volunteers: what is on offer, one reward and redeeming it,
the voucher to show at the community office, one's own redemptions, and reward photos."""

from __future__ import annotations

import segno
from flask import Blueprint, abort, current_app, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.access import get_scoped_or_404
from portal.core.errors import DomainError
from portal.core.photos import photo_path
from portal.core.timeutil import local_today
from portal.database import commit_keeping_loaded
from portal.extensions import db
from portal.htmx import hx_redirect, is_htmx, render
from portal.people.models import Person
from portal.rewards import services
from portal.rewards.forms import STATUS_LABELS
from portal.rewards.models import Redemption, Reward

bp = Blueprint("rewards", __name__, url_prefix="/rewards")

MAX_PAGE = 100_000  # beyond any real list; keeps OFFSET inside a database integer


@bp.context_processor
def _labels() -> dict:
    return {"redemption_status": STATUS_LABELS}


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _shopper() -> Person:
    """The viewer as someone who may spend points: anyone with a person record of a community
    (a subdistrict admin only oversees). 403 otherwise."""
    person = current_user.person if current_user.role != "subdistrict_admin" else None
    if person is None:
        abort(403)
    return person


# --- the shop ---------------------------------------------------------------------------------


@bp.get("")
@login_required
def index():
    person = _shopper()
    today = local_today()
    pagination = db.paginate(
        services.shop_query(person.community_id, today),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "rewards/index.html",
        "rewards/_list.html",
        pagination=pagination,
        balance=services.balance_of(person.id),
    )


def _detail_page(reward: Reward, person: Person, *, message: str = "", kind: str = "error"):
    today = local_today()
    return render(
        "rewards/detail.html",
        "rewards/_redeem.html",
        reward=reward,
        balance=services.balance_of(person.id),
        reason=services.unavailable_reason(reward, today),
        message=message,
        message_kind=kind,
    )


@bp.get("/<int:reward_id>")
@login_required
def detail(reward_id: int):
    person = _shopper()
    reward = get_scoped_or_404(Reward, reward_id)
    return _detail_page(reward, person)


@bp.post("/<int:reward_id>/redeem")
@login_required
def redeem(reward_id: int):
    person = _shopper()
    reward = get_scoped_or_404(Reward, reward_id)
    try:
        redemption = services.redeem(reward, person, local_today(), current_user.id)
        redemption_id, cost = redemption.id, redemption.cost
    except DomainError as error:
        db.session.rollback()
        message = next(iter(error.errors.values()))
        # Shown as it is now (stock, balance), with why it did not work.
        return _detail_page(get_scoped_or_404(Reward, reward_id), person, message=message)
    commit_keeping_loaded()  # the viewer and their person are unchanged: no need to read them again
    flash(_("Redeemed: %(cost)d points were taken from your balance.", cost=cost), "success")
    target = url_for("rewards.voucher", redemption_id=redemption_id)
    if is_htmx():
        return hx_redirect(target)
    return redirect(target, code=303)


# --- vouchers and my redemptions ----------------------------------------------------------------


@bp.get("/vouchers/<int:redemption_id>")
@login_required
def voucher(redemption_id: int):
    person = _shopper()
    redemption = get_scoped_or_404(Redemption, redemption_id)
    if redemption.person_id != person.id:
        abort(404)  # someone else's voucher: its code is theirs alone
    qr = segno.make(redemption.voucher_code, error="m").svg_data_uri(scale=8, border=2)
    # Signed-in answers are never cached (portal.security): the code stays on this phone only.
    return render("rewards/voucher.html", redemption=redemption, qr=qr)


@bp.get("/mine")
@login_required
def mine():
    person = _shopper()
    pagination = db.paginate(
        services.my_redemptions_query(person.id),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "rewards/mine.html", pagination=pagination, balance=services.balance_of(person.id)
    )


# --- photos -----------------------------------------------------------------------------------


@bp.get("/<int:reward_id>/photo")
@login_required
def photo(reward_id: int):
    reward = get_scoped_or_404(Reward, reward_id)
    try:
        path = photo_path(reward.photo)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=0)
