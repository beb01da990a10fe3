"""Scheduled household help: enrolment, tasks, the volunteers' list, coverage, and the visit
actions shown on an occurrence's shift page."""

from __future__ import annotations

import io
from datetime import timedelta

import segno
from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectChoice

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.care import services
from portal.care.forms import (
    DEFAULT_END,
    DEFAULT_START,
    ConfirmForm,
    DoorCodeForm,
    EndTaskForm,
    EnrolForm,
    PreferenceForm,
    ReportForm,
    TaskForm,
)
from portal.care.models import CareHousehold, HelpTask
from portal.core.errors import DomainError
from portal.core.timeutil import local_today, now_utc
from portal.core.urls import external_url
from portal.extensions import db
from portal.help.intake import category_name
from portal.htmx import render
from portal.patrols import scheduling
from portal.patrols.models import Shift
from portal.patrols.signups import own_statuses
from portal.places.models import Grid, Household
from portal.volunteers.models import Volunteer

bp = Blueprint("care", __name__, url_prefix="/care")

HANDLERS = ("grid_worker", "secretary")
STAFF = ("grid_worker", "secretary", "subdistrict_admin")
MAX_PAGE = 100_000


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def _see_other(endpoint: str, **values):
    return redirect(url_for(endpoint, **values), code=303)


def _care_or_404(care_id: int) -> CareHousehold:
    care = get_scoped_or_404(
        CareHousehold,
        care_id,
        options=[joinedload(CareHousehold.household).joinedload(Household.building)],
    )
    require_grid(care.grid_id)
    return care


TASK_PAGE = [
    joinedload(HelpTask.category),
    joinedload(HelpTask.grid),
    joinedload(HelpTask.building),
    joinedload(HelpTask.households),
]


def _task_or_404(task_id: int) -> HelpTask:
    task = get_scoped_or_404(HelpTask, task_id, options=TASK_PAGE)
    if current_user.role in STAFF:
        require_grid(task.grid_id)
    return task


def _occurrence_or_404(shift_id: int) -> tuple[Shift, HelpTask]:
    shift = get_scoped_or_404(Shift, shift_id)
    if shift.help_task_id is None:
        abort(404)
    task = _task_or_404(shift.help_task_id)
    return shift, task


# --- enrolment ----------------------------------------------------------------------------------


