"""Volunteer registration, the decision on it, and the roster's queries.

Services validate, add and flush; the view commits. The approval's effects (status, armband number,
party report date, the account's role) happen in the caller's one transaction, and the rules that
must hold under concurrency are conditional UPDATEs whose row count says who won.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.core.validators import normalise_phone
from portal.database import utcnow
from portal.extensions import db
from portal.people.models import Person
from portal.places.models import Building, Community, Grid, Household
from portal.trust import audit
from portal.volunteers.forms import AVAILABILITY
from portal.volunteers.models import (
    FIVE_ELDER_KINDS,
    STATUSES,
    VOLUNTEER_TYPES,
    Volunteer,
    VolunteerType,
)


def format_armband_no(community_id: int, seq: int) -> str:
    """Armband numbers are per community: ``007-00042``."""
    return f"{community_id:03d}-{seq:05d}"


def default_grid_id(person: Person) -> int | None:
    """The grid of the building the person's household is in, if any."""
    if person.household_id is None:
        return None
    return db.session.scalar(
        select(Building.grid_id)
        .join(Household, Household.building_id == Building.id)
        .where(Household.id == person.household_id)
    )


def community_grids(community_ids: Iterable[int], grid_ids: list[int] | None = None) -> list[Grid]:
    """Grids of these communities (limited to ``grid_ids`` when given), by community and name."""
    query = (
        select(Grid)
        .options(joinedload(Grid.community))
        .where(Grid.community_id.in_(list(community_ids)))
        .order_by(Grid.community_id, Grid.name)
    )
    if grid_ids is not None:
        query = query.where(Grid.id.in_(grid_ids))
    return list(db.session.scalars(query))


def _sync_types(volunteer: Volunteer, types: list[str]) -> None:
    # Keep links that stay, so UNIQUE(volunteer_id, type) never sees a delete-then-insert clash.
    wanted = [t for t in VOLUNTEER_TYPES if t in types]
    for link in list(volunteer.type_links):
        if link.type not in wanted:
            volunteer.type_links.remove(link)
    have = {link.type for link in volunteer.type_links}
    for t in wanted:
        if t not in have:
            volunteer.type_links.append(VolunteerType(type=t))


