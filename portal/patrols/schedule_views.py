"""Scheduling pages: new and edited shifts, weekly series, cancellations, and the coverage view.

Secretaries schedule in every grid of their community, grid workers in their own grids (404
elsewhere); subdistrict admins read the coverage and series pages of their communities.
"""

from __future__ import annotations

from datetime import date, time, timedelta

from babel.lists import format_list
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.core.errors import DomainError
from portal.core.timeutil import local_today, to_local
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.patrols import scheduling
from portal.patrols.models import Shift, ShiftSeries
from portal.patrols.schedule_forms import (
    WEEKDAY_LABELS,
    CoverageFilterForm,
    RouteForm,
    SeriesCancelForm,
    SeriesEditForm,
    SeriesForm,
    ShiftCancelForm,
    ShiftForm,
)
from portal.people.models import Person
from portal.places.models import Building, Community, Grid

bp = Blueprint("schedule", __name__)

SCHEDULERS = ("secretary", "grid_worker")
READERS = ("secretary", "grid_worker", "subdistrict_admin")
# Blank route rows offered below the filled ones (the form works without JavaScript).
SPARE_STOPS = 2
MIN_STOP_ROWS = 4


# --- helpers ------------------------------------------------------------------------------------


def _shift_or_404(shift_id: int) -> Shift:
    shift = get_scoped_or_404(Shift, shift_id)
    require_grid(shift.grid_id)
    return shift


def _series_or_404(series_id: int) -> ShiftSeries:
    series = get_scoped_or_404(ShiftSeries, series_id)
    require_grid(series.grid_id)
    return series


def _page() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


def _arg_date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _see_other(endpoint: str, **values):
    return redirect(url_for(endpoint, **values), code=303)


def _route_choices(form, grid_id: int | None) -> None:
    """Offer the buildings of ``grid_id`` in every route row, with spare blank rows."""
    filled = sum(1 for e in form.route if e.building_id.data is not None or e.checkpoint.data)
    wanted = min(scheduling.MAX_STOPS, max(MIN_STOP_ROWS, filled + SPARE_STOPS))
    while len(form.route.entries) < wanted:
        form.route.append_entry()
    options = [SelectChoice("", _("— No building —"))] + [
        SelectChoice(b.id, f"{b.estate.name} {b.name}") for b in scheduling.grid_buildings(grid_id)
    ]
    for entry in form.route:
        entry.building_id.choices = options


def _setup(form, community_id: int, grid_id: int | None = None) -> list[Grid]:
    """Fill the selects from the user's community; returns the grids offered."""
    grids = scheduling.schedulable_grids(community_id, grid_ids())
    if hasattr(form, "grid_id"):
        form.grid_id.choices = [SelectChoice(g.id, g.name) for g in grids]
        if form.grid_id.data is None and grids:
            form.grid_id.data = grids[0].id
        grid_id = form.grid_id.data
    if grid_id not in {g.id for g in grids}:
        grid_id = grids[0].id if grids else None
    _route_choices(form, grid_id)
    form.leader_id.choices = [SelectChoice("", _("— No leader —"))] + [
        SelectChoice(p.id, f"{p.name} ({p.phone[-4:]})" if p.phone else p.name)
        for p in scheduling.leader_candidates(community_id)
    ]
    return grids


def _plan_data(obj, start: time, end: time) -> dict:
    """Form data of a shift or a series template."""
    return {
        "title": obj.title,
        "meeting_point": obj.meeting_point,
        "route": [
            {"building_id": stop.get("building_id"), "checkpoint": stop.get("label", "")}
            for stop in obj.route or []
        ],
        "start_time": start,
        "end_time": end,
        "capacity": obj.capacity,
        "minimum": obj.minimum,
        "allowed_types": obj.types if isinstance(obj, Shift) else _types(obj.allowed_types),
        "leader_id": obj.leader_id,
        "notes": obj.notes,
        "points_per_hour": obj.points_per_hour,
    }


def _types(codes: str) -> list[str]:
    return [t for t in (codes or "").split(",") if t]


def _route_names(stops_lists) -> dict[int, str]:
    """Building names for the route stops shown (one query)."""
    ids = {s.get("building_id") for stops in stops_lists for s in stops or []} - {None}
    if not ids:
        return {}
    return {
        b.id: f"{b.estate.name} {b.name}"
        for b in db.session.scalars(select(Building).where(Building.id.in_(ids)))
    }


# --- one shift ----------------------------------------------------------------------------------


