"""Points administration for staff: the rules, one person's points with corrections, the
community ledger, the exports and the party members' annual summary."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import community_ids, get_scoped_or_404, roles_required
from portal.core.errors import DomainError
from portal.core.exports import FORMATS, export_response
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.help.catalogue import category_name
from portal.htmx import render, wants_fragment
from portal.people.models import Person
from portal.places.models import Community
from portal.points import admin
from portal.points.admin_forms import (
    AdjustForm,
    LedgerFilterForm,
    PartyFilterForm,
    ReverseForm,
    rules_form,
)
from portal.points.models import RULE_DEFAULTS, PointsEntry
from portal.volunteers.forms import options
from portal.volunteers.models import VOLUNTEER_TYPES

bp = Blueprint("points_admin", __name__, url_prefix="/points")

EDITORS = ("secretary",)
READERS = ("secretary", "subdistrict_admin")
CHANGED_EVENT = "points-changed"
MAX_ID = 2**63


@bp.context_processor
def _labels() -> dict:
    return {
        "entry_kind_labels": admin.ENTRY_KIND_LABELS,
        "period_labels": admin.PERIOD_LABELS,
        "category_name": category_name,
    }


def _cursor(name: str) -> int | None:
    raw = request.values.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) < MAX_ID else None


def _communities() -> list[Community]:
    """The communities the viewer may pick from (only shown when there are several)."""
    ids = community_ids()
    if len(ids) < 2:
        return []
    return list(
        db.session.scalars(select(Community).where(Community.id.in_(ids)).order_by(Community.name))
    )


def _first_error(form) -> str:
    for errors in form.errors.values():
        if errors:
            return errors[0]
    return _("Please check the form.")


def _fmt_or_404(fmt: str) -> str:
    if fmt not in FORMATS:
        abort(404)
    return fmt


# --- rules ------------------------------------------------------------------------------------


def _viewed_community_id() -> int:
    """The secretary's community; a subdistrict admin picks one of theirs (?community_id=)."""
    allowed = community_ids()
    if not allowed:
        abort(404)
    wanted = request.args.get("community_id", type=int)
    if wanted is None:
        return allowed[0]
    if wanted not in allowed:
        abort(404)
    return wanted


def _rules_data(values: dict[str, Decimal], categories) -> dict:
    data: dict[str, object] = {}
    for key, value in values.items():
        if key.startswith("multiplier:"):
            data[admin.field_name(key)] = value.quantize(Decimal("0.01"))
        elif key in RULE_DEFAULTS:
            data[admin.field_name(key)] = int(value)
    for category in categories:
        data[f"category_{category.id}"] = category.points
    return data