@bp.route("/households/enrol/<int:household_id>", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def enrol(household_id: int):
    household = get_scoped_or_404(Household, household_id, options=[joinedload(Household.building)])
    require_grid(household.building.grid_id)
    existing = services.care_of_household(household.id)
    if existing is not None:
        return _see_other("care.household", care_id=existing.id)
    form = EnrolForm()
    residents = [p for p in household.residents if p.erased_at is None]
    form.person_id.choices = [SelectChoice("", _("Choose…"))] + [
        SelectChoice(p.id, p.name) for p in residents
    ]
    if form.validate_on_submit():
        try:
            care = services.enrol_household(
                household,
                form.person_id.data,
                form.volunteer_sex.data,
                current_user,
                consent_given=form.consent.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("The household is enrolled for regular help."), "success")
            return _see_other("care.household", care_id=care.id)
    return render("care/enrol.html", form=form, household=household, residents=residents)


@bp.get("/households/<int:care_id>")
@roles_required(*STAFF)
def household(care_id: int):
    care = _care_or_404(care_id)
    pagination = db.paginate(
        services.visits_query(care.household_id),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    visits = list(pagination.items)
    return render(
        "care/household.html",
        care=care,
        consent=services.has_consent(care),
        tasks=services.household_tasks(care.household_id),
        visits=visits,
        visitors=services.visitors_of([v.shift_id for v in visits]),
        staff=True,
        pagination=pagination,
        form=PreferenceForm(data={"volunteer_sex": care.volunteer_sex or ""}),
        can_edit=current_user.role in HANDLERS,
    )


@bp.post("/households/<int:care_id>/preference")
@roles_required(*HANDLERS)
def preference(care_id: int):
    care = _care_or_404(care_id)
    form = PreferenceForm()
    if form.validate_on_submit():
        try:
            services.set_preference(care, form.volunteer_sex.data)
        except DomainError as error:
            db.session.rollback()
            flash(next(iter(error.errors.values())), "error")
        else:
            db.session.commit()
            flash(_("Saved. New tasks for this household follow it."), "success")
    return _see_other("care.household", care_id=care.id)


def _door_svg(care: CareHousehold) -> Markup:
    buffer = io.BytesIO()
    url = external_url("duty.checkin_code", code=care.door_code)
    segno.make(url, error="m").save(
        buffer, kind="svg", scale=6, border=2, title=_("Check-in QR code"), xmldecl=False
    )
    return Markup(buffer.getvalue().decode())


@bp.get("/households/<int:care_id>/card")
@roles_required(*HANDLERS)
def card(care_id: int):
    care = _care_or_404(care_id)
    response = render("care/card.html", care=care, qr=_door_svg(care))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- tasks ---------------------------------------------------------------------------------------


@bp.route("/tasks/new", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def task_new():
    care = _care_or_404(request.args.get("care", 0, type=int))
    building_id = care.household.building_id
    neighbours = list(
        db.session.scalars(
            select(CareHousehold)
            .join(Household, Household.id == CareHousehold.household_id)
            .options(joinedload(CareHousehold.household))
            .where(Household.building_id == building_id)
            .order_by(Household.room)
        )
    )
    community_id = care.community_id
    if request.method == "POST":
        form = TaskForm()
    else:
        tomorrow = local_today() + timedelta(days=1)
        form = TaskForm(
            data={
                "household_ids": [care.household_id],
                "volunteer_sex": care.volunteer_sex or "",
                "day": tomorrow,
                "starts_on": tomorrow,
                "start_time": DEFAULT_START,
                "end_time": DEFAULT_END,
            }
        )
    form.household_ids.choices = [
        SelectChoice(c.household_id, c.household.room) for c in neighbours
    ]
    categories = services.help_categories(community_id)
    form.category_id.choices = [("", _("Choose…"))] + [(c.id, category_name(c)) for c in categories]
    if form.validate_on_submit():
        try:
            task = services.create_task(community_id, current_user, form.task_input())
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("Help task %(title)s planned.", title=task.title), "success")
            return _see_other("care.task", task_id=task.id)
    return render(
        "care/task_form.html",
        form=form,
        care=care,
        horizon=scheduling.horizon_days(),
        max_occurrences=scheduling.MAX_OCCURRENCES,
    )


def _volunteer_grid_ids() -> list[int]:
    person_id = current_user.person_id
    if person_id is None:
        return []
    return [
        g
        for g in db.session.scalars(
            select(Volunteer.grid_id).where(
                Volunteer.person_id == person_id, Volunteer.status == "approved"
            )
        )
        if g is not None
    ]


@bp.get("/tasks")
@login_required
def tasks():
    """Volunteers: open tasks of their grid. Staff: every active task they look after."""
    community_id = community_ids()[0] if current_user.role != "subdistrict_admin" else None
    if community_id is None:
        abort(403)
    scope = grid_ids() if current_user.role in STAFF else _volunteer_grid_ids()
    pagination = db.paginate(
        services.open_tasks_query(community_id, scope, now_utc()),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    found = list(pagination.items)
    starts = services.next_starts([task.id for task in found], now_utc())
    return render(
        "care/tasks.html",
        rows=[(task, starts.get(task.id)) for task in found],
        pagination=pagination,
        staff=current_user.role in STAFF,
    )


@bp.get("/tasks/<int:task_id>")
@login_required
def task(task_id: int):
    task = _task_or_404(task_id)
    person_id = current_user.person_id
    staff = current_user.role in STAFF
    occurrences = services.coming_occurrences(task.id, now_utc())
    mine = own_statuses(person_id, [s.id for s in occurrences])
    standing = False if staff else services.is_standing(task.id, person_id)
    assigned = (
        staff
        or standing
        or "confirmed" in mine.values()
        or services.holds_place(task.id, person_id)
    )
    return render(
        "care/task.html",
        task=task,
        series=services.task_series(task),
        occurrences=occurrences,
        mine=mine,
        show_notes=assigned,
        show_rooms=assigned or _lives_in(task),
        standing=standing,
        staff=staff,
        can_edit=current_user.role in HANDLERS,
        end_form=EndTaskForm(),
    )


def _act_for_me(task_id: int, act, refusal: str):
    """Run ``act(task, person)`` for the signed-in person and commit; on a refusal, roll back
    and flash why. Returns the task and the result (None when refused)."""
    task = _task_or_404(task_id)
    try:
        if current_user.person is None:
            raise DomainError({"_": refusal})
        result = act(task, current_user.person)
    except DomainError as error:
        db.session.rollback()
        flash(error.errors["_"], "error")
        return task, None
    db.session.commit()
    return task, result


@bp.post("/tasks/<int:task_id>/take")
@roles_required("resident", "volunteer", "grid_worker", "secretary")
def take(task_id: int):
    refusal = _("Only approved volunteers of this community can sign up.")
    task, outcome = _act_for_me(task_id, services.take_series, refusal)
    if outcome is not None:
        message = _(
            "You help with every visit of this task: %(confirmed)d place(s) taken, "
            "%(waitlisted)d on the waitlist.",
            confirmed=outcome.confirmed,
            waitlisted=outcome.waitlisted,
        )
        flash(message, "success")
        for day, why in outcome.skipped[:5]:
            flash(_("%(date)s skipped: %(why)s", date=day.isoformat(), why=why), "warning")
    return _see_other("care.task", task_id=task.id)


@bp.post("/tasks/<int:task_id>/leave")
@roles_required("resident", "volunteer", "grid_worker", "secretary")
def leave(task_id: int):
    refusal = _("You have no standing place on this task.")
    task, given = _act_for_me(task_id, services.leave_series, refusal)
    if given is not None:
        flash(
            _("You no longer help with every visit: %(n)d place(s) given back.", n=given),
            "success",
        )
    return _see_other("care.task", task_id=task.id)


@bp.post("/tasks/<int:task_id>/end")
@roles_required(*HANDLERS)
def end(task_id: int):
    task = _task_or_404(task_id)
    form = EndTaskForm()
    if form.validate_on_submit():
        try:
            cancelled = services.end_task(task, current_user, form.reason.data or "")
        except DomainError as error:
            db.session.rollback()
            flash(next(iter(error.errors.values())), "error")
        else:
            db.session.commit()
            flash(_("Task ended: %(n)d coming visit(s) cancelled.", n=cancelled), "success")
    else:
        flash(next(iter(form.reason.errors), _("Check the form.")), "error")
    return _see_other("care.task", task_id=task.id)


# --- coverage -------------------------------------------------------------------------------------


@bp.get("/coverage")
@roles_required(*STAFF)
def coverage():
    grids_query = (
        select(Grid).where(Grid.community_id.in_(community_ids())).order_by(Grid.name, Grid.id)
    )
    allowed = grid_ids()
    if allowed is not None:
        grids_query = grids_query.where(Grid.id.in_(allowed))
    grids = list(db.session.scalars(grids_query))
    grid_id = request.args.get("grid", type=int)
    grid = next((g for g in grids if g.id == grid_id), grids[0] if grids else None)
    if grid_id is not None and (grid is None or grid.id != grid_id):
        abort(404)
    pagination = None
    rows: list[services.CoverageRow] = []
    if grid is not None:
        pagination = db.paginate(
            services.coverage_query(grid.id),
            page=_page(),
            per_page=current_app.config["PAGE_SIZE"],
            error_out=False,
        )
        rows = services.coverage_rows(list(pagination.items))
    return render(
        "care/coverage.html",
        grids=grids,
        grid=grid,
        rows=rows,
        pagination=pagination,
        days=services.COVERAGE_DAYS,
        can_plan=current_user.role in HANDLERS,
    )


# --- the visit (on the occurrence's shift page) ---------------------------------------------


def _lives_in(task: HelpTask) -> bool:
    """The signed-in user lives in one of the task's households (already loaded with it)."""
    person = current_user.person
    household_id = person.household_id if person is not None else None
    return household_id is not None and household_id in {h.id for h in task.households}


def visit_context(shift: Shift, visitors: list | None = None) -> dict:
    """What the shift page shows of a help visit, for the signed-in user. ``visitors``: the
    confirmed sign-ups with their people, when the caller has read them already."""
    task = db.session.get(HelpTask, shift.help_task_id, options=TASK_PAGE)
    person_id = current_user.person_id
    staff = current_user.role in STAFF
    visit = services.visit_of(shift.id)
    if visitors is None:
        visitors = services.visitors_of([shift.id]).get(shift.id, [])
    signup = next((s for s in visitors if person_id and s.person_id == person_id), None)
    household = not staff and signup is None and _lives_in(task)
    confirmable = (
        (current_user.role in HANDLERS or household)
        and shift.status == "scheduled"
        and now_utc() >= shift.starts_at
        and (visit is None or visit.confirmed_at is None)
    )
    confirm_form = ConfirmForm()
    confirm_form.came.choices = [SelectChoice(s.person_id, s.person.name) for s in visitors]
    if request.method == "GET":
        confirm_form.came.data = [s.person_id for s in visitors if s.checked_in_at] or [
            s.person_id for s in visitors
        ]
    # Assigned: staff, or a volunteer with a place on this visit or another of the task.
    assigned = (
        staff or signup is not None or (not household and services.holds_place(task.id, person_id))
    )
    return {
        "task": task,
        "visit": visit,
        "signup": signup,
        "show_notes": assigned,
        "show_rooms": assigned or household,
        "confirmable": confirmable,
        "visitors": visitors,
        "code_form": DoorCodeForm(),
        "report_form": ReportForm(),
        "confirm_form": confirm_form,
    }


def _visit_page(shift: Shift, error: DomainError | None = None, **forms):
    """The shift page again, with what was typed and the messages (422)."""
    from portal.patrols.shift_views import detail_context

    context = detail_context(shift)
    care = visit_context(shift, context["confirmed"])
    care.update(forms)
    if error is not None:
        care["message"] = error.errors.get("_")
        form = next(iter(forms.values()))
        DomainError({k: v for k, v in error.errors.items() if k != "_"}).apply_to(form)
    return render("shifts/detail.html", status=422, **context, care=care)


@bp.post("/visits/<int:shift_id>/checkin")
@roles_required("resident", "volunteer", "grid_worker", "secretary")
def checkin(shift_id: int):
    shift, _task = _occurrence_or_404(shift_id)
    form = DoorCodeForm()
    if form.validate_on_submit():
        try:
            outcome = services.check_in_at_door(
                shift, current_user.person_id, form.code.data, now_utc()
            )
        except DomainError as error:
            db.session.rollback()
            return _visit_page(shift, error, code_form=form)
        db.session.commit()
        if outcome.won:
            flash(_("Checked in. Thank you for coming!"), "success")
        else:
            flash(_("You had already checked in."), "info")
    return _see_other("shifts.detail", shift_id=shift.id)


@bp.post("/visits/<int:shift_id>/report")
@roles_required("resident", "volunteer", "grid_worker", "secretary")
def report(shift_id: int):
    shift, _task = _occurrence_or_404(shift_id)
    form = ReportForm()
    problem = request.form.get("outcome") == "problem"
    if form.validate_on_submit():
        try:
            visit = services.report_visit(
                shift,
                current_user.person,
                note=form.note.data or "",
                problem=problem,
                actor=current_user,
                now=now_utc(),
            )
        except DomainError as error:
            db.session.rollback()
            return _visit_page(shift, error, report_form=form)
        db.session.commit()
        if visit.request_id:
            flash(_("Thank you. The grid worker has been asked to look into it."), "success")
        else:
            flash(_("Thank you: the visit is marked done."), "success")
        return _see_other("shifts.detail", shift_id=shift.id)
    return _visit_page(shift, report_form=form)


@bp.post("/visits/<int:shift_id>/confirm")
@login_required
def confirm(shift_id: int):
    shift, task = _occurrence_or_404(shift_id)
    if not services.may_confirm(task, current_user):
        abort(403)
    form = ConfirmForm()
    visitors = services.visitors_of([shift.id]).get(shift.id, [])
    form.came.choices = [SelectChoice(s.person_id, s.person.name) for s in visitors]
    if form.validate_on_submit():
        try:
            outcome = services.confirm_visit(
                shift,
                current_user,
                came=list(form.came.data or []),
                rating=form.rating_value(),
                comment=form.comment.data or "",
                now=now_utc(),
            )
        except DomainError as error:
            db.session.rollback()
            return _visit_page(shift, error, confirm_form=form)
        db.session.commit()
        flash(
            _("Visit confirmed; hours recorded for %(n)d volunteer(s).", n=outcome.hours_recorded),
            "success",
        )
        return _see_other("shifts.detail", shift_id=shift.id)
    return _visit_page(shift, confirm_form=form)


@bp.get("/my-household")
@roles_required("resident", "volunteer", "grid_worker", "secretary")
def mine():
    """A resident's household: its help visits, newest first, with the ones to confirm."""
    person = current_user.person
    household_id = person.household_id if person is not None else None
    care = services.care_of_household(household_id) if household_id else None
    if care is None:
        return render("care/mine.html", care=None, visits=[], pagination=None, visitors={})
    pagination = db.paginate(
        services.visits_query(household_id),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    coming = list(
        db.session.scalars(
            select(Shift)
            .join(
                services.help_task_household,
                services.help_task_household.c.task_id == Shift.help_task_id,
            )
            .where(
                services.help_task_household.c.household_id == household_id,
                Shift.status == "scheduled",
                Shift.starts_at > now_utc() - timedelta(hours=12),
            )
            .order_by(Shift.starts_at)
            .limit(10)
        )
    )
    visits = list(pagination.items)
    return render(
        "care/mine.html",
        care=care,
        visits=visits,
        coming=coming,
        visitors=services.visitors_of([v.shift_id for v in visits] + [s.id for s in coming]),
        pagination=pagination,
    )
