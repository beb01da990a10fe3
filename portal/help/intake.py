"""Requests from residents: submitting one (with photos), routing it to whoever handles its grid,
the lists and lookups of the request pages, and the labels those pages show."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.photos import PreparedPhoto, chosen, delete_photo, store_photo
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import (
    OPEN_STATUSES,
    URGENCIES,
    Category,
    HelpRequest,
    RequestEvent,
    RequestPhoto,
)
from portal.people.models import Person
from portal.places.models import Building, Grid, Household, grid_worker

DESCRIPTION_MAX = 4000
ADDRESS_MAX = 200
PREFERRED_TIME_MAX = 100
MAX_PHOTOS = 3
WHERE_CHOICES = ("household", "building", "address")
# The loop as the request page draws it: 下 接 派 验 评 (with "done" between 派 and 验).
STEPS = ("submitted", "accepted", "dispatched", "done", "verified", "rated")

LABELS = {
    "status": {
        "submitted": _l("Submitted"),
        "accepted": _l("Accepted"),
        "dispatched": _l("Dispatched"),
        "done": _l("Done"),
        "verified": _l("Verified"),
        "rated": _l("Rated"),
        "rejected": _l("Rejected"),
        "cancelled": _l("Cancelled"),
    },
    "urgency": {"normal": _l("Normal"), "urgent": _l("Urgent")},
    "where": {
        "household": _l("My household"),
        "building": _l("A building of the community"),
        "address": _l("Another address"),
    },
    "unit": {
        "property_company": _l("the property company"),
        "community_office": _l("the community office"),
        "grid_worker": _l("the grid worker"),
    },
    "action": {
        "submit": _l("submitted the request"),
        "route": _l("routed it"),
        "accept": _l("accepted it"),
        "reject": _l("rejected it"),
        "dispatch": _l("dispatched it"),
        "claim": _l("took it from the help board"),
        "release": _l("gave it back"),
        "complete": _l("marked it done"),
        "verify": _l("verified the result"),
        "confirm": _l("confirmed the result"),
        "reopen": _l("reopened it"),
        "rate": _l("rated it"),
        "cancel": _l("cancelled it"),
        "comment": _l("commented"),
        "escalate": _l("escalated it"),
    },
    "button": {
        "accept": _l("Accept"),
        "reject": _l("Reject"),
        "dispatch": _l("Dispatch"),
        "claim": _l("I will help"),
        "release": _l("Give it back"),
        "complete": _l("Mark as done"),
        "verify": _l("Verify the result"),
        "confirm": _l("Confirm the result"),
        "reopen": _l("Not solved: reopen"),
        "rate": _l("Send the rating"),
        "cancel": _l("Cancel the request"),
        "comment": _l("Add the comment"),
    },
}


def help_label(value: str | None, group: str) -> str:
    """The translated label of a request code (status, urgency, where, action, button)."""
    if value is None:
        return ""
    return str(LABELS[group].get(value, value))


def category_name(category: Category | None) -> str:
    """The category's name in the page's language (English only when the UI is English)."""
    if category is None:
        return ""
    locale = get_locale()
    return category.name_en if locale is not None and locale.language == "en" else category.name_zh


def is_overdue(req: HelpRequest, now: datetime | None = None) -> bool:
    return bool(req.due_at and req.status in OPEN_STATUSES and req.due_at < (now or now_utc()))


# --- the catalogue as the form offers it ------------------------------------------------------


def major_categories(community_id: int) -> list[Category]:
    return list(
        db.session.scalars(
            select(Category)
            .where(
                Category.community_id == community_id,
                Category.parent_id.is_(None),
                Category.active.is_(True),
            )
            .order_by(Category.position, Category.id)
        )
    )


def minor_categories(community_id: int, major_id: int | None = None) -> list[Category]:
    """Active minor categories (of one major, or all), in catalogue order."""
    parent = db.aliased(Category)
    query = (
        select(Category)
        .join(parent, parent.id == Category.parent_id)
        .options(joinedload(Category.parent))
        .where(Category.community_id == community_id, Category.active.is_(True))
        .order_by(parent.position, parent.id, Category.position, Category.id)
    )
    if major_id is not None:
        query = query.where(Category.parent_id == major_id)
    return list(db.session.scalars(query).unique())


def community_buildings(community_id: int) -> list[Building]:
    return list(
        db.session.scalars(
            select(Building)
            .options(joinedload(Building.estate))
            .where(Building.community_id == community_id)
            .order_by(Building.estate_id, Building.name, Building.id)
        )
    )


# --- submitting -------------------------------------------------------------------------------


def _int_or_none(value: object) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def find_resident(worker: User, query: str) -> Person:
    """The resident a grid worker submits for: by phone or exact name, living in their grids.

    Raises DomainError({"resident": ...}) when nobody or several people match.
    """
    query = (query or "").strip().replace(" ", "").replace("-", "")
    persons = list(
        db.session.scalars(
            select(Person)
            .join(Household, Household.id == Person.household_id)
            .join(Building, Building.id == Household.building_id)
            .join(grid_worker, grid_worker.c.grid_id == Building.grid_id)
            .where(
                grid_worker.c.user_id == worker.id,
                Person.community_id == worker.community_id,
                or_(Person.phone == query, Person.name == query),
            )
            .limit(2)
        )
    )
    if not persons:
        raise DomainError({"resident": _("No resident of your grids has this phone or name.")})
    if len(persons) > 1:
        raise DomainError(
            {"resident": _("Several residents have this name: enter the phone number instead.")}
        )
    return persons[0]


def route_request(req: HelpRequest) -> User | None:
    """The grid worker who receives a new request: the first of its grid by username, or None
    (the community office) when there is no grid or nobody works it."""
    if req.grid_id is None:
        return None
    return db.session.scalar(
        select(User)
        .join(grid_worker, grid_worker.c.user_id == User.id)
        .where(
            grid_worker.c.grid_id == req.grid_id,
            User.role == "grid_worker",
            User.active.is_(True),
        )
        .order_by(User.username)
        .limit(1)
    )


def _chosen_files(photos: list[PreparedPhoto] | None) -> list[PreparedPhoto]:
    return [f for f in (photos or []) if chosen(f)]


def _validate(
    user: User,
    *,
    category_id: object,
    description: str,
    where: str,
    building_id: object,
    address: str,
    preferred_time: str,
    urgency: str,
    photos: list[PreparedPhoto],
    requester: Person | None,
) -> tuple[Category, Household | None, Building | None]:
    errors: dict[str, str] = {}
    community_id = user.community_id
    category = None
    ident = _int_or_none(category_id)
    if ident is not None:
        category = db.session.get(Category, ident)
    if category is None or category.community_id != community_id or not category.active:
        errors["category"] = _("Choose a category from the list.")
        category = None
    elif category.parent_id is None:
        errors["category"] = _(
            "Choose a precise category under %(major)s.", major=category_name(category)
        )
    if not description.strip():
        errors["description"] = _("Describe what you need.")
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = _("At most %(max)d characters.", max=DESCRIPTION_MAX)
    household = building = None
    if where == "household":
        household = requester.household if requester is not None else None
        if household is None:
            errors["where"] = _(
                "No household is known for this resident: choose a building or enter an address."
            )
    elif where == "building":
        ident = _int_or_none(building_id)
        building = db.session.get(Building, ident) if ident is not None else None
        if building is None or building.community_id != community_id:
            errors["building"] = _("Choose a building of the community.")
            building = None
    elif where == "address":
        if not address.strip():
            errors["address"] = _("Enter the address.")
    else:
        errors["where"] = _("Choose where help is needed.")
    if len(address) > ADDRESS_MAX:
        errors["address"] = _("At most %(max)d characters.", max=ADDRESS_MAX)
    if len(preferred_time) > PREFERRED_TIME_MAX:
        errors["preferred_time"] = _("At most %(max)d characters.", max=PREFERRED_TIME_MAX)
    if urgency not in URGENCIES:
        errors["urgency"] = _("Choose normal or urgent.")
    if len(photos) > MAX_PHOTOS:
        errors["photos"] = _("At most %(max)d photos.", max=MAX_PHOTOS)
    if errors:
        raise DomainError(errors)
    assert category is not None
    return category, household, building


def _save_photos(photos: list[PreparedPhoto]) -> list[str]:
    """Store every photo (those stored go when the transaction does not commit)."""
    try:
        return [store_photo(photo) for photo in photos]
    except DomainError as error:
        raise DomainError(
            {"photos": error.errors.get("photo", _("This photo was refused."))}
        ) from None


def create_request(
    user: User,
    *,
    category_id: object,
    description: str,
    where: str,
    building_id: object = None,
    address: str = "",
    preferred_time: str = "",
    urgency: str = "normal",
    photos: list[PreparedPhoto] | None = None,
    resident: str = "",
    now: datetime | None = None,
    show_publicly: bool = False,
) -> tuple[HelpRequest, list[str]]:
    """Submit a request for ``user`` (or, for a grid worker, for the resident named by
    ``resident``), route it and start its clock; flushes, never commits.

    Returns the request and the stored photo names (the caller deletes them if its commit
    fails). Raises DomainError({field: message}) and then has saved nothing.
    """
    now = now or now_utc()
    description = description or ""
    address = (address or "").strip()
    preferred_time = (preferred_time or "").strip()
    files = _chosen_files(photos)
    requester = user.person
    if user.role == "grid_worker" and (resident or "").strip():
        requester = find_resident(user, resident)
    if requester is None:
        raise DomainError({"_": _("Only residents with a person record can submit requests.")})
    category, household, building = _validate(
        user,
        category_id=category_id,
        description=description,
        where=where,
        building_id=building_id,
        address=address,
        preferred_time=preferred_time,
        urgency=urgency,
        photos=files,
        requester=requester,
    )
    names = _save_photos(files)
    try:
        if household is not None:
            grid_id = household.building.grid_id
        elif building is not None:
            grid_id = building.grid_id
        else:
            grid_id = None
        req = HelpRequest(
            community_id=user.community_id,
            grid_id=grid_id,
            category_id=category.id,
            requester_id=requester.id,
            created_by_id=user.id,
            description=description.strip(),
            household_id=household.id if household else None,
            building_id=building.id if building else None,
            address=address if where == "address" else "",
            preferred_time=preferred_time,
            urgency=urgency,
            show_publicly=bool(show_publicly),
            status="submitted",
            due_at=now + timedelta(hours=category.time_limit_hours)
            if category.time_limit_hours
            else None,
            source="web",
            created_at=now,
            updated_at=now,
        )
        db.session.add(req)
        db.session.flush()
        handler = route_request(req)
        req.handler_user_id = handler.id if handler else None
        grid = db.session.get(Grid, grid_id) if grid_id else None
        route_note = " · ".join(
            part
            for part in (grid.name if grid else "", handler.display_name if handler else "")
            if part
        )
        db.session.add_all(
            [
                RequestEvent(
                    community_id=req.community_id, request_id=req.id, actor_id=user.id,
                    action="submit", from_status=None, to_status="submitted", at=now,
                ),
                RequestEvent(
                    community_id=req.community_id, request_id=req.id, actor_id=None,
                    action="route", from_status="submitted", to_status="submitted",
                    note=route_note, at=now,
                ),
            ]
        )  # fmt: skip
        for name in names:
            db.session.add(
                RequestPhoto(
                    community_id=req.community_id, request_id=req.id, file=name,
                    stage="submit", created_at=now,
                )
            )  # fmt: skip
        db.session.flush()
    except Exception:
        for name in names:
            delete_photo(name)
        raise
    return req, names


# --- reading ----------------------------------------------------------------------------------


def my_requests_query(user: User):
    """The user's own requests (as requester, or submitted by them), newest first."""
    mine = [HelpRequest.created_by_id == user.id]
    if user.person_id is not None:
        mine.append(HelpRequest.requester_id == user.person_id)
    return (
        select(HelpRequest)
        .options(joinedload(HelpRequest.category), joinedload(HelpRequest.requester))
        .where(HelpRequest.community_id == user.community_id, or_(*mine))
        .order_by(HelpRequest.created_at.desc(), HelpRequest.id.desc())
    )


def timeline(req: HelpRequest) -> list[RequestEvent]:
    return list(
        db.session.scalars(
            select(RequestEvent)
            .options(selectinload(RequestEvent.actor).joinedload(User.person))
            .where(RequestEvent.request_id == req.id)
            .order_by(RequestEvent.at, RequestEvent.id)
        )
    )


def request_photos(req: HelpRequest) -> list[RequestPhoto]:
    return list(
        db.session.scalars(
            select(RequestPhoto)
            .where(RequestPhoto.request_id == req.id)
            .order_by(RequestPhoto.stage.desc(), RequestPhoto.id)
        )
    )