@bp.route("/rules", methods=["GET", "POST"])
@roles_required(*READERS)
def rules():
    if request.method == "POST" and current_user.role not in EDITORS:
        abort(403)
    community_id = _viewed_community_id()
    categories = admin.rule_categories(community_id)
    values = admin.effective_rules(community_id)
    groups: list[tuple] = []
    for category in categories:
        if not groups or groups[-1][0].id != category.parent_id:
            groups.append((category.parent, []))
        groups[-1][1].append(category)
    if request.method == "POST":
        # A category added since the page was loaded keeps its points rather than failing.
        form = rules_form(
            categories,
            category_name,
            data={f"category_{c.id}": c.points for c in categories},
        )
    else:
        form = rules_form(categories, category_name, data=_rules_data(values, categories))
    if form.validate_on_submit():
        try:
            changed = admin.save_rules(
                community_id,
                {key: form[admin.field_name(key)].data for key in admin.RULE_KEYS},
                {c.id: form[f"category_{c.id}"].data for c in categories},
                current_user.id,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            if changed:
                flash(_("The points rules were saved."), "success")
            else:
                flash(_("Nothing was changed."), "info")
            return redirect(url_for("points_admin.rules"), code=303)
    return render(
        "points_admin/rules.html",
        form=form,
        groups=groups,
        values=values,
        types=VOLUNTEER_TYPES,
        last=admin.last_change(community_id),
        can_edit=current_user.role in EDITORS,
        community_id=community_id,
        communities=_communities(),
    )


# --- one person's points ----------------------------------------------------------------------


def _person_page(
    person: Person,
    *,
    adjust_form: AdjustForm | None = None,
    reverse_errors: dict[int, str] | None = None,
    reverse_reasons: dict[int, str] | None = None,
    message: str | None = None,
    trigger: str | None = None,
):
    page = admin.keyset_page(
        admin.person_history_query(person.id),
        before=_cursor("before"),
        after=_cursor("after"),
        per_page=current_app.config["PAGE_SIZE"],
    )
    can_edit = current_user.role in EDITORS
    return render(
        "points_admin/person.html",
        "points_admin/_person.html",
        trigger=trigger,
        person=person,
        account=admin.account_of(person.id),
        ledger_page=page,
        cursor={k: v for k, v in (("before", _cursor("before")), ("after", _cursor("after"))) if v},
        can_edit=can_edit,
        own=current_user.person_id == person.id,
        adjust_form=adjust_form or (AdjustForm(formdata=None) if can_edit else None),
        reverse_form=ReverseForm(formdata=None),
        reverse_errors=reverse_errors or {},
        reverse_reasons=reverse_reasons or {},
        not_reversible=admin.NOT_REVERSIBLE,
        message=message,
    )


@bp.get("/people/<int:person_id>")
@roles_required(*READERS)
def person(person_id: int):
    return _person_page(get_scoped_or_404(Person, person_id))


def _done(person_id: int, message: str):
    """The updated fragment for htmx; otherwise a flash and back to the page (303)."""
    if wants_fragment():
        person = db.session.get(Person, person_id)
        return _person_page(person, message=message, trigger=CHANGED_EVENT)
    flash(message, "success")
    args = {k: v for k, v in (("before", _cursor("before")), ("after", _cursor("after"))) if v}
    return redirect(url_for("points_admin.person", person_id=person_id, **args), code=303)


@bp.post("/people/<int:person_id>/adjust")
@roles_required(*EDITORS)
def adjust(person_id: int):
    person = get_scoped_or_404(Person, person_id)
    form = AdjustForm()
    if form.validate_on_submit():
        try:
            entry = admin.adjust_points(
                person,
                points=form.points.data,
                hours=form.hours.data,
                reason=form.reason.data or "",
                actor=current_user,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            points, hours = entry.points, entry.hours
            db.session.commit()
            message = _(
                "Adjustment recorded: %(points)s points, %(hours)s hours.",
                points=f"{points:+d}",
                hours=f"{hours:+.2f}",
            )
            return _done(person_id, message)
    return _person_page(person, adjust_form=form)


@bp.post("/entries/<int:entry_id>/reverse")
@roles_required(*EDITORS)
def reverse(entry_id: int):
    entry = get_scoped_or_404(PointsEntry, entry_id)
    person_id = entry.person_id
    form = ReverseForm()
    try:
        if not form.validate_on_submit():
            raise DomainError({"reason": _first_error(form)})
        row = admin.reverse_entry(entry, reason=form.reason.data or "", actor=current_user)
        points = row.points
    except DomainError as error:
        db.session.rollback()
        return _person_page(
            db.session.get(Person, person_id),
            reverse_errors={entry_id: " ".join(str(m) for m in error.errors.values())},
            reverse_reasons={entry_id: form.reason.data or ""},
        )
    db.session.commit()
    message = _(
        "Entry No. %(number)d was reversed (%(points)s points).",
        number=entry_id,
        points=f"{points:+d}",
    )
    return _done(person_id, message)


# --- the community ledger ----------------------------------------------------------------------


def _ledger_filters() -> tuple[LedgerFilterForm, admin.LedgerFilters]:
    form = LedgerFilterForm(formdata=request.args)
    filters = admin.LedgerFilters.clean(
        form.kind.data, form.date_from.data, form.date_to.data, form.q.data, form.community.data
    )
    return form, filters


@bp.get("/ledger")
@roles_required(*READERS)
def ledger():
    form, filters = _ledger_filters()
    communities = _communities()
    form.community.choices = options(
        [("", _("All communities"))] + [(c.id, c.name) for c in communities]
    )
    page = admin.keyset_page(
        admin.ledger_query(filters, community_ids()),
        before=_cursor("before"),
        after=_cursor("after"),
        per_page=current_app.config["PAGE_SIZE"],
    )
    return render(
        "points_admin/ledger.html",
        "points_admin/_ledger.html",
        form=form,
        filters=filters,
        ledger_page=page,
        communities=communities,
        periods=admin.PERIODS,
    )


@bp.get("/ledger/export.<fmt>")
@roles_required(*READERS)
def ledger_export(fmt: str):
    fmt = _fmt_or_404(fmt)
    _form, filters = _ledger_filters()
    rows = admin.ledger_export_rows(filters, community_ids(), get_timezone())
    stem = f"points-ledger-{local_today().isoformat()}"
    return export_response(stem, fmt, admin.ledger_export_header(), rows)


@bp.get("/leaderboard/export.<fmt>")
@roles_required(*READERS)
def leaderboard_export(fmt: str):
    fmt = _fmt_or_404(fmt)
    period = request.args.get("period", "month")
    if period not in admin.PERIODS:
        period = "month"
    ids = community_ids()
    wanted = request.args.get("community", type=int)
    if wanted is not None:
        ids = [i for i in ids if i == wanted]
    rows = admin.leaderboard_rows(ids, period)
    stem = f"leaderboard-{admin.period_key(period)}"
    return export_response(stem, fmt, admin.leaderboard_export_header(), rows)


# --- party members' annual summary -------------------------------------------------------------


def _party_filters() -> tuple[PartyFilterForm, int, list[int]]:
    form = PartyFilterForm(formdata=request.args)
    years = admin.party_years()
    year = form.year.data if form.year.data in years else years[0]
    form.year.data = year
    form.year.choices = options([(y, str(y)) for y in years])
    ids = community_ids()
    if form.community.data is not None:
        ids = [i for i in ids if i == form.community.data]
    return form, year, ids


@bp.get("/party")
@roles_required(*READERS)
def party():
    form, year, ids = _party_filters()
    communities = _communities()
    form.community.choices = options(
        [("", _("All communities"))] + [(c.id, c.name) for c in communities]
    )
    pagination = db.paginate(
        admin.party_query(ids),
        page=max(request.args.get("page", 1, type=int) or 1, 1),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    figures = admin.party_figures([v.person_id for v in pagination.items], year)
    args = {"year": year}
    if form.community.data is not None:
        args["community"] = form.community.data
    return render(
        "points_admin/party.html",
        "points_admin/_party.html",
        form=form,
        year=year,
        pagination=pagination,
        figures=figures,
        args=args,
        communities=communities,
        community_names={c.id: c.name for c in communities},
    )


@bp.get("/party/export.<fmt>")
@roles_required(*READERS)
def party_export(fmt: str):
    fmt = _fmt_or_404(fmt)
    _form, year, ids = _party_filters()
    rows = admin.party_export_rows(ids, year)
    return export_response(f"party-members-{year}", fmt, admin.party_export_header(), rows)