def register_volunteer(
    person: Person,
    *,
    types: list[str],
    employer: str = "",
    party_branch: str = "",
    grid_id: int | None = None,
    five_elder_kind: str | None = None,
    skills: str = "",
    availability: list[str] | None = None,
) -> Volunteer:
    """Create the person's registration, or edit it while pending or after a rejection.

    An edit sends it back to "pending" with the reason cleared. Raises DomainError with field
    messages (types, party details, a grid outside the person's community, the elder kind) or
    when the registration was already approved.
    """
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.person_id == person.id))
    if volunteer is not None and volunteer.status == "approved":
        raise DomainError({"_": _("Your registration is already approved.")})

    types = [t for t in VOLUNTEER_TYPES if t in set(types)]
    employer, party_branch, skills = employer.strip(), party_branch.strip(), skills.strip()
    errors: dict[str, str] = {}
    if not types:
        errors["types"] = _("Choose at least one volunteer type.")
    if grid_id is not None and (
        db.session.scalar(
            select(Grid.id).where(Grid.id == grid_id, Grid.community_id == person.community_id)
        )
        is None
    ):
        errors["grid_id"] = _("Choose a grid of your community")
    if "party_member" in types:
        if not employer:
            errors["employer"] = _("A party member gives the employer.")
        if not party_branch:
            errors["party_branch"] = _("A party member gives the party branch.")
        if grid_id is None and "grid_id" not in errors:
            errors["grid_id"] = _("Choose the grid you report to.")
    else:
        employer = party_branch = ""
    if "five_elders" in types:
        if five_elder_kind not in FIVE_ELDER_KINDS:
            errors["five_elder_kind"] = _("Choose which of the five elders you are.")
    else:
        five_elder_kind = None
    if len(skills) > 200:
        errors["skills"] = _("At most %(n)d characters.", n=200)
    if errors:
        raise DomainError(errors)

    codes = [code for code in AVAILABILITY if code in set(availability or [])]
    if grid_id is None:
        grid_id = default_grid_id(person)
    if volunteer is None:
        volunteer = Volunteer(community_id=person.community_id, person_id=person.id)
        db.session.add(volunteer)
    else:
        # Claim the row back to "pending" only if no decision to approve got in first.
        claimed = db.session.execute(
            update(Volunteer)
            .where(Volunteer.id == volunteer.id, Volunteer.status != "approved")
            .values(status="pending")
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            raise DomainError({"_": _("Your registration is already approved.")})
        if volunteer.status == "rejected":
            # A corrected application queues again behind those already waiting.
            volunteer.applied_at = utcnow()
    volunteer.status = "pending"
    volunteer.rejection_reason = ""
    volunteer.decided_at = None
    volunteer.decided_by_id = None
    volunteer.grid_id = grid_id
    volunteer.employer = employer
    volunteer.party_branch = party_branch
    volunteer.five_elder_kind = five_elder_kind
    volunteer.skills = skills
    volunteer.availability = ",".join(codes)
    _sync_types(volunteer, types)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        # Two submissions at once: UNIQUE(person_id) let only the first one in.
        raise DomainError(
            {"_": _("Your registration was already sent; reload the page to see it.")}
        ) from None
    return volunteer


@dataclass
class Decision:
    """What a decision did: ``won`` is False when someone had already decided."""

    volunteer: Volunteer
    won: bool
    armband_no: str | None = None


def _decided_already(volunteer: Volunteer) -> Decision:
    db.session.refresh(volunteer)
    return Decision(volunteer=volunteer, won=False)


def _check_not_own(volunteer: Volunteer, actor: User, action: str) -> None:
    if actor.person_id is not None and volunteer.person_id == actor.person_id:
        # Added to the unit of work: the view commits it with nothing else (no write came first).
        audit.record(action, "refused", **_audit_target(volunteer, actor), detail="own")
        raise DomainError({"_": _("You cannot decide on your own registration.")})


def _audit_target(volunteer: Volunteer, actor: User) -> dict:
    return {
        "target_type": "volunteer",
        "target_id": volunteer.id,
        "community_id": volunteer.community_id,
        "actor_user_id": actor.id,
        "actor_name": actor.username,
    }


def approve_volunteer(volunteer: Volunteer, actor: User, today: date | None = None) -> Decision:
    """Approve a pending registration: issue an armband number to a red armband, date a party
    member's report, and make a resident's account a volunteer's. Only the first of competing
    decisions wins; the others get ``won=False`` and change nothing. DomainError for one's own.
    """
    _check_not_own(volunteer, actor, "approval")
    won = db.session.execute(
        update(Volunteer)
        .where(Volunteer.id == volunteer.id, Volunteer.status == "pending")
        .values(status="approved", decided_at=utcnow(), decided_by_id=actor.id, rejection_reason="")
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return _decided_already(volunteer)

    # Read after winning: the row is ours now, and its types can no longer change.
    types = set(
        db.session.scalars(
            select(VolunteerType.type).where(VolunteerType.volunteer_id == volunteer.id)
        )
    )
    values: dict[str, object] = {}
    if "red_armband" in types and not volunteer.armband_no:
        # The UPDATE locks the community row until commit, so numbers are issued one at a time.
        db.session.execute(
            update(Community)
            .where(Community.id == volunteer.community_id)
            .values(armband_seq=Community.armband_seq + 1)
            .execution_options(synchronize_session=False)
        )
        seq = db.session.scalar(
            select(Community.armband_seq).where(Community.id == volunteer.community_id)
        )
        values["armband_no"] = format_armband_no(volunteer.community_id, seq)
    if "party_member" in types:
        values["party_reported_on"] = today or local_today()
    if values:
        db.session.execute(
            update(Volunteer)
            .where(Volunteer.id == volunteer.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    promoted = db.session.execute(
        update(User)
        .where(User.person_id == volunteer.person_id, User.role == "resident")
        .values(role="volunteer")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(volunteer)
    if volunteer.party_reported_on is not None:
        from portal.points.ledger import award_party_report

        award_party_report(volunteer)
    effects = [f"types={','.join(sorted(types))}"]
    if volunteer.armband_no:
        effects.append(f"armband={volunteer.armband_no}")
    if "party_reported_on" in values:
        effects.append(f"party_report={volunteer.party_reported_on.isoformat()}")
    if promoted:
        effects.append("role resident->volunteer")
    audit.record("approval", **_audit_target(volunteer, actor), detail=" ".join(effects))
    return Decision(volunteer=volunteer, won=True, armband_no=volunteer.armband_no)


def reject_volunteer(volunteer: Volunteer, actor: User, reason: str) -> Decision:
    """Reject a pending registration with a reason the applicant will read.

    Raises DomainError when the reason is empty or it is one's own; ``won=False`` when it was
    already decided.
    """
    _check_not_own(volunteer, actor, "rejection")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError({"reason": _("Give a reason so the applicant can correct it.")})
    won = db.session.execute(
        update(Volunteer)
        .where(Volunteer.id == volunteer.id, Volunteer.status == "pending")
        .values(
            status="rejected", decided_at=utcnow(), decided_by_id=actor.id, rejection_reason=reason
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return _decided_already(volunteer)
    db.session.refresh(volunteer)
    audit.record("rejection", **_audit_target(volunteer, actor))
    return Decision(volunteer=volunteer, won=True)


def scoped(query: Select, community_ids: list[int], grid_ids: list[int] | None) -> Select:
    """Limit a volunteer query to the user's communities, and a grid worker's grids."""
    query = query.where(Volunteer.community_id.in_(community_ids))
    if grid_ids is not None:
        query = query.where(Volunteer.grid_id.in_(grid_ids))
    return query


def _with_details(query: Select) -> Select:
    return query.options(
        joinedload(Volunteer.person),
        joinedload(Volunteer.grid),
        selectinload(Volunteer.type_links),
    )


def pending_query(community_ids: list[int], grid_ids: list[int] | None) -> Select:
    """Pending registrations in scope, oldest first."""
    query = select(Volunteer).where(Volunteer.status == "pending")
    query = scoped(query, community_ids, grid_ids)
    return _with_details(query).order_by(Volunteer.applied_at, Volunteer.id)


def count_pending(community_ids: list[int], grid_ids: list[int] | None) -> int:
    """How many registrations in scope await a decision."""
    query = select(func.count(Volunteer.id)).where(Volunteer.status == "pending")
    return db.session.scalar(scoped(query, community_ids, grid_ids))


def load_with_details(volunteer_id: int) -> Volunteer:
    """One registration with its person, grid and types (for a row re-rendered after a decision)."""
    return db.session.scalar(_with_details(select(Volunteer).where(Volunteer.id == volunteer_id)))


@dataclass
class RosterFilters:
    """Roster filters, already cleaned: an unknown value is None (meaning "any")."""

    q: str = ""
    community: int | None = None
    type: str | None = None
    grid: int | None = None
    status: str | None = None
    # Part of a phone number finds people only for roles that see phones in full; for the
    # others (masked phones) only a whole number matches, so searching cannot unmask digits.
    partial_phone: bool = True

    @classmethod
    def clean(cls, q, community, type, grid, status) -> RosterFilters:  # noqa: A002
        return cls(
            q=(q or "").strip()[:40],
            community=community if isinstance(community, int) else None,
            type=type if type in VOLUNTEER_TYPES else None,
            grid=grid if isinstance(grid, int) else None,
            status=status if status in STATUSES else None,
        )

    def args(self) -> dict[str, object]:
        """Non-empty filters, for links (pager, export) that keep them."""
        return {k: v for k, v in vars(self).items() if v not in (None, "")}


def _filtered(
    query: Select, filters: RosterFilters, community_ids: list[int], grid_ids: list[int] | None
) -> Select:
    query = scoped(query, community_ids, grid_ids)
    if filters.community is not None:
        query = query.where(Volunteer.community_id == filters.community)
    if filters.type:
        query = query.where(
            exists().where(
                VolunteerType.volunteer_id == Volunteer.id, VolunteerType.type == filters.type
            )
        )
    if filters.grid is not None:
        query = query.where(Volunteer.grid_id == filters.grid)
    if filters.status:
        query = query.where(Volunteer.status == filters.status)
    if filters.q:
        conditions = [Person.name.contains(filters.q, autoescape=True)]
        digits = normalise_phone(filters.q)
        if digits.isdigit() and filters.partial_phone:
            conditions.append(Person.phone.contains(digits, autoescape=True))
        elif digits.isdigit():
            conditions.append(Person.phone == digits)
        query = query.where(or_(*conditions))
    return query


def roster_query(
    filters: RosterFilters, community_ids: list[int], grid_ids: list[int] | None
) -> Select:
    """Volunteers in scope matching the filters, newest applications first."""
    query = select(Volunteer).join(Person, Volunteer.person_id == Person.id)
    query = _filtered(query, filters, community_ids, grid_ids)
    return _with_details(query).order_by(Volunteer.applied_at.desc(), Volunteer.id.desc())


@dataclass
class ExportRow:
    name: str
    phone: str | None
    community: str
    grid: str | None
    types: list[str]
    status: str
    armband_no: str | None
    employer: str
    party_branch: str
    party_reported_on: date | None
    five_elder_kind: str | None
    skills: str
    availability: str
    applied_at: datetime


def export_rows(
    filters: RosterFilters,
    community_ids: list[int],
    grid_ids: list[int] | None,
    batch: int = 1000,
) -> Iterator[ExportRow]:
    """The roster as plain rows, fetched in batches (yield_per), never all held in memory."""
    types = (
        select(func.aggregate_strings(VolunteerType.type, ","))
        .where(VolunteerType.volunteer_id == Volunteer.id)
        .correlate(Volunteer)
        .scalar_subquery()
    )
    query = (
        select(
            Person.name,
            Person.phone,
            Community.name,
            Grid.name,
            types,
            Volunteer.status,
            Volunteer.armband_no,
            Volunteer.employer,
            Volunteer.party_branch,
            Volunteer.party_reported_on,
            Volunteer.five_elder_kind,
            Volunteer.skills,
            Volunteer.availability,
            Volunteer.applied_at,
        )
        .join(Person, Volunteer.person_id == Person.id)
        .join(Community, Volunteer.community_id == Community.id)
        .outerjoin(Grid, Volunteer.grid_id == Grid.id)
    )
    query = _filtered(query, filters, community_ids, grid_ids).order_by(
        Volunteer.applied_at.desc(), Volunteer.id.desc()
    )
    for row in db.session.execute(query.execution_options(yield_per=batch)):
        codes = set((row[4] or "").split(","))
        yield ExportRow(
            name=row[0],
            phone=row[1],
            community=row[2],
            grid=row[3],
            types=[t for t in VOLUNTEER_TYPES if t in codes],
            status=row[5],
            armband_no=row[6],
            employer=row[7],
            party_branch=row[8],
            party_reported_on=row[9],
            five_elder_kind=row[10],
            skills=row[11],
            availability=row[12] or "",
            applied_at=row[13],
        )
