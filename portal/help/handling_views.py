"""Handling requests: the grid worker's queue, dispatching, the volunteers' help board, the
actions of the loop (one POST endpoint for all) and the figures."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_sqlalchemy.pagination import SelectPagination
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import joinedload

from portal.access import community_ids, grid_ids, roles_required
from portal.core.errors import DomainError
from portal.core.pagecache import cached_page
from portal.core.photos import accepts_photos, uploaded_photo
from portal.core.timeutil import now_utc
from portal.database import commit_keeping_loaded, plan_joins_as_written
from portal.extensions import db
from portal.help import figures as figures_service
from portal.help.access import get_request_or_404
from portal.help.actions import ACTIONS, UNITS, perform
from portal.help.models import OPEN_STATUSES, Category, HelpRequest
from portal.help.workflow import TransitionRefused
from portal.htmx import render, wants_fragment
from portal.places.models import Grid, Household
from portal.volunteers.models import Volunteer

bp = Blueprint("handling", __name__)

HANDLERS = ("secretary", "grid_worker")
VIEWERS = ("secretary", "grid_worker", "subdistrict_admin")
CHANGED = "request-changed"
CLAIMED = "request-claimed"
BOARD_LIMIT = 50  # "my requests to do": a volunteer holds a handful at most
CANDIDATES = 20

STATUS_LABELS = {
    "submitted": _l("Submitted"),
    "accepted": _l("Accepted"),
    "dispatched": _l("Dispatched"),
    "done": _l("Done"),
    "verified": _l("Verified"),
    "rated": _l("Rated"),
    "rejected": _l("Rejected"),
    "cancelled": _l("Cancelled"),
}
UNIT_LABELS = {
    "property_company": _l("Property company"),
    "community_office": _l("Community office"),
    "grid_worker": _l("Grid worker"),
}
URGENCY_LABELS = {"normal": _l("Normal"), "urgent": _l("Urgent")}
DONE_MESSAGES = {
    "accept": _l("Request no. %(number)d accepted."),
    "reject": _l("Request no. %(number)d rejected."),
    "dispatch": _l("Request no. %(number)d dispatched."),
    "claim": _l("You took request no. %(number)d. Thank you!"),
    "release": _l("You gave request no. %(number)d back."),
    "complete": _l("Request no. %(number)d marked done. Thank you!"),
    "verify": _l("Request no. %(number)d verified."),
    "confirm": _l("Request no. %(number)d confirmed."),
    "reopen": _l("Request no. %(number)d reopened."),
    "rate": _l("Thank you for rating request no. %(number)d."),
    "cancel": _l("Request no. %(number)d cancelled."),
    "comment": _l("Your comment on request no. %(number)d was added."),
}


def category_name(category: Category | None) -> str:
    """The category's name in the reader's language (a Category, or a row with its two names)."""
    if category is None:
        return ""
    locale = get_locale()
    return category.name_en if locale is not None and locale.language == "en" else category.name_zh


@bp.record_once
def _labels(state) -> None:  # noqa: ANN001
    # Template globals, not a context processor: handling/macros.html is then imported
    # without context, so Jinja builds its module once instead of once per queue row.
    state.app.jinja_env.globals.update(
        status_labels=STATUS_LABELS,
        unit_labels=UNIT_LABELS,
        urgency_labels=URGENCY_LABELS,
        category_name=category_name,
    )


def _page(name: str = "page") -> int:
    return max(request.values.get(name, 1, type=int) or 1, 1)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 18 else None


def _where_options():
    """Load what a row shows about the place, in the same query."""
    return (
        joinedload(HelpRequest.category),
        joinedload(HelpRequest.grid),
        joinedload(HelpRequest.requester),
        joinedload(HelpRequest.volunteer),
        joinedload(HelpRequest.building),
        joinedload(HelpRequest.household).joinedload(Household.building),
    )


# --- the queue ------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    status: str | None = None
    category_id: int | None = None
    grid_id: int | None = None

    @classmethod
    def from_args(cls) -> QueueFilters:
        status = request.args.get("status") or None
        return cls(
            status=status if status in OPEN_STATUSES else None,
            category_id=_int_arg("category"),
            grid_id=_int_arg("grid"),
        )

    def args(self) -> dict:
        return {
            k: v
            for k, v in {
                "status": self.status,
                "category": self.category_id,
                "grid": self.grid_id,
            }.items()
            if v
        }


def queue_query(filters: QueueFilters, now) -> Select:
    """Open requests the signed-in staff member sees, overdue first, then by deadline: a narrow
    select of the ids and their sort keys (``overdue``, ``no_deadline``, ``due_at``), no joins."""
    overdue = case((HelpRequest.due_at < now, 0), else_=1)
    no_deadline = case((HelpRequest.due_at.is_(None), 1), else_=0)
    query = select(
        HelpRequest.id,
        overdue.label("overdue"),
        no_deadline.label("no_deadline"),
        HelpRequest.due_at,
    ).where(
        HelpRequest.community_id.in_(community_ids()),
        HelpRequest.status.in_(OPEN_STATUSES),
    )
    grids = grid_ids()
    if grids is not None:
        query = query.where(
            or_(HelpRequest.grid_id.in_(grids), HelpRequest.handler_user_id == current_user.id)
        )
    if filters.status:
        query = query.where(HelpRequest.status == filters.status)
    if filters.category_id:
        query = query.where(HelpRequest.category_id == filters.category_id)
    if filters.grid_id:
        query = query.where(HelpRequest.grid_id == filters.grid_id)
    return query.order_by(overdue, no_deadline, HelpRequest.due_at, HelpRequest.id)


class QueuePagination(SelectPagination):
    """``db.paginate`` of the queue, but ORDER BY/LIMIT run on the narrow select of ids alone;
    only the page's rows are then joined to what they show, in the same statement (a join of
    every open request to seven tables before the LIMIT grew with the community)."""

    def _query_items(self) -> list[HelpRequest]:
        page = self._query_args["select"].limit(self.per_page).offset(self._query_offset).subquery()
        rows = (
            select(HelpRequest)
            .select_from(page)
            .join(HelpRequest, HelpRequest.id == page.c.id)
            .options(*_where_options())
            .order_by(page.c.overdue, page.c.no_deadline, page.c.due_at, page.c.id)
        )
        return list(self._query_args["session"].scalars(rows))

    def _query_count(self) -> int:
        narrow = self._query_args["select"].with_only_columns(HelpRequest.id).order_by(None)
        narrow = narrow.subquery()
        return self._query_args["session"].scalar(select(func.count()).select_from(narrow))


def _filter_choices() -> tuple[list, list]:
    """The filters' choices: (id, name_zh, name_en) of the minor categories and (id, name) of
    the grids in scope, as rows (what the two <select>s show, without building 70 ORM objects
    a page)."""
    categories = db.session.execute(
        select(Category.id, Category.name_zh, Category.name_en)
        .where(Category.community_id.in_(community_ids()), Category.parent_id.is_not(None))
        .order_by(Category.community_id, Category.position, Category.id)
    ).all()
    grid_query = select(Grid.id, Grid.name).where(Grid.community_id.in_(community_ids()))
    grids = grid_ids()
    if grids is not None:
        grid_query = grid_query.where(Grid.id.in_(grids))
    return list(categories), list(db.session.execute(grid_query.order_by(Grid.name, Grid.id)))


def _queue_page(errors: dict[int, dict[str, str]] | None = None, typed: dict | None = None):
    filters = QueueFilters.from_args()
    now = now_utc()
    plan_joins_as_written()
    pagination = QueuePagination(
        select=queue_query(filters, now),
        session=db.session(),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        max_per_page=None,
        error_out=False,
    )
    categories, grids = _filter_choices()
    return render(
        "handling/queue.html",
        pagination=pagination,
        filters=filters,
        categories=categories,
        grids=grids,
        statuses=OPEN_STATUSES,
        can_act=current_user.role in HANDLERS,
        errors=errors or {},
        typed=typed or {},
        now=now,
    )


@bp.get("/handling")
@roles_required(*VIEWERS)
@cached_page()
def queue():
    return _queue_page()


# --- one endpoint for every action ----------------------------------------------------------

VIEWS = ("queue", "board", "mine", "detail")


def _view() -> str:
    view = request.form.get("view", "")
    if view in VIEWS:
        return view
    return "queue" if current_user.role in HANDLERS else "detail"


def _back(view: str, req: HelpRequest) -> str:
    if view == "queue":
        page = _page()
        return url_for("handling.queue", page=page if page > 1 else None)
    if view in ("board", "mine"):
        return url_for("handling.board")
    return url_for("help.detail", request_id=req.id)


def _fragment(view: str, req: HelpRequest, *, message: str = "", kind: str = "success",
              errors: dict[str, str] | None = None, trigger: str | None = None):  # fmt: skip
    """The updated piece of the page that the action came from."""
    if view == "queue":
        page, fragment = "handling/queue.html", "handling/_row.html"
    elif view == "board":
        page, fragment = "handling/board.html", "handling/_board_item.html"
    else:
        page, fragment = "handling/board.html", "handling/_mine_item.html"
    return render(
        page,
        fragment,
        trigger=trigger,
        r=_reload(req.id),
        message=message,
        message_kind=kind,
        row_errors=errors or {},
        typed=request.form,
        can_act=current_user.role in HANDLERS,
        page_no=_page(),
        now=now_utc(),
    )


def _reload(request_id: int) -> HelpRequest:
    plan_joins_as_written()
    return db.session.scalars(
        select(HelpRequest).options(*_where_options()).where(HelpRequest.id == request_id)
    ).one()


def _claim_lost(view: str, req: HelpRequest):
    message = _("Someone else took it already. Thank you all the same!")
    if wants_fragment() and view in ("board", "mine"):
        return _fragment("board", req, message=message, kind="warning")
    return render("errors/error.html", status=409, title=_("Someone else took it"), message=message)


@bp.post("/handling/<int:request_id>/<action>")
@login_required
@accepts_photos("photo")
def act(request_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    req = get_request_or_404(request_id)
    view = _view()
    try:
        perform(req, action, current_user, request.form, photo=uploaded_photo("photo"))
    except TransitionRefused:
        db.session.rollback()
        if action == "claim":
            return _claim_lost(view, req)
        abort(409)
    except DomainError as error:
        db.session.rollback()
        return _refused_input(view, req, error)
    # The request was read back after its conditional UPDATE; the viewer is unchanged.
    commit_keeping_loaded()
    message = str(DONE_MESSAGES[action]) % {"number": req.id}
    if wants_fragment() and view != "detail":
        trigger = f"{CHANGED}, {CLAIMED}" if action == "claim" else CHANGED
        return _fragment(view, req, message=message, trigger=trigger)
    flash(message, "success")
    return redirect(_back(view, req), code=303)


def _refused_input(view: str, req: HelpRequest, error: DomainError):
    """Show what was wrong where the user typed it (status 200, so htmx swaps it in)."""
    if wants_fragment() and view != "detail":
        return _fragment(view, req, errors=error.errors)
    if view == "queue":
        return _queue_page({req.id: error.errors}, {req.id: request.form})
    if view in ("board", "mine"):
        return _board_page({req.id: error.errors})
    for message in error.errors.values():
        flash(message, "error")
    return redirect(_back(view, req), code=303)


# --- dispatching ----------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]{3,}")
_STOP = {"and", "the", "for", "with", "other"}


def match_terms(category: Category) -> set[str]:
    """Words of the category that a volunteer's skills may mention: its code's parts, its
    English words and the two-character pieces of its Chinese name."""
    terms = {part.lower() for part in re.split(r"[._\-]", category.code) if len(part) >= 3}
    terms |= {w.lower() for w in _WORD.findall(category.name_en)} - _STOP
    zh = category.name_zh.strip()
    terms |= {zh[i : i + 2] for i in range(len(zh) - 1)} if len(zh) >= 2 else {zh}
    return {t for t in terms if t}


@dataclass
class Candidate:
    volunteer: Volunteer
    score: int
    same_grid: bool
    load: int


def dispatch_candidates(req: HelpRequest, limit: int = CANDIDATES) -> list[Candidate]:
    """Approved volunteers of the request's community, best first: matching skills, same grid,
    then the fewest requests already held (two queries whatever the number of volunteers)."""
    load = (
        select(HelpRequest.volunteer_id.label("person_id"), func.count().label("n"))
        .where(HelpRequest.community_id == req.community_id, HelpRequest.status == "dispatched")
        .group_by(HelpRequest.volunteer_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Volunteer, func.coalesce(load.c.n, 0))
        .options(joinedload(Volunteer.person), joinedload(Volunteer.grid))
        .outerjoin(load, load.c.person_id == Volunteer.person_id)
        .where(Volunteer.community_id == req.community_id, Volunteer.status == "approved")
    ).all()
    terms = match_terms(req.category)
    candidates = []
    for volunteer, n in rows:
        skills = (volunteer.skills or "").lower()
        score = sum(1 for term in terms if term in skills)
        same = req.grid_id is not None and volunteer.grid_id == req.grid_id
        candidates.append(Candidate(volunteer, score, same, int(n)))
    candidates.sort(
        key=lambda c: (-c.score, not c.same_grid, c.load, c.volunteer.person.name, c.volunteer.id)
    )
    return candidates[:limit]


def _dispatchable(request_id: int) -> HelpRequest:
    req = get_request_or_404(request_id)
    if current_user.role == "grid_worker" and req.grid_id not in (grid_ids() or []):
        abort(404)
    return req


@bp.route("/requests/<int:request_id>/dispatch", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def dispatch(request_id: int):
    req = _dispatchable(request_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            perform(req, "dispatch", current_user, request.form)
        except TransitionRefused:
            db.session.rollback()
            abort(409)
        except DomainError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            flash(str(DONE_MESSAGES["dispatch"]) % {"number": req.id}, "success")
            return redirect(url_for("handling.queue"), code=303)
    return render(
        "handling/dispatch.html",
        r=_reload(req.id),
        candidates=dispatch_candidates(req),
        units=UNITS,
        errors=errors,
        typed=request.form,
        now=now_utc(),
    )


# --- the help board -------------------------------------------------------------------------


def _board_volunteer() -> Volunteer:
    """The signed-in user's approved volunteer registration; 403 for anyone else."""
    if not current_user.is_authenticated or current_user.person_id is None:
        abort(403)
    volunteer = db.session.scalar(
        select(Volunteer).where(
            Volunteer.person_id == current_user.person_id, Volunteer.status == "approved"
        )
    )
    if volunteer is None:
        abort(403)
    return volunteer


