"""Residents: registration into households, care needs under consent, sign-in accounts.

Services validate, add and flush; the view commits. Scope (the community and, for a grid
worker, the grids) is passed in explicitly so the rules hold whoever calls them.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal.auth.models import User
from portal.auth.services import phone_taken, username_taken
from portal.core.errors import DomainError
from portal.core.validators import PHONE_RE, normalise_phone
from portal.database import utcnow
from portal.extensions import db
from portal.people.models import CARE_FLAGS, SEXES, Person
from portal.places.models import Building, Community, Estate, Grid, Household
from portal.trust import audit, privacy


def search_residents(
    *,
    community_ids: list[int],
    grid_ids: list[int] | None = None,
    q: str | None = None,
    community_id: int | None = None,
    grid_id: int | None = None,
    care: str | None = None,
    household: str | None = None,
    phone_prefix: bool = True,
) -> Select:
    """The residents visible in this scope that match the filters, household and place loaded.

    ``phone_prefix=False`` matches only a complete number, for viewers who see masked phones
    (a prefix search would let them uncover the hidden digits one by one).
    """
    query = (
        select(Person)
        .outerjoin(Household, Person.household_id == Household.id)
        .outerjoin(Building, Household.building_id == Building.id)
        .where(Person.community_id.in_(community_ids))
        .options(
            joinedload(Person.household)
            .joinedload(Household.building)
            .options(joinedload(Building.estate), joinedload(Building.grid))
        )
        .order_by(Person.name, Person.id)
    )
    if grid_ids is not None:
        query = query.where(Building.grid_id.in_(grid_ids))
    if q:
        digits = normalise_phone(q)
        conditions = [Person.name.icontains(q, autoescape=True)]
        if digits.isdigit():
            conditions.append(
                Person.phone.startswith(digits, autoescape=True)
                if phone_prefix
                else Person.phone == digits
            )
        query = query.where(or_(*conditions))
    if community_id is not None:
        query = query.where(Person.community_id == community_id)
    if grid_id is not None:
        query = query.where(Building.grid_id == grid_id)
    if care in CARE_FLAGS:
        query = query.where(getattr(Person, care).is_(True))
    if household == "with":
        query = query.where(Person.household_id.is_not(None))
    elif household == "without":
        query = query.where(Person.household_id.is_(None))
    return query


def list_communities(community_ids: list[int]) -> list[Community]:
    return list(
        db.session.scalars(
            select(Community).where(Community.id.in_(community_ids)).order_by(Community.name)
        )
    )


def list_grids(community_ids: list[int], grid_ids: list[int] | None = None) -> list[Grid]:
    query = (
        select(Grid)
        .where(Grid.community_id.in_(community_ids))
        .options(joinedload(Grid.community))
        .order_by(Grid.community_id, Grid.name)
    )
    if grid_ids is not None:
        query = query.where(Grid.id.in_(grid_ids))
    return list(db.session.scalars(query))


def list_buildings(community_id: int, grid_ids: list[int] | None = None) -> list[Building]:
    """Buildings a resident may be registered in: the community's, or the grid worker's grids'."""
    query = (
        select(Building)
        .join(Estate, Building.estate_id == Estate.id)
        .where(Building.community_id == community_id)
        .options(joinedload(Building.estate), joinedload(Building.grid))
        .order_by(Estate.name, Building.name, Building.id)
    )
    if grid_ids is not None:
        query = query.where(Building.grid_id.in_(grid_ids))
    return list(db.session.scalars(query))


def household_in_scope(
    household_id: int | None, community_id: int, grid_ids: list[int] | None = None
) -> Household | None:
    """The household if it belongs to the community (and the grid worker's grids), else None."""
    if household_id is None:
        return None
    household = db.session.get(Household, household_id)
    if household is None or household.community_id != community_id:
        return None
    if grid_ids is not None and household.building.grid_id not in grid_ids:
        return None
    return household


