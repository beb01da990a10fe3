"""Volunteers: one's own registration, the approval queue, the roster and its CSV export."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from contextlib import closing

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.core.errors import DomainError
from portal.core.exports import audited, csv_cell
from portal.core.labels import label
from portal.core.pagecache import cached_page
from portal.core.timeutil import local_today
from portal.core.validators import mask_phone
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.people.models import Person
from portal.places.models import Community
from portal.trust import privacy
from portal.volunteers import services
from portal.volunteers.forms import (
    AVAILABILITY,
    RejectForm,
    RosterFilterForm,
    VolunteerForm,
    options,
)
from portal.volunteers.models import FIVE_ELDER_KINDS, STATUSES, VOLUNTEER_TYPES, Volunteer

bp = Blueprint("volunteers", __name__, url_prefix="/volunteers")

DECIDERS = ("secretary", "grid_worker")
STAFF = ("secretary", "grid_worker", "subdistrict_admin")
DECIDED_EVENT = "volunteer-decided"


@bp.app_template_filter("availability_labels")
def availability_labels(codes: str | None) -> list[str]:
    """Translated labels of the comma-separated availability codes, in a fixed order."""
    chosen = set((codes or "").split(","))
    return [str(text) for code, text in AVAILABILITY.items() if code in chosen]


# --- one's own registration -------------------------------------------------------------------


def _form_data(volunteer: Volunteer | None, person: Person) -> dict:
    if volunteer is None:
        return {"grid_id": services.default_grid_id(person)}
    return {
        "types": volunteer.types,
        "employer": volunteer.employer,
        "party_branch": volunteer.party_branch,
        "grid_id": volunteer.grid_id,
        "five_elder_kind": volunteer.five_elder_kind,
        "skills": volunteer.skills,
        "availability": [c for c in volunteer.availability.split(",") if c],
    }


@bp.route("/mine", methods=["GET", "POST"])
@login_required
def mine():
    person = current_user.person
    if person is None:
        abort(403)
    volunteer = person.volunteer
    if request.method == "POST":
        form = VolunteerForm()
    else:
        form = VolunteerForm(data=_form_data(volunteer, person))
    form.grid_id.choices = options(
        [("", _("— Choose a grid —"))]
        + [(grid.id, grid.name) for grid in services.community_grids([person.community_id])]
    )
    if form.validate_on_submit():
        try:
            services.register_volunteer(
                person,
                types=form.types.data,
                employer=form.employer.data or "",
                party_branch=form.party_branch.data or "",
                grid_id=form.grid_id.data,
                five_elder_kind=form.five_elder_kind.data,
                skills=form.skills.data or "",
                availability=form.availability.data,
            )
        except DomainError as error:
            db.session.rollback()
            error.apply_to(form)
            volunteer = person.volunteer
        else:
            db.session.commit()
            flash(_("Your registration was sent. It now awaits approval."), "success")
            return redirect(url_for("volunteers.mine"), code=303)
    return render("volunteers/mine.html", form=form, volunteer=volunteer)


# --- the approval queue -----------------------------------------------------------------------


def _page() -> int:
    return max(request.values.get("page", 1, type=int) or 1, 1)


def _queue_page(row_errors: dict[int, str] | None = None, reasons: dict[int, str] | None = None):
    pagination = db.paginate(
        services.pending_query(community_ids(), grid_ids()),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "volunteers/queue.html",
        pagination=pagination,
        page_no=pagination.page,
        row_errors=row_errors or {},
        reasons=reasons or {},
    )


@bp.get("/queue")
@roles_required(*DECIDERS)
def queue():
    return _queue_page()


@bp.get("/queue/count")
@roles_required(*DECIDERS)
def pending_count():
    if not wants_fragment():
        return redirect(url_for("volunteers.queue"), code=303)
    count = services.count_pending(community_ids(), grid_ids())
    return render("volunteers/queue.html", "volunteers/_pending_count.html", pending=count)


def _decidable(volunteer_id: int) -> Volunteer:
    volunteer = get_scoped_or_404(Volunteer, volunteer_id)
    require_grid(volunteer.grid_id)
    return volunteer


def _answer(volunteer: Volunteer, outcome: str, category: str, *, won: bool):
    """The updated row for htmx, or a flash message and the queue (Post/Redirect/Get)."""
    if wants_fragment():
        return render(
            "volunteers/queue.html",
            "volunteers/_queue_row.html",
            trigger=DECIDED_EVENT if won else None,
            volunteer=services.load_with_details(volunteer.id),
            outcome=outcome,
            outcome_kind=category,
            page_no=_page(),
        )
    flash(_("%(name)s: %(outcome)s", name=volunteer.person.name, outcome=outcome), category)
    page = _page()
    return redirect(url_for("volunteers.queue", page=page if page > 1 else None), code=303)


@bp.post("/<int:volunteer_id>/approve")
@roles_required(*DECIDERS)
def approve(volunteer_id: int):
    volunteer = _decidable(volunteer_id)
    try:
        decision = services.approve_volunteer(volunteer, current_user)
    except DomainError as error:
        db.session.commit()  # the refusal's audit row (nothing else was written)
        return _answer(volunteer, error.errors["_"], "error", won=False)
    db.session.commit()
    if not decision.won:
        return _answer(volunteer, _decided_message(volunteer), "warning", won=False)
    if decision.armband_no:
        outcome = _("Approved — armband No. %(no)s", no=decision.armband_no)
    else:
        outcome = _("Approved")
    return _answer(volunteer, outcome, "success", won=True)


@bp.post("/<int:volunteer_id>/reject")
@roles_required(*DECIDERS)
def reject(volunteer_id: int):
    volunteer = _decidable(volunteer_id)
    form = RejectForm()
    try:
        if not form.validate_on_submit():
            raise DomainError({"reason": form.reason.errors[0]})
        decision = services.reject_volunteer(volunteer, current_user, form.reason.data)
    except DomainError as error:
        if "reason" not in error.errors:
            db.session.commit()  # the refusal's audit row (nothing else was written)
            return _answer(volunteer, error.errors["_"], "error", won=False)
        message, typed = error.errors["reason"], form.reason.data or ""
        if wants_fragment():
            # Status 200 so that htmx swaps the row with its message in.
            return render(
                "volunteers/queue.html",
                "volunteers/_queue_row.html",
                volunteer=services.load_with_details(volunteer.id),
                error=message,
                reason=typed,
                page_no=_page(),
            )
        return _queue_page({volunteer.id: message}, {volunteer.id: typed})
    db.session.commit()
    if not decision.won:
        return _answer(volunteer, _decided_message(volunteer), "warning", won=False)
    outcome = _("Rejected: %(reason)s", reason=volunteer.rejection_reason)
    return _answer(volunteer, outcome, "success", won=True)


def _decided_message(volunteer: Volunteer) -> str:
    return _(
        "Already decided (%(status)s); nothing was changed.",
        status=label("volunteer_status", volunteer.status),
    )


# --- the roster, one volunteer, and the export ---------------------------------------------


def _roster_filters() -> tuple[RosterFilterForm, services.RosterFilters]:
    form = RosterFilterForm(formdata=request.args)
    filters = services.RosterFilters.clean(
        form.q.data, form.community.data, form.type.data, form.grid.data, form.status.data
    )
    return form, filters


def _masked() -> bool:
    return current_user.role == "subdistrict_admin"


@bp.get("/")
@roles_required(*STAFF)
@cached_page()
def roster():
    form, filters = _roster_filters()
    filters = dataclasses.replace(filters, partial_phone=not _masked())
    ids = community_ids()
    if _masked():
        communities = db.session.scalars(
            select(Community).where(Community.id.in_(ids)).order_by(Community.name)
        ).all()
        form.community.choices = options(
            [("", _("All communities"))] + [(c.id, c.name) for c in communities]
        )
    # One list of grids for every community filter: the form is not re-rendered by htmx.
    form.grid.choices = options(
        [("", _("All grids"))]
        + [
            (g.id, f"{g.community.name} · {g.name}" if len(ids) > 1 else g.name)
            for g in services.community_grids(ids, grid_ids())
        ]
    )
    pagination = db.paginate(
        services.roster_query(filters, ids, grid_ids()),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "volunteers/roster.html",
        "volunteers/_roster_results.html",
        form=form,
        filters=filters,
        pagination=pagination,
        masked=_masked(),
    )


def _volunteer_or_404(volunteer_id: int) -> Volunteer:
    volunteer = get_scoped_or_404(Volunteer, volunteer_id)
    require_grid(volunteer.grid_id)
    return volunteer


@bp.get("/<int:volunteer_id>")
@roles_required(*STAFF)
def detail(volunteer_id: int):
    volunteer = _volunteer_or_404(volunteer_id)
    return render(
        "volunteers/detail.html",
        volunteer=volunteer,
        person=volunteer.person,
        may_reveal=not _masked(),
    )


@bp.post("/<int:volunteer_id>/phone")
@roles_required("secretary", "grid_worker")
def reveal_phone(volunteer_id: int):
    """The volunteer's full phone for the community's staff who call volunteers (a grid worker:
    volunteers of their grids), with an audit row; pages show only the masked number."""
    volunteer = _volunteer_or_404(volunteer_id)
    phone = privacy.reveal_phone(volunteer.person)
    db.session.commit()
    return render(
        "volunteers/detail.html",
        "people/_phone.html",
        volunteer=volunteer,
        person=volunteer.person,
        revealed=phone,
        may_reveal=True,
        reveal_url=url_for("volunteers.reveal_phone", volunteer_id=volunteer.id),
    )


def _export_header() -> list[str]:
    return [
        _("Name"),
        _("Phone"),
        _("Community"),
        _("Grid"),
        _("Types"),
        _("Status"),
        _("Armband No."),
        _("Employer"),
        _("Party branch"),
        _("Reported on"),
        _("Five elders"),
        _("Skills"),
        _("Usually available"),
        _("Applied at"),
    ]


class _ExportLabels:
    """Every label translated once per export, not once per row (60,000 rows add up)."""

    def __init__(self) -> None:
        self.types = {code: label("volunteer_type", code) for code in VOLUNTEER_TYPES}
        self.statuses = {code: label("volunteer_status", code) for code in STATUSES}
        self.kinds = {code: label("five_elder_kind", code) for code in FIVE_ELDER_KINDS}
        self.availability = {code: str(text) for code, text in AVAILABILITY.items()}
        self.timezone = get_timezone()


def _export_values(row: services.ExportRow, labels: _ExportLabels, masked: bool) -> tuple:
    chosen = row.availability.split(",")
    return (
        row.name,
        mask_phone(row.phone) if masked else row.phone,
        row.community,
        row.grid,
        "、".join(labels.types[t] for t in row.types),
        labels.statuses.get(row.status, row.status),
        row.armband_no,
        row.employer,
        row.party_branch,
        row.party_reported_on.isoformat() if row.party_reported_on else "",
        labels.kinds.get(row.five_elder_kind, "") if row.five_elder_kind else "",
        row.skills,
        "、".join(text for code, text in labels.availability.items() if code in chosen),
        row.applied_at.astimezone(labels.timezone).strftime("%Y-%m-%d %H:%M"),
    )


@bp.get("/export.csv")
@roles_required(*STAFF)
def export():
    _form, filters = _roster_filters()
    filters = dataclasses.replace(filters, partial_phone=not _masked())
    ids, grids, masked = community_ids(), grid_ids(), _masked()
    filename = f"volunteers-{local_today().isoformat()}.csv"
    audit_name = filename if masked else f"{filename} (full phones)"
    rows = audited(audit_name, services.export_rows(filters, ids, grids))

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([csv_cell(title) for title in _export_header()])
        yield "\ufeff" + buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        labels = _ExportLabels()
        with closing(rows):  # a cancelled download is audited while the request is there
            for row in rows:
                writer.writerow(csv_cell(value) for value in _export_values(row, labels, masked))
                if buffer.tell() > 32_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
