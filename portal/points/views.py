"""Points for everyone: my points (balance, hours, the monthly chart, the history), the consent to
appear on leaderboards, and the leaderboards per grid, community and subdistrict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.access import community_ids, grid_ids
from portal.core.pagecache import Scope, cached_page, user_scope
from portal.core.timeutil import local_today
from portal.core.validators import mask_name
from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.people.models import Person
from portal.places.models import Community, Grid, Subdistrict
from portal.points import ledger, queries
from portal.points.forms import (
    KIND_LABELS,
    PERIOD_LABELS,
    SCOPE_LABELS,
    HistoryFilterForm,
    LeaderboardForm,
    ListingForm,
)
from portal.trust import privacy
from portal.volunteers.forms import options
from portal.volunteers.models import VOLUNTEER_TYPES
from portal.volunteers.services import community_grids

bp = Blueprint("points", __name__, url_prefix="/points")

STAFF = ("grid_worker", "secretary", "subdistrict_admin")
LISTING_EVENT = "listing-changed"
MAX_ID = 2**63  # SQLite's driver cannot even bind a larger id: it exists nowhere


def _page() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), queries.MAX_PAGE)


def _own_person() -> Person:
    """The viewer's person record; staff without one have no points (404)."""
    person = current_user.person
    if person is None:
        abort(404)
    return person


# --- my points -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str
    points: int
    hours: Decimal
    activities: int
    month: date


CHART_HEIGHT = 120  # the tallest bar
CHART_TOP = 18  # room for the value above the tallest bar
CHART_BOTTOM = 22  # room for the month labels
BAR_STEP, BAR_WIDTH = 30, 22


def _chart(months: list[queries.MonthTotal]) -> dict:
    """Bar geometry for the server-drawn SVG: heights scale to the best month; a month whose
    corrections outweigh its earnings draws no bar but still states its number."""
    top = max((m.points for m in months), default=0)
    bars = []
    for i, month in enumerate(months):
        height = round(CHART_HEIGHT * month.points / top) if top > 0 and month.points > 0 else 0
        if month.points > 0:
            height = max(height, 2)  # a small month stays visible next to a big one
        bars.append(
            Bar(
                x=i * BAR_STEP + (BAR_STEP - BAR_WIDTH) // 2,
                y=CHART_TOP + CHART_HEIGHT - height,
                width=BAR_WIDTH,
                height=height,
                label=format_date(month.month, "MMM"),
                points=month.points,
                hours=month.hours,
                activities=month.activities,
                month=month.month,
            )
        )
    return {
        "bars": bars,
        "width": BAR_STEP * len(months),
        "height": CHART_TOP + CHART_HEIGHT + CHART_BOTTOM,
        "base": CHART_TOP + CHART_HEIGHT,
    }


def _history():
    form = HistoryFilterForm(formdata=request.args)
    filters = queries.HistoryFilters.clean(form.kind.data, form.date_from.data, form.date_to.data)
    pagination = db.paginate(
        queries.history_query(current_user.person_id, filters),
        page=_page(),
        per_page=queries.HISTORY_PAGE_SIZE,
        error_out=False,
    )
    return {
        "form": form,
        "filters": filters,
        "pagination": pagination,
        "reversed": ledger.reversed_ids(list(pagination.items)),
        "kind_labels": KIND_LABELS,
    }


@bp.get("")
@login_required
@cached_page()
def mine():
    person = _own_person()
    if wants_fragment():
        # The history's filters and pager swap only the history.
        return render("points/my.html", "points/_history.html", **_history())
    summary = queries.summary(person.id, local_today())
    return render(
        "points/my.html",
        summary=summary,
        chart=_chart(summary.months),
        listing=_listing_context(person, summary.listed),
        **_history(),
    )


def _listing_context(person: Person, listed: bool, message: str | None = None) -> dict:
    return {
        "form": ListingForm(formdata=None),
        "listed": listed,
        "masked": mask_name(person.name),
        "message": message,
    }


@bp.post("/listing")
@login_required
def listing():
    person = _own_person()
    form = ListingForm()  # CSRF is checked for every POST before the view runs
    account = queries.set_listed(person.id, bool(form.listed.data))
    listed = account.listed
    privacy.sync_leaderboard_consent(person, listed, recorded_by=current_user._get_current_object())
    db.session.commit()
    if listed:
        message = _("You are now shown on leaderboards, as %(name)s.", name=mask_name(person.name))
    else:
        message = _("You are no longer shown on leaderboards.")
    if wants_fragment():
        return render(
            "points/my.html",
            "points/_listing.html",
            trigger=LISTING_EVENT,
            listing=_listing_context(person, listed, message),
        )
    flash(message, "success")
    return redirect(url_for("points.mine") + "#listing", code=303)


# --- leaderboards ----------------------------------------------------------------------------


def _id_arg(name: str) -> int | None:
    """An id from the query string: nonsense means none, an impossible number is not found."""
    raw = request.args.get(name, "")
    try:
        value = int(raw) if raw else None
    except ValueError:
        return None
    if value is not None and not 0 < value < MAX_ID:
        abort(404)
    return value