def resolve_household(
    *,
    community_id: int,
    grid_ids: list[int] | None,
    household_id: int | None = None,
    building_id: int | None = None,
    room: str | None = None,
) -> Household | None:
    """The household chosen on the form: by id, or by building and room number.

    Raises DomainError on a household or building outside the scope, or an unknown room.
    None (no household) is allowed only when not limited to grids and nothing was chosen.
    """
    if household_id is not None:
        household = db.session.get(Household, household_id)
        if household is None or household.community_id != community_id:
            raise DomainError({"household_id": _("Choose a household of your community")})
        if grid_ids is not None and household.building.grid_id not in grid_ids:
            raise DomainError({"household_id": _("Choose a household in your grids")})
        return household
    room = (room or "").strip()
    if building_id is None and not room:
        if grid_ids is not None:
            raise DomainError({"building_id": _("Choose a building of your grids.")})
        return None
    if building_id is None:
        raise DomainError({"building_id": _("Choose a building.")})
    building = db.session.get(Building, building_id)
    if building is None or building.community_id != community_id:
        raise DomainError({"building_id": _("Choose a building of your community")})
    if grid_ids is not None and building.grid_id not in grid_ids:
        raise DomainError({"building_id": _("Choose a building of your grids.")})
    if not room:
        raise DomainError({"room": _("Enter the room number.")})
    household = db.session.scalar(
        select(Household).where(Household.building_id == building.id, Household.room == room)
    )
    if household is None:
        raise DomainError({"room": _("No household with this room in this building")})
    return household


def _save(
    person: Person,
    *,
    household: Household | None,
    name: str,
    phone: str | None,
    sex: str | None,
    birth_year: int | None,
    care_flags: Iterable[str],
    consent: bool,
    guardian: str | None,
    recorded_by: User | None,
) -> None:
    """Check the rules, then write the fields inside a savepoint.

    The phone's unique constraint has the last word: a concurrent registration of the same
    number becomes the same field error, and the session stays usable. A resident who may be
    under 14 needs a guardian (``guardian``: a phone or name; empty keeps the current one).
    Care consent is also kept as a Consent row: given while ticked, withdrawn when unticked.
    """
    flags = set(care_flags)
    errors: dict[str, str] = {}
    guardian_id = person.guardian_person_id
    if guardian and guardian.strip():
        try:
            guardian_id = privacy.find_guardian(
                person.community_id, guardian, exclude_person_id=person.id
            ).id
        except DomainError as error:
            errors.update(error.errors)
    if "guardian" not in errors:
        errors.update(privacy.guardian_error(birth_year, guardian_id))
    phone = normalise_phone(phone) or None
    if phone is not None and not PHONE_RE.match(phone):
        errors["phone"] = _("Enter an 11-digit mobile number starting with 13–19.")
    elif phone is not None and phone_taken(phone, exclude_person_id=person.id):
        errors["phone"] = _("This phone number is already registered.")
    if flags and not consent:
        errors["care_consent"] = _(
            "Care needs are recorded only with consent: tick the consent box or untick the needs."
        )
    if errors:
        raise DomainError(errors)
    try:
        with db.session.begin_nested():
            db.session.add(person)
            person.household = household
            person.name = name.strip()
            person.phone = phone
            person.sex = sex if sex in SEXES else None
            person.birth_year = birth_year
            person.guardian_person_id = guardian_id
            if consent:
                # Keep the moment consent was first given; a later edit does not renew it.
                person.care_consent_at = person.care_consent_at or utcnow()
                for flag in CARE_FLAGS:
                    setattr(person, flag, flag in flags)
            else:
                # Withdrawn consent: nothing sensitive may stay.
                person.care_consent_at = None
                for flag in CARE_FLAGS:
                    setattr(person, flag, False)
            db.session.flush()
            if consent:
                privacy.give_consent(person, "care_flags", recorded_by=recorded_by)
            else:
                privacy.end_consents(person, "care_flags")
    except IntegrityError as exc:
        if "phone" not in str(exc.orig):
            raise
        raise DomainError({"phone": _("This phone number is already registered.")}) from exc


def create_person(
    *,
    community_id: int,
    household: Household | None,
    name: str,
    phone: str | None = None,
    sex: str | None = None,
    birth_year: int | None = None,
    care_flags: Iterable[str] = (),
    consent: bool = False,
    guardian: str | None = None,
    recorded_by: User | None = None,
) -> Person:
    """Register a resident in ``community_id``; DomainError on a bad or taken phone, on care
    needs without consent, or on a minor without a guardian. ``household`` must already be
    checked against the scope."""
    if household is not None and household.community_id != community_id:
        raise DomainError({"household_id": _("Choose a household of your community")})
    person = Person(community_id=community_id)
    _save(
        person,
        household=household,
        name=name,
        phone=phone,
        sex=sex,
        birth_year=birth_year,
        care_flags=care_flags,
        consent=consent,
        guardian=guardian,
        recorded_by=recorded_by,
    )
    return person


