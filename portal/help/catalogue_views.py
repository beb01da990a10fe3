"""The category catalogue (staff read it, the secretary edits it) and Open311 API keys."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import Length, Optional

from portal.access import community_ids, get_scoped_or_404, roles_required
from portal.core.errors import DomainError
from portal.core.forms import PortalForm
from portal.extensions import db
from portal.help import apikeys
from portal.help import catalogue as services
from portal.help.models import ApiKey, Category
from portal.htmx import render, wants_fragment
from portal.places.models import Community
from portal.volunteers.forms import options

bp = Blueprint("catalogue", __name__)

STAFF = ("secretary", "grid_worker", "subdistrict_admin")
KEYS_CHANGED = "api-keys-changed"
CATEGORY_CHANGED = "category-changed"


@bp.app_template_filter("category_name")
def category_name(category: Category | None) -> str:
    """A category's name in the UI language."""
    return services.category_name(category) if category is not None else ""


@bp.app_template_filter("handler_label")
def handler_label(handler: str | None) -> str:
    return str(services.HANDLER_LABELS.get(handler, handler or ""))


@bp.app_template_filter("may_be_public")
def may_be_public(category: Category) -> bool:
    return services.may_be_public(category)


@bp.app_template_filter("category_kind")
def category_kind(kind: str) -> str:
    return str(services.KIND_LABELS.get(kind, kind))


class CategoryForm(PortalForm):
    name_zh = StringField(_l("Name in Chinese"), validators=[Length(max=60)])
    name_en = StringField(_l("Name in English"), validators=[Length(max=80)])
    description = StringField(_l("Description"), validators=[Length(max=300)])
    handler = SelectField(
        _l("Handled by"), choices=options(services.HANDLER_LABELS.items()), validate_choice=False
    )
    time_limit_hours = IntegerField(
        _l("Time limit (hours)"),
        validators=[Optional()],
        render_kw={"min": 1, "max": services.MAX_HOURS},
    )
    points = IntegerField(
        _l("Points for the volunteer"),
        validators=[Optional()],
        render_kw={"min": 0, "max": services.MAX_POINTS},
    )
    active = BooleanField(_l("Offered for new requests"))
    public = BooleanField(_l("Public in Open311 (a problem in a public space)"))


class MajorForm(PortalForm):
    name_zh = StringField(_l("Name in Chinese"), validators=[Length(max=60)])
    name_en = StringField(_l("Name in English"), validators=[Length(max=80)])
    description = StringField(_l("Description"), validators=[Length(max=300)])
    kind = RadioField(
        _l("Kind of requests"),
        choices=options(services.KIND_LABELS.items()),
        default="report",
        validate_choice=False,
    )
    active = BooleanField(_l("Offered for new requests"))


class KeyForm(PortalForm):
    name = StringField(_l("Application name"), validators=[Length(max=80)])


def _viewed_community_id() -> int:
    """The secretary's or grid worker's community; a subdistrict admin picks one of theirs."""
    allowed = community_ids()
    if not allowed:
        abort(404)
    wanted = request.args.get("community_id", type=int)
    if wanted is None:
        return allowed[0]
    if wanted not in allowed:
        abort(404)
    return wanted


# --- the catalogue ----------------------------------------------------------------------------


@bp.get("/catalogue")
@roles_required(*STAFF)
def index():
    community_id = _viewed_community_id()
    communities = []
    if len(community_ids()) > 1:
        communities = list(
            db.session.scalars(
                select(Community).where(Community.id.in_(community_ids())).order_by(Community.id)
            )
        )
    return render(
        "catalogue/index.html",
        "catalogue/_catalogue.html",
        majors=services.list_majors(community_id),
        community_id=community_id,
        communities=communities,
        can_edit=current_user.role == "secretary",
    )


def _category_form_page(form, category: Category | None, major: Category | None):
    return render(
        "catalogue/edit.html",
        "catalogue/_category_form.html",
        form=form,
        category=category,
        major=major,
    )


