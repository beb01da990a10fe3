from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.auth.models import User
from portal.core.errors import DomainError
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.people import services
from portal.people.forms import AccountForm, MatchForm, PersonForm, ResidentFilterForm, options
from portal.people.models import Person
from portal.trust import privacy

bp = Blueprint("people", __name__, url_prefix="/people")

EDITORS = ("secretary", "grid_worker")
VIEWERS = ("secretary", "grid_worker", "subdistrict_admin")


def _person_or_404(person_id: int) -> Person:
    """The person, or 404 outside the user's communities or (grid worker) grids."""
    person = get_scoped_or_404(Person, person_id)
    if grid_ids() is not None:
        require_grid(person.household.building.grid_id if person.household else None)
    return person


def _building_choices(form: PersonForm) -> None:
    buildings = services.list_buildings(current_user.community_id, grid_ids())
    form.building_id.choices = options(
        [("", _("Choose a building"))]
        + [(b.id, f"{b.estate.name} {b.name} · {b.grid.name}") for b in buildings]
    )


def _person_fields(form: PersonForm) -> dict:
    return {
        "name": form.name.data,
        "phone": form.phone.data,
        "sex": form.sex.data or None,
        "birth_year": form.birth_year.data,
        "care_flags": form.care_flags,
        "consent": form.care_consent.data,
        "guardian": form.guardian.data,
        "recorded_by": current_user._get_current_object(),
    }


@bp.get("/")
@roles_required(*VIEWERS)
def index():
    filters = ResidentFilterForm(request.args)
    ids = community_ids()
    grids = grid_ids()
    communities = services.list_communities(ids) if current_user.role == "subdistrict_admin" else []
    filters.community.choices = options(
        [("", _("All communities"))] + [(c.id, c.name) for c in communities]
    )
    grid_list = services.list_grids(ids, grids)
    filters.grid.choices = options(
        [("", _("All grids"))]
        + [(g.id, f"{g.community.name} · {g.name}" if communities else g.name) for g in grid_list]
    )
    query = services.search_residents(
        community_ids=ids,
        grid_ids=grids,
        q=filters.q.data,
        community_id=filters.community.data if communities else None,
        grid_id=filters.grid.data,
        care=filters.care.data,
        household=filters.household.data,
        # Phones are masked in the list for everyone: a prefix search would uncover them.
        phone_prefix=False,
    )
    page = request.args.get("page", 1, type=int)
    pagination = db.paginate(
        query, page=page, per_page=current_app.config["PAGE_SIZE"], error_out=False
    )
    args = {
        name: value
        for name, value in request.args.items()
        if name in filters._fields and value not in ("", None)
    }
    return render(
        "people/index.html",
        "people/_results.html",
        filters=filters,
        pagination=pagination,
        args=args,
        community_names={c.id: c.name for c in communities},
        show_care=current_user.role in EDITORS,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new():
    form = PersonForm()
    _building_choices(form)
    scope = {"community_id": current_user.community_id, "grid_ids": grid_ids()}
    if request.method == "GET":
        household_id = request.args.get("household_id", type=int)
        if household_id is not None:
            if services.household_in_scope(household_id, **scope) is None:
                abort(404)
            form.household_id.data = household_id
    if form.validate_on_submit():
        try:
            household = services.resolve_household(
                **scope,
                household_id=form.household_id.data,
                building_id=form.building_id.data,
                room=form.room.data,
            )
            person = services.create_person(
                community_id=current_user.community_id, household=household, **_person_fields(form)
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("%(name)s is registered.", name=person.name), "success")
            return redirect(url_for("people.detail", person_id=person.id), code=303)
    household = services.household_in_scope(form.household_id.data, **scope)
    return render("people/form.html", form=form, person=None, household=household)


def _detail(person: Person, phone: str | None = None):
    guardian = (
        db.session.get(Person, person.guardian_person_id) if person.guardian_person_id else None
    )
    return render(
        "people/detail.html",
        person=person,
        household=person.household,
        volunteer=person.volunteer,
        account=person.user,
        guardian=guardian,
        minor=privacy.may_be_minor(person.birth_year),
        revealed=phone,
        may_reveal=current_user.role in EDITORS,
        show_care=current_user.role in EDITORS,
    )


@bp.get("/<int:person_id>")
@roles_required(*VIEWERS)
def detail(person_id: int):
    return _detail(_person_or_404(person_id))


@bp.post("/<int:person_id>/phone")
@roles_required(*EDITORS)
def reveal_phone(person_id: int):
    """The full phone for staff who call residents (the secretary; a grid worker in their
    grids), with an audit row; the page shows only the masked number until then."""
    person = _person_or_404(person_id)
    phone = privacy.reveal_phone(person)
    db.session.commit()
    if wants_fragment():
        return render(
            "people/detail.html",
            "people/_phone.html",
            person=person,
            revealed=phone,
            may_reveal=True,
        )
    return _detail(person, phone)


@bp.route("/<int:person_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def edit(person_id: int):
    person = _person_or_404(person_id)
    form = PersonForm(obj=person if request.method == "GET" else None)
    _building_choices(form)
    if request.method == "GET":
        form.household_id.data = None
        form.building_id.data = person.household.building_id if person.household else None
        form.room.data = person.household.room if person.household else ""
        form.sex.data = person.sex or ""
        form.care_consent.data = person.care_consent_at is not None
        form.guardian.data = ""
    if form.validate_on_submit():
        try:
            household = services.resolve_household(
                community_id=person.community_id,
                grid_ids=grid_ids(),
                building_id=form.building_id.data,
                room=form.room.data,
            )
            services.update_person(person, household=household, **_person_fields(form))
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("The record of %(name)s is saved.", name=person.name), "success")
            return redirect(url_for("people.detail", person_id=person.id), code=303)
    guardian = (
        db.session.get(Person, person.guardian_person_id) if person.guardian_person_id else None
    )
    return render("people/form.html", form=form, person=person, household=None, guardian=guardian)


@bp.route("/<int:person_id>/account", methods=["GET", "POST"])
@roles_required("secretary")
def account(person_id: int):
    person = _person_or_404(person_id)
    form = AccountForm()
    if person.user is None and form.validate_on_submit():
        try:
            user = services.create_account(
                person, username=form.username.data, password=form.password.data
            )
        except DomainError as error:
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("The account %(username)s is ready.", username=user.username), "success")
            return redirect(url_for("people.detail", person_id=person.id), code=303)
    return render("people/account.html", form=form, person=person, account=person.user)


