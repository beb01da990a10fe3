"""Shifts for volunteers: the list and the week, one shift, signing up and cancelling, one's own
shifts, and the iCalendar feeds."""

from __future__ import annotations

from datetime import date, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, DateField, SelectField
from wtforms.validators import Optional

from portal.access import community_ids, get_scoped_or_404, grid_ids, require_grid, roles_required
from portal.core.errors import DomainError
from portal.core.forms import PortalForm
from portal.core.labels import label
from portal.core.pagecache import cached_page
from portal.core.timeutil import local_today, now_utc
from portal.core.urls import external_url
from portal.database import commit_keeping_loaded
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.patrols import calendar, signups
from portal.patrols.models import Shift
from portal.people.models import Person
from portal.security import is_safe_next
from portal.volunteers.forms import choices, optional_int, options
from portal.volunteers.services import community_grids

bp = Blueprint("shifts", __name__)

SIGNERS = ("resident", "volunteer", "grid_worker", "secretary")
STAFF = ("grid_worker", "secretary", "subdistrict_admin")
SCHEDULERS = ("grid_worker", "secretary")
CHANGED_EVENT = "signup-changed"


class ShiftFilterForm(PortalForm):
    class Meta:
        csrf = False  # a GET search form

    grid = SelectField(_l("Grid"), coerce=optional_int, validate_choice=False)
    kind = SelectField(_l("Kind"), choices=choices("shift_kind", blank=_l("All kinds")))
    date = DateField(_l("From"), validators=[Optional()])
    open = BooleanField(_l("Open to me"))


MAX_PAGE = 100_000  # beyond any real list; keeps OFFSET inside a database integer


def _page(name: str = "page") -> int:
    return min(max(request.args.get(name, 1, type=int) or 1, 1), MAX_PAGE)


def _person() -> Person | None:
    """The viewer as a possible volunteer; a subdistrict admin only looks."""
    if current_user.role == "subdistrict_admin":
        return None
    return current_user.person


def _visible(shift_id: int) -> Shift:
    if shift_id >= 2**63:  # SQLite cannot even compare such an id: it exists nowhere
        abort(404)
    shift = get_scoped_or_404(Shift, shift_id, options=[joinedload(Shift.grid)])
    require_grid(shift.grid_id)
    return shift


def _monday(value: str | None) -> date:
    """The Monday of the week holding ``value`` (this week for nonsense or a far-off year)."""
    try:
        day = date.fromisoformat(value) if value else local_today()
    except ValueError:
        day = local_today()
    if not 2000 <= day.year <= 2100:
        day = local_today()
    return day - timedelta(days=day.weekday())


# --- the list and the week ------------------------------------------------------------------


@bp.get("/shifts")
@login_required
@cached_page()
def index():
    form = ShiftFilterForm(formdata=request.args)
    filters = signups.ShiftFilters.clean(
        form.grid.data, form.kind.data, form.date.data, form.open.data
    )
    ids, grids = community_ids(), grid_ids()
    multi = len(ids) > 1
    form.grid.choices = options(
        [("", _("All grids"))]
        + [
            (g.id, f"{g.community.name} · {g.name}" if multi else g.name)
            for g in community_grids(ids, grids)
        ]
    )
    person = _person()
    person_id = person.id if person is not None else None
    now = now_utc()
    context = {
        "form": form,
        "filters": filters,
        "multi": multi,
        # "Open to me" finds nothing for someone who may not sign up: say why.
        "eligible": not filters.open or signups.eligibility(person_id) is not None,
    }
    if request.args.get("view") == "week":
        monday = _monday(request.args.get("week"))
        days, cut_short = signups.week_shifts(monday, filters, ids, grids, person_id, now)
        shown = [s.id for day in days.values() for s in day]
        return render(
            "shifts/index.html",
            "shifts/_week.html",
            view="week",
            monday=monday,
            prev_week=monday - timedelta(days=7),
            next_week=monday + timedelta(days=7),
            days=days,
            today=local_today(),
            cut_short=cut_short,
            mine=signups.own_statuses(person_id, shown),
            **context,
        )
    pagination = db.paginate(
        signups.upcoming_query(filters, ids, grids, person_id, now),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "shifts/index.html",
        "shifts/_results.html",
        view="list",
        pagination=pagination,
        mine=signups.own_statuses(person_id, [s.id for s in pagination.items]),
        **context,
    )


# --- one shift --------------------------------------------------------------------------------


@bp.get("/shifts/<int:shift_id>")
@login_required
@cached_page()
def detail(shift_id: int):
    shift = _visible(shift_id)
    context = detail_context(shift)
    care = None
    if shift.help_task_id is not None:  # a household help visit: its panel (portal.care)
        from portal.care.views import visit_context

        care = visit_context(shift, context["confirmed"])
    return render("shifts/detail.html", **context, care=care)


def detail_context(shift: Shift) -> dict:
    """What the shift page shows, for the signed-in user."""
    person = _person()
    is_leader = person is not None and shift.leader_id == person.id
    confirmed, waitlisted = signups.going(shift.id)
    state = signups.signup_state(shift, person, read_only=current_user.role == "subdistrict_admin")
    return dict(
        shift=shift,
        stops=signups.route_stops(shift),
        types=[label("volunteer_type", t) for t in shift.types],
        confirmed=confirmed,
        waitlisted=waitlisted,
        full_names=current_user.role in STAFF or is_leader,
        me=person.id if person is not None else None,
        state=state,
        can_edit=current_user.role in SCHEDULERS and shift.help_task_id is None,
        can_lead=current_user.role in SCHEDULERS or is_leader,
    )