@bp.route("/catalogue/<int:category_id>/edit", methods=["GET", "POST"])
@roles_required("secretary")
def edit(category_id: int):
    category = get_scoped_or_404(Category, category_id)
    major = category.parent
    form_class = CategoryForm if major is not None else MajorForm
    form = form_class() if request.method == "POST" else form_class(obj=category)
    if major is None:
        # A major's kind is fixed: its minors and their requests depend on it.
        del form.kind
    elif not (category.public or services.may_be_public(category)):
        del form.public  # never public: not even offered
    if form.validate_on_submit():
        try:
            services.update_category(
                category,
                name_zh=form.name_zh.data or "",
                name_en=form.name_en.data or "",
                description=form.description.data or "",
                handler=form.handler.data if major else None,
                time_limit_hours=form.time_limit_hours.data if major else None,
                points=form.points.data if major else None,
                active=bool(form.active.data),
                public=bool(form.public.data) if "public" in form else None,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Category saved."), "success")
            return redirect(url_for("catalogue.index"), code=303)
    return _category_form_page(form, category, major)


@bp.route("/catalogue/<int:category_id>/new", methods=["GET", "POST"])
@roles_required("secretary")
def new_minor(category_id: int):
    major = get_scoped_or_404(Category, category_id)
    if major.parent_id is not None:
        abort(404)
    form = CategoryForm() if request.method == "POST" else CategoryForm(data={"active": True})
    del form.active
    if not services.may_be_public(major):
        del form.public
    if form.validate_on_submit():
        try:
            services.add_minor(
                major,
                name_zh=form.name_zh.data or "",
                name_en=form.name_en.data or "",
                description=form.description.data or "",
                handler=form.handler.data,
                time_limit_hours=form.time_limit_hours.data,
                points=form.points.data,
                public="public" in form and bool(form.public.data),
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Category added."), "success")
            return redirect(url_for("catalogue.index"), code=303)
    return _category_form_page(form, None, major)


@bp.post("/catalogue/<int:category_id>/public")
@roles_required("secretary")
def set_public(category_id: int):
    """Make a minor category's requests public in Open311, or private again (htmx: the row)."""
    category = get_scoped_or_404(Category, category_id)
    if category.parent_id is None:
        abort(404)
    wanted = request.form.get("public") == "1"
    problem = None
    try:
        services.set_public(category, wanted)
    except DomainError as error:
        db.session.rollback()
        problem = error.errors.get("public")
    else:
        db.session.commit()
    if wants_fragment():
        return render(
            "catalogue/index.html",
            "catalogue/_category_row.html",
            trigger=None if problem else CATEGORY_CHANGED,
            category=category,
            minor=None,
            can_edit=True,
            public_error=problem,
        )
    if problem:
        flash(problem, "error")
    elif wanted:
        flash(
            _(
                "Requests of “%(name)s” are now public in Open311.",
                name=services.category_name(category),
            ),
            "success",
        )
    else:
        flash(
            _("Requests of “%(name)s” are now private.", name=services.category_name(category)),
            "success",
        )
    return redirect(url_for("catalogue.index") + f"#category-{category.id}", code=303)


@bp.route("/catalogue/new", methods=["GET", "POST"])
@roles_required("secretary")
def new_major():
    form = MajorForm()
    del form.active
    if form.validate_on_submit():
        try:
            services.add_major(
                current_user.community_id,
                name_zh=form.name_zh.data or "",
                name_en=form.name_en.data or "",
                description=form.description.data or "",
                kind=form.kind.data or "",
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Category added."), "success")
            return redirect(url_for("catalogue.index"), code=303)
    return _category_form_page(form, None, None)


# --- API keys ---------------------------------------------------------------------------------


def _keys_page(form: KeyForm, new_key: str | None = None, status: int = 200):
    pagination = db.paginate(
        apikeys.community_keys(current_user.community_id),
        page=max(request.args.get("page", 1, type=int) or 1, 1),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    response = render(
        "catalogue/keys.html",
        "catalogue/_keys.html",
        status=status,
        trigger=KEYS_CHANGED if new_key else None,
        form=form,
        pagination=pagination,
        new_key=new_key,
    )
    # The full key appears in this answer only: keep it out of every cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/catalogue/api-keys", methods=["GET", "POST"])
@roles_required("secretary")
def keys():
    form = KeyForm()
    if form.validate_on_submit():
        try:
            _row, key = apikeys.create_api_key(
                current_user.community_id, form.name.data or "", current_user.id
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            # Shown once, in this answer (not via a redirect: it must never sit in the session).
            return _keys_page(KeyForm(formdata=None), new_key=key)
    return _keys_page(form)


@bp.post("/catalogue/api-keys/<int:key_id>/revoke")
@roles_required("secretary")
def revoke_key(key_id: int):
    api_key = get_scoped_or_404(ApiKey, key_id)
    revoked = apikeys.revoke_api_key(api_key)
    db.session.commit()
    if wants_fragment():
        return render(
            "catalogue/keys.html",
            "catalogue/_key_row.html",
            trigger=KEYS_CHANGED if revoked else None,
            key=api_key,
        )
    if revoked:
        flash(_("Key “%(name)s” revoked.", name=api_key.name), "success")
    return redirect(url_for("catalogue.keys"), code=303)
