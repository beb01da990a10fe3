"""Resident-facing request pages: submit a request, my requests, the request page with its live
timeline and the buttons of the loop, and the request photos."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.access import get_scoped_or_404
from portal.core.errors import DomainError
from portal.core.pagecache import cached_page
from portal.core.photos import accepts_photos, photo_path, uploaded_photo, uploaded_photos
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help import intake, workflow
from portal.help.access import get_request_or_404, parties_for
from portal.help.forms import RequestForm, fill_choices
from portal.help.models import HelpRequest, RequestPhoto
from portal.htmx import render, wants_fragment

bp = Blueprint("help", __name__)

CHANGED_EVENT = "request-changed"
PER_PAGE = 20


@bp.app_template_filter("help_label")
def _help_label(value: str | None, group: str) -> str:
    return intake.help_label(value, group)


@bp.app_template_filter("category_name")
def _category_name(category) -> str:
    return intake.category_name(category)


def _require_person() -> None:
    if current_user.person is None or current_user.community_id is None:
        abort(403)


# --- submitting -------------------------------------------------------------------------------


def _form_context(form: RequestForm) -> dict[str, Any]:
    community_id = current_user.community_id
    groups = fill_choices(
        form,
        intake.major_categories(community_id),
        intake.minor_categories(community_id),
        intake.community_buildings(community_id),
    )
    return {
        "form": form,
        "groups": groups,
        "on_behalf": current_user.role == "grid_worker",
        "has_household": current_user.person.household_id is not None,
    }


@bp.route("/requests/new", methods=["GET", "POST"])
@login_required
@accepts_photos("photos", most=intake.MAX_PHOTOS)
def new():
    _require_person()
    form = RequestForm()
    if request.method == "GET":
        form.where.data = "household" if current_user.person.household_id else "address"
        form.urgency.data = "normal"
    elif form.validate_on_submit():
        try:
            req, _names = intake.create_request(
                current_user,
                category_id=form.category.data,
                description=form.description.data or "",
                where=form.where.data or "",
                building_id=form.building.data,
                address=form.address.data or "",
                preferred_time=form.preferred_time.data or "",
                urgency=form.urgency.data or "",
                photos=uploaded_photos(form.photos.name),
                resident=(form.resident.data or "") if current_user.role == "grid_worker" else "",
                show_publicly=bool(form.show_publicly.data),
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()  # a failed commit deletes the photos stored (core/photos.py)
            flash(_("Your request no. %(number)d was sent.", number=req.id), "success")
            return redirect(url_for("help.detail", request_id=req.id), code=303)
    return render("help/new.html", **_form_context(form))


@bp.get("/requests/new/categories")
@login_required
def minors():
    """The category select narrowed to one major (htmx, on change of the major)."""
    _require_person()
    if not wants_fragment():
        return redirect(url_for("help.new"))
    form = RequestForm(formdata=request.args, meta={"csrf": False})
    return render("help/new.html", "help/_category_field.html", **_form_context(form))


# --- lists ------------------------------------------------------------------------------------


@bp.get("/requests")
@login_required
def index():
    return redirect(url_for("help.mine"))


@bp.get("/requests/mine")
@login_required
def mine():
    page = request.args.get("page", 1, type=int)
    pagination = db.paginate(
        intake.my_requests_query(current_user), page=page, per_page=PER_PAGE, error_out=False
    )
    return render(
        "help/mine.html",
        "help/_mine_list.html",
        pagination=pagination,
        now=now_utc(),
        may_submit=current_user.person is not None and current_user.community_id is not None,
    )


# --- the request page -------------------------------------------------------------------------


def _detail_context(
    req: HelpRequest, errors: dict[str, dict[str, str]] | None = None, typed: Any = None
) -> dict[str, Any]:
    parties = parties_for(current_user, req)
    staff_or_holder = current_user.is_staff or workflow.HOLDER in parties
    return {
        "req": req,
        "parties": parties,
        "actions": workflow.allowed_actions(parties, req.status),
        "events": intake.timeline(req),
        "photos": intake.request_photos(req),
        "steps": intake.STEPS,
        "overdue": intake.is_overdue(req),
        "full_phone": staff_or_holder,
        "full_name": staff_or_holder or workflow.REQUESTER in parties,
        "errors": errors or {},
        "typed": typed or {},
    }


@bp.get("/requests/<int:request_id>")
@login_required
@cached_page()
def detail(request_id: int):
    req = get_request_or_404(request_id)
    return render("help/detail.html", **_detail_context(req))


@bp.get("/requests/<int:request_id>/timeline")
@login_required
def timeline(request_id: int):
    req = get_request_or_404(request_id)
    return render("help/detail.html", "help/_timeline.html", **_detail_context(req))


@bp.post("/requests/<int:request_id>/act/<action>")
@login_required
@accepts_photos("photo")
def act(request_id: int, action: str):
    from portal.help.actions import perform

    req = get_request_or_404(request_id)
    rule = workflow.TRANSITIONS.get(action)
    if rule is None:
        abort(404)
    if not rule.parties & parties_for(current_user, req):
        abort(403)  # never this party's step, whatever the state
    try:
        photo = uploaded_photo("photo")
        perform(req, action, current_user, request.form, photo=photo, now=now_utc())
    except DomainError as error:
        db.session.rollback()
        req = get_request_or_404(request_id)
        context = _detail_context(req, errors={action: error.errors}, typed=request.form)
        return render("help/detail.html", "help/_state.html", **context)
    except workflow.TransitionRefused:
        db.session.rollback()
        abort(409)
    db.session.commit()
    message = _("Saved: %(step)s.", step=intake.help_label(action, "button"))
    if wants_fragment():
        req = get_request_or_404(request_id)
        context = _detail_context(req)
        return render(
            "help/detail.html",
            "help/_state.html",
            trigger=CHANGED_EVENT,
            message=message,
            **context,
        )
    flash(message, "success")
    return redirect(url_for("help.detail", request_id=request_id), code=303)


@bp.get("/request-photos/<int:photo_id>")
@login_required
def photo(photo_id: int):
    item = get_scoped_or_404(RequestPhoto, photo_id)
    get_request_or_404(item.request_id)
    try:
        path = photo_path(item.file)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