@bp.route("/shifts/new", methods=["GET", "POST"])
@roles_required(*SCHEDULERS)
def shift_new():
    community_id = current_user.community_id
    if request.method == "POST":
        form = ShiftForm()
    else:
        form = ShiftForm(
            data={
                "grid_id": request.args.get("grid_id", type=int),
                "day": _arg_date("day") or local_today() + timedelta(days=1),
                "start_time": time(19, 0),
                "end_time": time(21, 0),
            }
        )
    grids = _setup(form, community_id)
    if form.validate_on_submit():
        try:
            shift = scheduling.create_shift(
                community_id,
                current_user,
                form.plan(kind=form.kind.data, grid_id=form.grid_id.data),
                form.day.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Shift %(title)s scheduled.", title=shift.title), "success")
            return _see_other("shifts.detail", shift_id=shift.id)
    return render("schedule/shift_form.html", form=form, shift=None, grids=grids)


@bp.route("/shifts/<int:shift_id>/edit", methods=["GET", "POST"])
@roles_required(*SCHEDULERS)
def shift_edit(shift_id: int):
    shift = _shift_or_404(shift_id)
    if request.method == "POST":
        form = ShiftForm()
    else:
        start, end = to_local(shift.starts_at), to_local(shift.ends_at)
        data = _plan_data(shift, start.time(), end.time())
        data.update(kind=shift.kind, grid_id=shift.grid_id, day=start.date())
        form = ShiftForm(data=data)
    grids = _setup(form, shift.community_id)
    if form.validate_on_submit():
        try:
            moved = scheduling.update_shift(
                shift,
                current_user,
                form.plan(kind=form.kind.data, grid_id=form.grid_id.data),
                form.day.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            if moved:
                flash(
                    _("Shift saved. The volunteers signed up were told of the new time."), "success"
                )
            else:
                flash(_("Shift saved."), "success")
            return _see_other("shifts.detail", shift_id=shift.id)
    return render(
        "schedule/shift_form.html",
        form=form,
        shift=shift,
        grids=grids,
        cancel_form=ShiftCancelForm(),
    )


@bp.post("/shifts/<int:shift_id>/cancel-shift")
@roles_required(*SCHEDULERS)
def shift_cancel(shift_id: int):
    shift = _shift_or_404(shift_id)
    form = ShiftCancelForm()
    if not form.validate_on_submit():
        for message in form.reason.errors:
            flash(message, "error")
        return _see_other("schedule.shift_edit", shift_id=shift.id)
    try:
        won = scheduling.cancel_shift(shift, current_user, form.reason.data or "")
    except DomainError as error:
        db.session.rollback()
        for message in error.errors.values():
            flash(message, "error")
        return _see_other("shifts.detail", shift_id=shift.id)
    db.session.commit()
    if won:
        flash(_("The shift was cancelled; everyone signed up was told."), "success")
    else:
        flash(_("This shift was already cancelled."), "warning")
    return _see_other("shifts.detail", shift_id=shift.id)


@bp.get("/schedule/route-stops")
@roles_required(*SCHEDULERS)
def route_stops():
    """The route rows for the grid just chosen (htmx); without htmx, the new-shift page."""
    form = RouteForm(formdata=request.args)
    grid_id = form.grid_id.data
    allowed = scheduling.schedulable_grids(current_user.community_id, grid_ids())
    if grid_id not in {g.id for g in allowed}:
        abort(404)
    if not wants_fragment():
        return _see_other("schedule.shift_new", grid_id=grid_id)
    _route_choices(form, grid_id)
    return render("schedule/_route.html", "schedule/_route.html", form=form)


# --- series -------------------------------------------------------------------------------------


@bp.route("/series/new", methods=["GET", "POST"])
@roles_required(*SCHEDULERS)
def series_new():
    community_id = current_user.community_id
    if request.method == "POST":
        form = SeriesForm()
    else:
        form = SeriesForm(
            data={
                "grid_id": request.args.get("grid_id", type=int),
                "starts_on": local_today() + timedelta(days=1),
                "start_time": time(19, 0),
                "end_time": time(21, 0),
            }
        )
    grids = _setup(form, community_id)
    if form.validate_on_submit():
        try:
            series = scheduling.create_series(
                community_id,
                current_user,
                form.plan(kind=form.kind.data, grid_id=form.grid_id.data),
                weekdays=list(form.weekdays.data or []),
                starts_on=form.starts_on.data,
                ends_on=form.ends_on.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Series %(title)s created.", title=series.title), "success")
            return _see_other("schedule.series", series_id=series.id)
    return render(
        "schedule/series_form.html",
        form=form,
        grids=grids,
        horizon=scheduling.horizon_days(),
        max_occurrences=scheduling.MAX_OCCURRENCES,
    )


def describe_series(series: ShiftSeries) -> str:
    """The rule in words, in the reader's language."""
    days = [str(WEEKDAY_LABELS[d]) for d in scheduling.rule_weekdays(series.rrule)]
    return _(
        "Every week on %(days)s, %(start)s–%(end)s, from %(first)s to %(last)s",
        days=format_list(days, locale=get_locale()) if days else "—",
        start=series.start_time.strftime("%H:%M"),
        end=scheduling.end_time_of(series).strftime("%H:%M"),
        first=series.starts_on.isoformat(),
        last=series.ends_on.isoformat(),
    )


@bp.get("/series/<int:series_id>")
@roles_required(*READERS)
def series(series_id: int):
    series = _series_or_404(series_id)
    today = local_today()
    pagination = db.paginate(
        scheduling.series_occurrences_query(series, today),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    start_from = max(today, series.starts_on)
    return render(
        "schedule/series.html",
        "schedule/_occurrences.html",
        series=series,
        rule_words=describe_series(series),
        grid=db.session.get(Grid, series.grid_id),
        leader=db.session.get(Person, series.leader_id) if series.leader_id else None,
        route_names=_route_names([series.route]),
        pagination=pagination,
        can_edit=current_user.role in SCHEDULERS,
        start_from=start_from,
        ended=series.ends_on < today,
        cancel_form=SeriesCancelForm(data={"from_date": start_from}),
    )


@bp.route("/series/<int:series_id>/edit", methods=["GET", "POST"])
@roles_required(*SCHEDULERS)
def series_edit(series_id: int):
    series = _series_or_404(series_id)
    if request.method == "POST":
        form = SeriesEditForm()
    else:
        data = _plan_data(series, series.start_time, scheduling.end_time_of(series))
        data["from_date"] = _arg_date("from") or max(local_today(), series.starts_on)
        form = SeriesEditForm(data=data)
    _setup(form, series.community_id, series.grid_id)
    if form.validate_on_submit():
        try:
            count = scheduling.update_series(
                series,
                current_user,
                form.plan(kind=series.kind, grid_id=series.grid_id),
                form.from_date.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(
                ngettext(
                    "Series saved; %(num)d upcoming shift was changed.",
                    "Series saved; %(num)d upcoming shifts were changed.",
                    count,
                ),
                "success",
            )
            return _see_other("schedule.series", series_id=series.id)
    return render(
        "schedule/series_edit.html",
        form=form,
        series=series,
        grid=db.session.get(Grid, series.grid_id),
        rule_words=describe_series(series),
    )


@bp.post("/series/<int:series_id>/cancel")
@roles_required(*SCHEDULERS)
def series_cancel(series_id: int):
    series = _series_or_404(series_id)
    form = SeriesCancelForm()
    try:
        if not form.validate_on_submit():
            raise DomainError({name: f.errors[0] for name, f in form._fields.items() if f.errors})
        count = scheduling.cancel_series(
            series, current_user, form.from_date.data, form.reason.data or ""
        )
    except DomainError as error:
        db.session.rollback()
        for message in error.errors.values():
            flash(message, "error")
        return _see_other("schedule.series", series_id=series.id)
    db.session.commit()
    flash(
        ngettext(
            "Series cancelled from %(date)s: %(num)d shift was cancelled and its volunteers told.",
            "Series cancelled from %(date)s: %(num)d shifts were cancelled and their volunteers"
            " told.",
            count,
            date=form.from_date.data.isoformat(),
        ),
        "success",
    )
    return _see_other("schedule.series", series_id=series.id)


# --- coverage -----------------------------------------------------------------------------------


@bp.get("/coverage")
@roles_required(*READERS)
def coverage():
    form = CoverageFilterForm(formdata=request.args)
    communities: list[Community] = []
    if current_user.role == "subdistrict_admin":
        ids = community_ids()
        communities = list(
            db.session.scalars(
                select(Community).where(Community.id.in_(ids)).order_by(Community.name)
            )
        )
        form.community.choices = [SelectChoice(c.id, c.name) for c in communities]
        chosen = form.community.data
        if chosen is not None and chosen not in ids:
            abort(404)
        if chosen is None and communities:
            chosen = communities[0].id
        form.community.data = chosen
    else:
        chosen = current_user.community_id
    data = scheduling.coverage(chosen, grid_ids(), local_today()) if chosen else None
    return render(
        "schedule/coverage.html",
        "schedule/_coverage.html",
        form=form,
        communities=communities,
        community_id=chosen,
        data=data,
        can_schedule=current_user.role in SCHEDULERS,
    )
