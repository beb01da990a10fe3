"""Account management pages: a secretary manages their community's accounts, a subdistrict
admin those of their subdistrict's communities. Another community's account answers 404."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import community_ids, get_scoped_or_404, roles_required
from portal.auth import accounts
from portal.auth.forms import AccountFilterForm, RoleForm
from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.labels import LABELS
from portal.extensions import db
from portal.htmx import render
from portal.places.models import Community

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _back() -> str:
    """The list page the action came from (its search and page), else the first page."""
    target = request.form.get("next", "")
    prefix = url_for("accounts.index")
    if target.startswith(prefix) and "//" not in target and "\\" not in target:
        return target
    return prefix


def _role_choices(actor: User) -> list[tuple[str, str]]:
    return [(role, str(LABELS["role"][role])) for role in accounts.assignable_roles(actor)]


def _flash_errors(error: DomainError) -> None:
    for message in error.errors.values():
        flash(message, "error")


@bp.get("/")
@roles_required(*accounts.MANAGERS)
def index():
    filters = AccountFilterForm(request.args)
    ids = community_ids()
    query = accounts.accounts_query(ids, filters.q.data)
    page = request.args.get("page", 1, type=int)
    pagination = db.paginate(
        query, page=page, per_page=current_app.config["PAGE_SIZE"], error_out=False
    )
    args = {"q": filters.q.data} if filters.q.data else {}
    community_names = {}
    if current_user.role == "subdistrict_admin":
        community_names = dict(
            db.session.execute(select(Community.id, Community.name).where(Community.id.in_(ids)))
            .tuples()
            .all()
        )
    actor = current_user._get_current_object()
    return render(
        "auth/accounts.html",
        "auth/_accounts.html",
        filters=filters,
        pagination=pagination,
        args=args,
        here=request.full_path.rstrip("?"),
        community_names=community_names,
        role_choices=_role_choices(actor),
        manageable={u.id for u in pagination.items if accounts.can_manage(actor, u)},
    )


@bp.post("/<int:user_id>/role")
@roles_required(*accounts.MANAGERS)
def change_role(user_id: int):
    target = get_scoped_or_404(User, user_id)
    actor = current_user._get_current_object()
    form = RoleForm()
    form.role.choices = _role_choices(actor)
    try:
        if not form.validate_on_submit():
            raise DomainError({"role": _("Choose one of the roles offered.")})
        changed = accounts.change_role(actor, target, form.role.data)
    except DomainError as error:
        db.session.rollback()
        _flash_errors(error)
    else:
        db.session.commit()
        if changed:
            flash(
                _(
                    "%(username)s is now: %(role)s. Their sessions have ended.",
                    username=target.username,
                    role=LABELS["role"][target.role],
                ),
                "success",
            )
    return redirect(_back(), code=303)


def _set_active(user_id: int, active: bool):
    target = get_scoped_or_404(User, user_id)
    try:
        changed = accounts.set_active(current_user._get_current_object(), target, active)
    except DomainError as error:
        db.session.rollback()
        _flash_errors(error)
    else:
        db.session.commit()
        if changed and active:
            flash(_("The account %(username)s is enabled.", username=target.username), "success")
        elif changed:
            flash(
                _(
                    "The account %(username)s is disabled; its sessions have ended.",
                    username=target.username,
                ),
                "success",
            )
    return redirect(_back(), code=303)


@bp.post("/<int:user_id>/disable")
@roles_required(*accounts.MANAGERS)
def disable(user_id: int):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/enable")
@roles_required(*accounts.MANAGERS)
def enable(user_id: int):
    return _set_active(user_id, True)
