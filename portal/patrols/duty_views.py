"""On the day: the leader's page (code, QR, roster, attendance), check-in and check-out, the
door-watch checklist, and the patrol report with its hazards."""

from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, abort, flash, redirect, request, send_file, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.access import community_ids, get_scoped_or_404, grid_ids
from portal.core.errors import DomainError
from portal.core.labels import label
from portal.core.photos import accepts_photos, photo_path, uploaded_photo
from portal.core.timeutil import now_utc
from portal.core.urls import external_url
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.patrols import attendance as services
from portal.patrols.duty_forms import (
    AttendanceForm,
    CheckinForm,
    DoorVisitForm,
    HazardForm,
    ReportForm,
)
from portal.patrols.models import Hazard, Shift, Signup
from portal.places.models import Household

bp = Blueprint("duty", __name__)

ATTENDANCE_EVENT = "attendance-marked"
VISIT_EVENT = "door-visit-recorded"
HAZARD_EVENT = "hazard-added"


def _time(moment) -> str:
    return format_datetime(moment, "HH:mm")


def can_lead(shift: Shift) -> bool:
    """The shift's leader, the community's secretary, or a grid worker of the shift's grid.
    The shift must already be scoped to the user's communities."""
    if current_user.role == "secretary":
        return True
    if current_user.role == "grid_worker" and shift.grid_id in (grid_ids() or []):
        return True
    return current_user.person_id is not None and shift.leader_id == current_user.person_id


def _led_shift(shift_id: int) -> Shift:
    """The shift if the user leads it (403 otherwise; 404 outside their communities)."""
    shift = get_scoped_or_404(Shift, shift_id)
    if not can_lead(shift):
        abort(403)
    return shift


def _first_error(form) -> str:
    for errors in form.errors.values():
        if errors:
            return errors[0]
    return _("Please check the form.")


# --- the leader's page ------------------------------------------------------------------------


def _checkin_url(shift: Shift) -> str:
    return external_url("duty.checkin", shift_id=shift.id, code=shift.checkin_code)


@bp.get("/shifts/<int:shift_id>/lead")
@login_required
def lead(shift_id: int):
    shift = _led_shift(shift_id)
    signups = services.roster(shift)
    return render(
        "duty/lead.html",
        shift=shift,
        signups=signups,
        checkin_url=_checkin_url(shift),
        checked_in=sum(1 for s in signups if s.checked_in_at),
        present=sum(1 for s in signups if s.attendance == "present"),
        door_watch=services.has_door_watch(shift),
        report_open=services.report_open(shift, now_utc()),
    )


@bp.get("/shifts/<int:shift_id>/qr.svg")
@login_required
def qr(shift_id: int):
    shift = _led_shift(shift_id)
    buffer = io.BytesIO()
    segno.make(_checkin_url(shift), error="m").save(
        buffer, kind="svg", scale=6, border=2, title=_("Check-in QR code")
    )
    response = Response(buffer.getvalue(), mimetype="image/svg+xml")
    # The code inside is a shift's key: no shared or browser cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _attendee_answer(shift: Shift, signup_id: int, message: str, kind: str, *, won: bool):
    if wants_fragment():
        return render(
            "duty/lead.html",
            "duty/_attendee.html",
            trigger=ATTENDANCE_EVENT if won else None,
            shift=shift,
            signup=services.roster_entry(signup_id),
            message=message,
            message_kind=kind,
        )
    flash(message, kind)
    return redirect(url_for("duty.lead", shift_id=shift.id) + f"#attendee-{signup_id}", code=303)


@bp.post("/shifts/<int:shift_id>/attendance/<int:signup_id>")
@login_required
def attendance(shift_id: int, signup_id: int):
    shift = _led_shift(shift_id)
    signup = get_scoped_or_404(Signup, signup_id)
    if signup.shift_id != shift.id:
        abort(404)
    form = AttendanceForm()
    try:
        if not form.validate_on_submit():
            raise DomainError({"_": _first_error(form)})
        outcome = services.mark_attendance(signup, form.attendance.data, current_user, now_utc())
    except DomainError as error:
        db.session.rollback()
        message = next(iter(error.errors.values()))
        return _attendee_answer(shift, signup_id, message, "error", won=False)
    db.session.commit()
    name = outcome.signup.person.name
    if outcome.signup.attendance == "no_show":
        message = _("%(name)s: marked as a no-show.", name=name)
    elif outcome.hours_recorded:
        message = _(
            "%(name)s: present, %(hours)s hours recorded.", name=name, hours=outcome.signup.hours
        )
    else:
        message = _(
            "%(name)s: present (hours were already recorded: %(hours)s).",
            name=name,
            hours=outcome.signup.hours,
        )
    return _attendee_answer(shift, signup_id, message, "success", won=True)