@bp.get("/check-phone")
@roles_required(*EDITORS)
def check_phone():
    result = services.phone_status(
        request.args.get("phone"), request.args.get("person_id", type=int)
    )
    return render("people/_phone_check.html", "people/_phone_check.html", result=result)


# --- self-registered accounts waiting to be matched to a household ----------------------------

MATCHED_EVENT = "account-matched"


def _unverified_page(row_errors: dict | None = None, row_typed: dict | None = None):
    page = request.args.get("page", 1, type=int)
    pagination = db.paginate(
        services.unverified_accounts(community_ids()),
        page=page,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "people/unverified.html",
        pagination=pagination,
        buildings=services.list_buildings(current_user.community_id, grid_ids()),
        row_errors=row_errors or {},
        row_typed=row_typed or {},
    )


@bp.get("/accounts/unverified")
@roles_required(*EDITORS)
def unverified():
    return _unverified_page()


@bp.post("/accounts/<int:user_id>/match")
@roles_required(*EDITORS)
def match(user_id: int):
    """Match a self-registered account to a household of the handler's scope (a grid worker:
    their grids); another community's account is not found."""
    account = get_scoped_or_404(User, user_id)
    form = MatchForm()
    typed = {"building_id": form.building_id.data, "room": form.room.data or ""}
    try:
        if not form.validate_on_submit():
            raise DomainError({name: errors[0] for name, errors in form.errors.items()})
        household = services.resolve_household(
            community_id=account.community_id,
            grid_ids=grid_ids(),
            building_id=form.building_id.data,
            room=form.room.data,
        )
        services.verify_account(account, household)
    except DomainError as error:
        db.session.rollback()
        if wants_fragment():
            # Status 200 so that htmx swaps the row with its messages in.
            return render(
                "people/unverified.html",
                "people/_unverified_row.html",
                account=db.session.get(User, user_id),
                buildings=services.list_buildings(current_user.community_id, grid_ids()),
                errors=error.errors,
                typed=typed,
            )
        return _unverified_page({user_id: error.errors}, {user_id: typed})
    db.session.commit()
    building = household.building
    outcome = _(
        "%(name)s is matched to %(household)s.",
        name=account.display_name,
        household=f"{building.estate.name} {building.name} {household.room}",
    )
    if wants_fragment():
        return render(
            "people/unverified.html",
            "people/_unverified_row.html",
            trigger=MATCHED_EVENT,
            account=account,
            buildings=[],
            outcome=outcome,
        )
    flash(outcome, "success")
    return redirect(url_for("people.unverified"), code=303)