def _own_grid_id(person: Person | None) -> int | None:
    volunteer = person.volunteer if person is not None else None
    if volunteer is None or volunteer.status != "approved":
        return None
    return volunteer.grid_id


@dataclass
class _Choices:
    """What the viewer may pick on the leaderboard, and the defaults."""

    grids: list[Grid]
    communities: list[Community]
    grid_id: int | None
    community_id: int | None
    subdistrict_id: int | None


def _choices(staff: bool, person: Person | None) -> _Choices:
    """Places the viewer may rank in; a grid or community id of elsewhere answers 404."""
    ids = community_ids()
    grid_arg, community_arg = _id_arg("grid"), _id_arg("community")
    if grid_arg is not None:
        grid = db.session.get(Grid, grid_arg)
        if grid is None or grid.community_id not in ids:
            abort(404)
    if community_arg is not None and community_arg not in ids:
        abort(404)
    if current_user.role == "subdistrict_admin":
        communities = list(
            db.session.scalars(
                select(Community).where(Community.id.in_(ids)).order_by(Community.name)
            )
        )
        community_id = community_arg or (communities[0].id if communities else None)
        subdistrict_id = current_user.subdistrict_id
    else:
        communities = []
        community_id = current_user.community_id
        community = db.session.get(Community, community_id)
        subdistrict_id = community.subdistrict_id if community is not None else None
    if staff:
        grids = community_grids(ids)
        own = grid_ids() or []
        grid_id = grid_arg or (own[0] if own else None) or (grids[0].id if grids else None)
    else:
        # A volunteer's grid board is their own grid's.
        grids, grid_id = [], _own_grid_id(person)
    return _Choices(grids, communities, grid_id, community_id, subdistrict_id)


def _place_name(board: queries.Board, choices: _Choices) -> str:
    if board.scope == "grid":
        grid = next((g for g in choices.grids if g.id == board.grid_id), None)
        grid = grid or db.session.get(Grid, board.grid_id)
        return grid.name if grid else ""
    if board.scope == "community":
        community = db.session.get(Community, board.community_id) if board.community_id else None
        return community.name if community else ""
    subdistrict = (
        db.session.get(Subdistrict, board.subdistrict_id) if board.subdistrict_id else None
    )
    return subdistrict.name if subdistrict else ""


def _period_name(board: queries.Board) -> str:
    if board.period == "all":
        return str(PERIOD_LABELS["all"])
    return board.key


def community_board_scope() -> Scope:
    """A subdistrict's board spans communities: not cached (one community's stamp would not
    see its changes). Grid and community boards are the user's community."""
    if request.args.get("scope") == "subdistrict":
        return None
    return user_scope()


@bp.get("/leaderboard")
@login_required
@cached_page(community_board_scope)
def leaderboard():
    staff = current_user.role in STAFF
    person = current_user.person
    choices = _choices(staff, person)
    scope = request.args.get("scope")
    if scope not in queries.SCOPES:
        volunteer_grid = current_user.role == "volunteer" and choices.grid_id is not None
        scope = "grid" if volunteer_grid else "community"
    note = None
    if scope == "grid" and choices.grid_id is None:
        scope = "community"
        note = _("You serve in no grid, so your community's board is shown.")
    period = request.args.get("period")
    if period not in queries.PERIODS:
        period = "month"
    volunteer_type = request.args.get("type")
    if volunteer_type not in VOLUNTEER_TYPES:
        volunteer_type = None
    board = queries.Board(
        scope=scope,
        period=period,
        key=queries.period_key(period, local_today()),
        type=volunteer_type,
        grid_id=choices.grid_id,
        community_id=choices.community_id,
        subdistrict_id=choices.subdistrict_id,
    )
    args = {"scope": scope, "period": period}
    if volunteer_type:
        args["type"] = volunteer_type
    if staff and scope == "grid":
        args["grid"] = choices.grid_id
    if choices.communities and scope == "community":
        args["community"] = choices.community_id
    form = LeaderboardForm(
        formdata=None,
        data={
            "scope": scope,
            "period": period,
            "type": volunteer_type or "",
            "grid": choices.grid_id,
            "community": choices.community_id,
        },
    )
    multi = len({g.community_id for g in choices.grids}) > 1
    form.grid.choices = options(
        (g.id, f"{g.community.name} · {g.name}" if multi else g.name) for g in choices.grids
    )
    form.community.choices = options((c.id, c.name) for c in choices.communities)
    ranking = queries.board_page(board, _page())
    return render(
        "points/leaderboard.html",
        "points/_board.html",
        form=form,
        board=board,
        ranking=ranking,
        args=args,
        note=note,
        place=queries.my_place(board, person.id) if person is not None else None,
        me=person.id if person is not None else None,
        place_name=_place_name(board, choices),
        period_name=_period_name(board),
        scope_label=SCOPE_LABELS[scope],
        show_grids=staff,
        show_communities=bool(choices.communities),
    )