# --- check-in and check-out -------------------------------------------------------------------


@bp.route("/shifts/<int:shift_id>/checkin", methods=["GET", "POST"])
@login_required
def checkin(shift_id: int):
    shift = get_scoped_or_404(Shift, shift_id)
    if shift.help_task_id is not None and request.method == "GET":
        # A household help visit: its own page holds check-in, report and confirmation.
        return redirect(url_for("shifts.detail", shift_id=shift.id), code=303)
    person_id = current_user.person_id
    now = now_utc()
    form = CheckinForm(data={"code": request.args.get("code", "")})
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                outcome = services.check_in(shift, person_id, form.code.data, now)
            except DomainError as error:
                db.session.rollback()
                error.apply_to(form)
            else:
                db.session.commit()
                _flash_checkin(outcome)
                return redirect(url_for("duty.checkin", shift_id=shift.id), code=303)
    elif form.code.data:
        # Opened from the QR code: say now what is wrong, before the tap (nothing changes).
        signup = services.own_signup(shift, person_id)
        if signup is None or signup.checked_in_at is None:
            try:
                services.validate_checkin(shift, person_id, form.code.data, now)
            except DomainError as error:
                error.apply_to(form)
    return render(
        "duty/checkin.html",
        shift=shift,
        signup=services.own_signup(shift, person_id),
        form=form,
        code_open=services.code_is_open(shift, now),
        checkout_open=shift.starts_at <= now <= services.checkout_closes(shift),
    )


def _flash_checkin(outcome: services.Outcome) -> None:
    at = _time(outcome.signup.checked_in_at)
    if outcome.won:
        flash(_("Checked in at %(time)s. Thank you for coming!", time=at), "success")
    else:
        flash(_("You had already checked in at %(time)s; that time stays.", time=at), "info")


@bp.route("/checkin", methods=["GET", "POST"])
@login_required
def checkin_code():
    # A door card's QR code opens this page with the code filled in (portal.care).
    form = (
        CheckinForm()
        if request.method == "POST"
        else CheckinForm(data={"code": request.args.get("code", "")[:12]})
    )
    now = now_utc()
    if form.validate_on_submit():
        try:
            signup = services.find_signup_for_code(
                current_user.person_id, community_ids(), form.code.data, now
            )
            outcome = services.check_in(signup.shift, current_user.person_id, form.code.data, now)
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            _flash_checkin(outcome)
            endpoint = "shifts.detail" if outcome.signup.shift.help_task_id else "duty.checkin"
            return redirect(url_for(endpoint, shift_id=outcome.signup.shift_id), code=303)
    return render(
        "duty/checkin_code.html",
        form=form,
        open_signups=services.open_checkins(current_user.person_id, now),
    )


@bp.post("/shifts/<int:shift_id>/checkout")
@login_required
def checkout(shift_id: int):
    shift = get_scoped_or_404(Shift, shift_id)
    try:
        outcome = services.check_out(shift, current_user.person_id, now_utc())
    except DomainError as error:
        db.session.rollback()
        flash(next(iter(error.errors.values())), "error")
    else:
        db.session.commit()
        signup = outcome.signup
        at = _time(signup.checked_out_at)
        if not outcome.won:
            flash(_("You had already checked out at %(time)s.", time=at), "info")
        elif outcome.hours_recorded:
            message = _(
                "Checked out at %(time)s: %(hours)s hours recorded.", time=at, hours=signup.hours
            )
            flash(message, "success")
        else:
            flash(_("Checked out at %(time)s.", time=at), "success")
    return redirect(url_for("duty.checkin", shift_id=shift.id), code=303)


# --- door watch -------------------------------------------------------------------------------


@bp.get("/shifts/<int:shift_id>/door-watch")
@login_required
def door_watch(shift_id: int):
    shift = _led_shift(shift_id)
    return render(
        "duty/door_watch.html",
        shift=shift,
        rows=services.care_households(shift),
        row_errors={},
        typed={},
    )