def _back() -> str | None:
    target = request.form.get("next")
    return target if is_safe_next(target) else None


def _answer(shift: Shift, message: str, category: str, *, changed: bool, state=None):
    """The updated sign-up area for htmx; otherwise a flash and back (Post/Redirect/Get).
    ``state``: the area as the write left it, worked out before its commit."""
    if wants_fragment():
        return render(
            "shifts/detail.html",
            "shifts/_signup.html",
            trigger=CHANGED_EVENT if changed else None,
            state=state or signups.signup_state(shift, _person()),
            message=message,
            message_kind=category,
            back=_back(),
        )
    flash(message, category)
    return redirect(_back() or url_for("shifts.detail", shift_id=shift.id), code=303)


def _state_before_commit(
    shift: Shift, person, known, waiting: int | None = None
) -> signups.SignupState | None:
    """The sign-up area for the htmx answer, read in the write's own transaction (the shift's
    places came back with its UPDATE): after the commit nothing is read again."""
    if not wants_fragment():
        return None
    return signups.signup_state(shift, person, known=known, waiting=waiting)


@bp.post("/shifts/<int:shift_id>/signup")
@roles_required(*SIGNERS)
def signup(shift_id: int):
    shift = _visible(shift_id)
    try:
        person = current_user.person
        if person is None:
            raise DomainError({"_": _("Only approved volunteers of this community can sign up.")})
        # The shift was read in this transaction (on SQLite under the write lock it began with).
        outcome = signups.sign_up(shift, person, read_under_lock=True)
    except DomainError as error:
        db.session.rollback()
        return _answer(shift, error.errors["_"], "error", changed=False)
    state = _state_before_commit(
        shift, person, (outcome.signup_id, outcome.status, outcome.position), outcome.waiting
    )
    commit_keeping_loaded()
    if outcome.status == "confirmed":
        message = _("You have a place on this shift. Thank you!")
    else:
        message = _(
            "The shift is full: you are number %(position)d on the waitlist. "
            "We will tell you if a place frees up.",
            position=outcome.position or 1,
        )
    return _answer(shift, message, "success", changed=True, state=state)


@bp.post("/shifts/<int:shift_id>/cancel")
@roles_required(*SIGNERS)
def cancel(shift_id: int):
    shift = _visible(shift_id)
    try:
        person = current_user.person
        if person is None:
            raise DomainError({"_": _("You have no place or waitlist entry on this shift.")})
        outcome = signups.cancel_signup(shift, person)
    except DomainError as error:
        db.session.rollback()
        return _answer(shift, error.errors["_"], "error", changed=False)
    state = _state_before_commit(shift, person, (outcome.signup_id, "cancelled", None))
    commit_keeping_loaded()
    if outcome.previous == "confirmed":
        message = _("Your place was given back.")
    else:
        message = _("You left the waitlist.")
    return _answer(shift, message, "success", changed=True, state=state)


# --- my shifts ------------------------------------------------------------------------------


def _begin_write() -> None:
    # A GET starts with a plain BEGIN; a write there must take SQLite's lock up front instead.
    if db.engine.dialect.name == "sqlite":
        db.session.connection(execution_options={"sqlite_immediate": True})


def _calendar_token() -> str:
    """The viewer's feed token, made on the first visit."""
    token = current_user.calendar_token
    if token:
        return token
    user_id = current_user.id
    db.session.commit()  # end the read transaction so that the write can begin with the lock
    _begin_write()
    token = calendar.ensure_calendar_token(user_id)
    db.session.commit()
    return token


@bp.get("/my/shifts")
@login_required
def mine():
    person = _person()
    if person is None:
        abort(403)
    feed_url = external_url("shifts.calendar_feed", token=_calendar_token())
    person_id = current_user.person_id
    now = now_utc()
    per_page = current_app.config["PAGE_SIZE"]
    upcoming = db.paginate(
        signups.my_upcoming_query(person_id, now), page=_page(), per_page=per_page, error_out=False
    )
    past = db.paginate(
        signups.my_past_query(person_id, now),
        page=_page("past"),
        per_page=per_page,
        error_out=False,
    )
    return render(
        "shifts/mine.html",
        upcoming=upcoming,
        past=past,
        states=signups.held_states(upcoming.items, now),
        feed_url=feed_url,
        webcal_url="webcal://" + feed_url.split("://", 1)[1],
    )


@bp.post("/my/calendar/reset")
@login_required
def calendar_reset():
    if _person() is None:
        abort(403)
    calendar.reset_calendar_token(current_user.id)
    db.session.commit()
    flash(
        _(
            "Your calendar has a new address. The old one no longer works: "
            "subscribe again with the new one."
        ),
        "success",
    )
    return redirect(url_for("shifts.mine") + "#calendar", code=303)


# --- iCalendar ------------------------------------------------------------------------------


def _ics(body: bytes) -> Response:
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/calendar/<token>.ics")
def calendar_feed(token: str):
    """Public but secret: whoever has the address reads the holder's shifts (no sign-in)."""
    user = calendar.user_by_token(token)
    if user is None or user.person_id is None:
        abort(404)
    body = calendar.build_calendar(calendar.feed_shifts(user), name=_("Tongxin: my shifts"))
    response = _ics(body)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/shifts/<int:shift_id>.ics")
@login_required
def ics(shift_id: int):
    shift = _visible(shift_id)
    response = _ics(calendar.build_calendar([shift], name=shift.title, method="PUBLISH"))
    response.headers["Content-Disposition"] = f'attachment; filename="shift-{shift.id}.ics"'
    return response
