"""The secretary's side of the rewards shop: the rewards list, adding and editing a reward, and
handling redemptions (hand-over, cancellation with refund, export). A subdistrict admin may read
the lists and the export."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import community_ids, get_scoped_or_404, roles_required
from portal.core.errors import DomainError
from portal.core.exports import FORMATS, export_response
from portal.core.photos import accepts_photos, delete_photo, uploaded_photo
from portal.core.timeutil import local_today, to_local
from portal.core.validators import mask_phone
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.places.models import Community
from portal.rewards import services
from portal.rewards.forms import STATUS_LABELS, CancelForm, RedemptionFilterForm, RewardForm
from portal.rewards.models import Redemption, Reward
from portal.security import is_safe_next
from portal.volunteers.forms import options

bp = Blueprint("rewards_manage", __name__, url_prefix="/rewards")

MANAGERS = ("secretary",)
READERS = ("secretary", "subdistrict_admin")
CHANGED_EVENT = "redemption-changed"
MAX_PAGE = 100_000


@bp.context_processor
def _labels() -> dict:
    return {"redemption_status": STATUS_LABELS}


def _page() -> int:
    return min(max(request.values.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _community_names(ids: list[int]) -> dict[int, str]:
    """Names to tell communities apart, only when the viewer sees several (one query)."""
    if len(ids) < 2:
        return {}
    return dict(
        db.session.execute(select(Community.id, Community.name).where(Community.id.in_(ids))).all()
    )


# --- rewards ----------------------------------------------------------------------------------


@bp.get("/manage")
@roles_required(*READERS)
def index():
    ids = community_ids()
    pagination = db.paginate(
        services.manage_query(ids),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "rewards_manage/index.html",
        pagination=pagination,
        counts=services.redeemed_counts([r.id for r in pagination.items]),
        communities=_community_names(ids),
        can_edit=current_user.role in MANAGERS,
        today=local_today(),
    )


def _save(form: RewardForm, save, *, creating: bool) -> tuple[bool, object]:
    """Run ``save`` on a posted form: (True, its result), or (False, None) with the parse and
    rule messages on the fields, everything rolled back."""
    form.validate()
    unparsed = form.fields_with_errors()
    try:
        if unparsed:
            # Also show what else is wrong, so that one more try is enough.
            errors = services.check_reward(form.values(), creating=creating, skip=unparsed)
            raise DomainError(errors)
        return True, save()
    except DomainError as error:
        db.session.rollback()
        error.apply_to(form)
        return False, None


def _photo_again(form: RewardForm) -> bool:
    """A photo was chosen but not kept (the form had errors): it must be chosen again."""
    photo = form.photo.data
    return request.method == "POST" and bool(getattr(photo, "filename", ""))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
@accepts_photos("photo")
def new():
    form = RewardForm()
    if request.method == "POST":
        community_id, actor_id = current_user.community_id, current_user.id
        saved, reward = _save(
            form,
            lambda: services.create_reward(
                community_id, form.values(), uploaded_photo(form.photo.name), actor_id
            ),
            creating=True,
        )
        if saved:
            name = reward.name
            db.session.commit()
            flash(_("The reward “%(name)s” is now in the shop.", name=name), "success")
            return redirect(url_for("rewards_manage.index"), code=303)
    return render(
        "rewards_manage/form.html", form=form, reward=None, photo_again=_photo_again(form)
    )


def _form_data(reward: Reward) -> dict:
    return {
        "name": reward.name,
        "description": reward.description,
        "cost": reward.cost,
        "stock": reward.stock,
        "per_person_limit": reward.per_person_limit,
        "available_from": reward.available_from,
        "available_until": reward.available_until,
        "active": reward.active,
    }


@bp.route("/<int:reward_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
@accepts_photos("photo")
def edit(reward_id: int):
    reward = get_scoped_or_404(Reward, reward_id)
    if request.method != "POST":
        form = RewardForm(data=_form_data(reward))
        return render("rewards_manage/form.html", form=form, reward=reward, photo_again=False)
    form = RewardForm()
    saved, unused = _save(
        form,
        lambda: services.update_reward(
            reward,
            form.values(),
            uploaded_photo(form.photo.name),
            remove_photo=bool(form.remove_photo.data),
        ),
        creating=False,
    )
    if not saved:
        reward = get_scoped_or_404(Reward, reward_id)
        return render(
            "rewards_manage/form.html", form=form, reward=reward, photo_again=_photo_again(form)
        )
    name = reward.name
    db.session.commit()
    if unused:
        delete_photo(unused)  # only once nothing points at it any more
    flash(_("The reward “%(name)s” was saved.", name=name), "success")
    return redirect(url_for("rewards_manage.index"), code=303)


# --- redemptions ------------------------------------------------------------------------------


def _filters() -> tuple[RedemptionFilterForm, services.RedemptionFilters]:
    form = RedemptionFilterForm(formdata=request.args)
    filters = services.RedemptionFilters.clean(form.status.data, form.code.data, form.reward.data)
    form.code.data = filters.code
    return form, filters


def _redemptions_page(row_errors: dict[int, str] | None = None, reasons: dict | None = None):
    form, filters = _filters()
    ids = community_ids()
    form.reward.choices = options(
        [("", _("All rewards"))] + [(str(r.id), r.name) for r in services.reward_choices(ids)]
    )
    pagination = db.paginate(
        services.redemptions_query(filters, ids),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "rewards_manage/redemptions.html",
        "rewards_manage/_redemptions.html",
        form=form,
        filters=filters,
        pagination=pagination,
        can_act=current_user.role in MANAGERS,
        row_errors=row_errors or {},
        reasons=reasons or {},
    )


@bp.get("/redemptions")
@roles_required(*READERS)
def redemptions():
    return _redemptions_page()


def _back() -> str:
    target = request.form.get("next")
    return target if is_safe_next(target) else url_for("rewards_manage.redemptions")


def _row(redemption_id: int, *, message: str = "", kind: str = "success", error: str = "",
         reason: str = "", won: bool = False):  # fmt: skip
    return render(
        "rewards_manage/redemptions.html",
        "rewards_manage/_redemption_row.html",
        trigger=CHANGED_EVENT if won else None,
        r=services.load_redemption(redemption_id),
        message=message,
        message_kind=kind,
        error=error,
        reason=reason,
        can_act=True,
        back=request.form.get("next", ""),
    )


def _answer(redemption_id: int, message: str, kind: str, *, won: bool):
    """The updated row for htmx; otherwise a flash and back to the list (Post/Redirect/Get)."""
    if wants_fragment():
        return _row(redemption_id, message=message, kind=kind, won=won)
    flash(message, kind)
    return redirect(_back(), code=303)


@bp.post("/redemptions/<int:redemption_id>/hand-over")
@roles_required(*MANAGERS)
def hand_over(redemption_id: int):
    redemption = get_scoped_or_404(Redemption, redemption_id)
    code = redemption.voucher_code
    try:
        services.hand_over(redemption, current_user.id)
    except DomainError as error:
        db.session.rollback()
        return _answer(redemption_id, f"{code}: {error.errors['_']}", "warning", won=False)
    db.session.commit()
    return _answer(redemption_id, _("%(code)s: handed over.", code=code), "success", won=True)


@bp.post("/redemptions/<int:redemption_id>/cancel")
@roles_required(*MANAGERS)
def cancel(redemption_id: int):
    redemption = get_scoped_or_404(Redemption, redemption_id)
    code = redemption.voucher_code
    form = CancelForm()
    typed = form.reason.data or ""
    try:
        if not form.validate() and form.reason.errors:  # control characters and the like
            raise DomainError({"reason": form.reason.errors[0]})
        refund = services.cancel_redemption(redemption, typed, current_user.id)
        points = refund.points
    except DomainError as error:
        db.session.rollback()
        if "reason" not in error.errors:
            return _answer(redemption_id, f"{code}: {error.errors['_']}", "warning", won=False)
        message = error.errors["reason"]
        if wants_fragment():
            # Status 200 so that htmx swaps the row with its message in.
            return _row(redemption_id, error=message, reason=typed)
        return _redemptions_page({redemption_id: message}, {redemption_id: typed})
    db.session.commit()
    message = _("%(code)s: cancelled; %(points)d points were given back.", code=code, points=points)
    return _answer(redemption_id, message, "success", won=True)


def _export_header() -> list[str]:
    return [
        _("Redeemed at"),
        _("Voucher code"),
        _("Reward"),
        _("Name"),
        _("Phone"),
        _("Points"),
        _("Status"),
        _("Handed over at"),
        _("Cancelled at"),
        _("Reason for the cancellation"),
    ]


def _when(moment) -> str:
    return to_local(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


@bp.get("/redemptions/export.<fmt>")
@roles_required(*READERS)
def export(fmt: str):
    if fmt not in FORMATS:
        abort(404)
    _form, filters = _filters()
    ids = community_ids()
    statuses = {code: str(text) for code, text in STATUS_LABELS.items()}
    rows = (
        (
            _when(row.created_at),
            row.voucher_code,
            row.reward,
            row.name,
            mask_phone(row.phone),
            row.cost,
            statuses.get(row.status, row.status),
            _when(row.handed_over_at),
            _when(row.cancelled_at),
            row.cancel_reason,
        )
        for row in services.export_rows(filters, ids)
    )
    return export_response(f"redemptions-{local_today().isoformat()}", fmt, _export_header(), rows)