def board_query(volunteer: Volunteer) -> Select:
    """Open neighbour-help requests nobody holds, in the volunteer's grid."""
    return (
        select(HelpRequest)
        .join(Category, Category.id == HelpRequest.category_id)
        .options(*_where_options())
        .where(
            HelpRequest.community_id == volunteer.community_id,
            HelpRequest.grid_id == volunteer.grid_id,
            HelpRequest.grid_id.is_not(None),
            Category.kind == "neighbour_help",
            HelpRequest.status.in_(("submitted", "accepted")),
            HelpRequest.volunteer_id.is_(None),
        )
        .order_by(HelpRequest.urgency.desc(), HelpRequest.created_at, HelpRequest.id)
    )


def my_requests(volunteer: Volunteer) -> list[HelpRequest]:
    """Requests the volunteer holds and has still to do."""
    return list(
        db.session.scalars(
            select(HelpRequest)
            .options(*_where_options())
            .where(
                HelpRequest.community_id == volunteer.community_id,
                HelpRequest.volunteer_id == volunteer.person_id,
                HelpRequest.status == "dispatched",
            )
            .order_by(HelpRequest.due_at, HelpRequest.id)
            .limit(BOARD_LIMIT)
        )
    )


def _board_page(errors: dict[int, dict[str, str]] | None = None):
    volunteer = _board_volunteer()
    plan_joins_as_written()
    pagination = db.paginate(
        board_query(volunteer),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "handling/board.html",
        volunteer=volunteer,
        pagination=pagination,
        mine=my_requests(volunteer),
        errors=errors or {},
        now=now_utc(),
    )


@bp.get("/board")
@login_required
@cached_page()
def board():
    return _board_page()


@bp.get("/board/mine")
@login_required
def board_mine():
    volunteer = _board_volunteer()
    if not wants_fragment():
        return redirect(url_for("handling.board"), code=303)
    return render(
        "handling/board.html",
        "handling/_board_mine.html",
        mine=my_requests(volunteer),
        errors={},
        now=now_utc(),
    )


# --- figures --------------------------------------------------------------------------------


@bp.get("/handling/figures")
@roles_required(*VIEWERS)
def figures():
    days = figures_service.clamp_days(request.args.get("days"))
    results = figures_service.compute_figures(
        community_ids(), grid_ids(), days=days, no_grid_label=_("No grid")
    )
    return render(
        "handling/figures.html", results=results, days=days, limited=grid_ids() is not None
    )