def update_person(
    person: Person,
    *,
    household: Household | None,
    name: str,
    phone: str | None = None,
    sex: str | None = None,
    birth_year: int | None = None,
    care_flags: Iterable[str] = (),
    consent: bool = False,
    guardian: str | None = None,
    recorded_by: User | None = None,
) -> Person:
    """Change a resident's record; the same rules as ``create_person``. Unticked consent
    clears every care need and the consent time, and withdraws the consent row."""
    if household is not None and household.community_id != person.community_id:
        raise DomainError({"household_id": _("Choose a household of your community")})
    _save(
        person,
        household=household,
        name=name,
        phone=phone,
        sex=sex,
        birth_year=birth_year,
        care_flags=care_flags,
        consent=consent,
        guardian=guardian,
        recorded_by=recorded_by,
    )
    return person


def phone_status(phone: str | None, exclude_person_id: int | None = None) -> str:
    """'' for nothing typed, else 'invalid', 'taken' or 'ok' (for inline validation)."""
    phone = normalise_phone(phone)
    if not phone:
        return ""
    if not PHONE_RE.match(phone):
        return "invalid"
    if phone_taken(phone, exclude_person_id=exclude_person_id):
        return "taken"
    return "ok"


def create_account(person: Person, *, username: str, password: str) -> User:
    """Give a resident a sign-in account (role resident, the person's community).

    Raises DomainError when the person already has one or the username is taken.
    """
    if person.user is not None:
        raise DomainError({"_": _("This resident already has an account.")})
    username = username.strip()
    if username_taken(username):
        raise DomainError({"username": _("This username is taken.")})
    try:
        with db.session.begin_nested():
            user = User(
                username=username, role="resident", community_id=person.community_id, person=person
            )
            user.set_password(password)
            db.session.add(user)
            db.session.flush()
    except IntegrityError as exc:
        # A concurrent request won: the same username or a second account for this person.
        if "username" in str(exc.orig):
            raise DomainError({"username": _("This username is taken.")}) from exc
        raise DomainError({"_": _("This resident already has an account.")}) from exc
    return user


def unverified_accounts(community_ids: list[int]) -> Select:
    """Self-registered accounts of these communities not yet matched to a household, oldest
    first, with their person. A grid worker sees their whole community's: such an account has
    no household, hence no grid, until it is matched."""
    return (
        select(User)
        .where(
            User.community_id.in_(community_ids),
            User.verified.is_(False),
            User.active.is_(True),
        )
        .options(joinedload(User.person))
        .order_by(User.created_at, User.id)
    )


def verify_account(user: User, household: Household) -> None:
    """Match a self-registered account to ``household`` (already checked against the scope):
    its person moves in, the phone typed at sign-up joins the record when no one else holds it,
    and the account is verified; the audit row names the signed-in handler. DomainError when it
    was verified already (by another handler, even a moment ago: a conditional update decides)."""
    if household.community_id != user.community_id:
        raise DomainError({"household_id": _("Choose a household of your community")})
    won = db.session.execute(
        update(User)
        .where(User.id == user.id, User.verified.is_(False))
        .values(verified=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise DomainError({"_": _("This account has been matched already.")})
    set_committed_value(user, "verified", True)
    person = user.person
    if person is None:
        person = Person(community_id=user.community_id, name=user.username)
        user.person = person
    person.household = household
    db.session.flush()
    phone = user.signup_phone
    if phone and person.phone is None and not phone_taken(phone, exclude_person_id=person.id):
        try:
            with db.session.begin_nested():
                person.phone = phone
                user.signup_phone = None
                db.session.flush()
        except IntegrityError as exc:
            if "phone" not in str(exc.orig):
                raise
            # Registered for someone else a moment ago: it stays on the account, shown to staff.
    audit.record(
        "account_verified",
        target_type="user",
        target_id=user.id,
        community_id=user.community_id,
        detail=f"household {household.id}",
    )
    db.session.flush()