@bp.post("/shifts/<int:shift_id>/door-watch/<int:household_id>")
@login_required
def door_visit(shift_id: int, household_id: int):
    shift = _led_shift(shift_id)
    household = get_scoped_or_404(Household, household_id)
    if not services.on_route(shift, household):
        abort(404)
    form = DoorVisitForm()
    try:
        if not form.validate_on_submit():
            raise DomainError({"note": _first_error(form)})
        visit = services.record_visit(
            shift, household, form.outcome.data, form.note.data, current_user, now_utc()
        )
    except DomainError as error:
        db.session.rollback()
        message = next(iter(error.errors.values()))
        typed = {"outcome": form.outcome.data, "note": form.note.data or ""}
        if wants_fragment():
            return render(
                "duty/door_watch.html",
                "duty/_visit.html",
                shift=shift,
                row=services.care_household(shift, household),
                error=message,
                typed=typed,
            )
        rows = services.care_households(shift)
        listed = any(row.household.id == household.id for row in rows)
        return render(
            "duty/door_watch.html",
            shift=shift,
            rows=rows,
            row_errors={household.id: message},
            typed={household.id: typed},
            page_error=None if listed else message,
        )
    db.session.commit()
    if visit.outcome == "needs_help":
        message = _("Needs help: recorded for the grid worker.")
    else:
        message = _("Recorded: %(outcome)s.", outcome=label("visit_outcome", visit.outcome))
    if wants_fragment():
        return render(
            "duty/door_watch.html",
            "duty/_visit.html",
            trigger=VISIT_EVENT,
            shift=shift,
            row=services.care_household(shift, household),
            message=message,
            typed={},
        )
    flash(message, "success")
    return redirect(
        url_for("duty.door_watch", shift_id=shift.id) + f"#visit-{household.id}", code=303
    )


# --- the patrol report ------------------------------------------------------------------------


def _report_page(shift: Shift, form: ReportForm, hazard_form: HazardForm):
    return render(
        "duty/report.html",
        shift=shift,
        report=services.report_for(shift),
        form=form,
        hazard_form=hazard_form,
        report_open=services.report_open(shift, now_utc()),
    )


@bp.route("/shifts/<int:shift_id>/report", methods=["GET", "POST"])
@login_required
def report(shift_id: int):
    shift = _led_shift(shift_id)
    existing = services.report_for(shift)
    form = ReportForm(data={"summary": existing.summary if existing else ""})
    if form.validate_on_submit():
        try:
            services.save_report(shift, form.summary.data, current_user, now_utc())
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            flash(_("The patrol report was saved."), "success")
            return redirect(url_for("duty.report", shift_id=shift.id), code=303)
    return _report_page(shift, form, HazardForm(formdata=None))


@bp.post("/shifts/<int:shift_id>/report/hazards")
@login_required
@accepts_photos("photo")
def hazard_add(shift_id: int):
    shift = _led_shift(shift_id)
    form = HazardForm()
    if form.validate_on_submit():
        try:
            services.add_hazard(
                shift,
                form.description.data,
                form.location.data,
                uploaded_photo(form.photo.name),
                current_user,
                now_utc(),
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
        else:
            db.session.commit()
            if wants_fragment():
                return render(
                    "duty/report.html",
                    "duty/_hazards.html",
                    trigger=HAZARD_EVENT,
                    shift=shift,
                    report=services.report_for(shift),
                    hazard_form=HazardForm(formdata=None),
                    report_open=True,
                    message=_("The hazard was added."),
                )
            flash(_("The hazard was added."), "success")
            return redirect(url_for("duty.report", shift_id=shift.id) + "#hazards", code=303)
    if wants_fragment():
        return render(
            "duty/report.html",
            "duty/_hazards.html",
            shift=shift,
            report=services.report_for(shift),
            hazard_form=form,
            report_open=services.report_open(shift, now_utc()),
        )
    existing = services.report_for(shift)
    summary = existing.summary if existing else ""
    return _report_page(shift, ReportForm(formdata=None, data={"summary": summary}), form)


@bp.get("/hazards/<int:hazard_id>/photo")
@login_required
def hazard_photo(hazard_id: int):
    hazard = get_scoped_or_404(Hazard, hazard_id)
    shift = db.session.get(Shift, hazard.report.shift_id)
    if shift is None or shift.community_id != hazard.community_id or not can_lead(shift):
        abort(404)
    try:
        path = photo_path(hazard.photo)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
