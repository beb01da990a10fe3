"""The places tree: grids, estates, buildings, entrances and households of one community.

Write operations validate membership and uniqueness, then add/flush inside a savepoint so that a
unique constraint lost to a concurrent request becomes a field message; they never commit.
Read helpers return one page of rows plus per-row counts in a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import current_app
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.extensions import db
from portal.people.models import Person
from portal.places.models import (
    ESTATE_KINDS,
    Building,
    Community,
    Entrance,
    Estate,
    Grid,
    Household,
)
from portal.volunteers.models import Volunteer, VolunteerType

# ---------------------------------------------------------------------------------------------
# Choices offered to a secretary (always limited to one community)


def community_grids(community_id: int) -> list[Grid]:
    return list(
        db.session.scalars(
            select(Grid).where(Grid.community_id == community_id).order_by(Grid.name)
        )
    )


def community_estates(community_id: int) -> list[Estate]:
    return list(
        db.session.scalars(
            select(Estate).where(Estate.community_id == community_id).order_by(Estate.name)
        )
    )


def grid_worker_candidates(community_id: int) -> list[User]:
    """Accounts of the community with the grid_worker role."""
    return list(
        db.session.scalars(
            select(User)
            .options(joinedload(User.person))
            .where(User.community_id == community_id, User.role == "grid_worker")
            .order_by(User.username)
        )
    )


def captain_candidates(community_id: int, keep_id: int | None = None) -> list[Person]:
    """Approved building-captain volunteers of the community (plus ``keep_id``, the current one)."""
    eligible = (
        select(Person.id)
        .join(Volunteer, Volunteer.person_id == Person.id)
        .join(VolunteerType, VolunteerType.volunteer_id == Volunteer.id)
        .where(
            Person.community_id == community_id,
            Volunteer.status == "approved",
            VolunteerType.type == "building_captain",
        )
    )
    condition = Person.id.in_(eligible)
    if keep_id is not None:
        condition = condition | (Person.id == keep_id)
    return list(db.session.scalars(select(Person).where(condition).order_by(Person.name)))


# ---------------------------------------------------------------------------------------------
# Shared checks


def _exists(query) -> bool:
    return db.session.scalar(query.limit(1)) is not None


def _save(apply: Callable[[], None], field: str, message: str) -> None:
    """Run ``apply`` and flush inside a savepoint; a unique constraint hit becomes ``message``."""
    try:
        with db.session.begin_nested():
            apply()
            db.session.flush()
    except IntegrityError as error:
        raise DomainError({field: message}) from error


def _delete(obj: object, message: str) -> None:
    """Delete and flush inside a savepoint; a row still referenced elsewhere raises ``message``."""
    try:
        with db.session.begin_nested():
            db.session.delete(obj)
            db.session.flush()
    except IntegrityError as error:
        raise DomainError({"_": message}) from error


def _in_community(model: type, ident: int | None, community_id: int):
    """The row of ``model`` with id ``ident`` if it belongs to the community, else None."""
    if not ident:
        return None
    obj = db.session.get(model, ident)
    return obj if obj is not None and obj.community_id == community_id else None


# ---------------------------------------------------------------------------------------------
# Grids


def _grid_message() -> str:
    return _("A grid with this name already exists in your community.")


def _grid_workers(community_id: int, worker_ids: Iterable[int | None], errors: dict) -> list[User]:
    wanted = {i for i in worker_ids if i is not None}
    if not wanted:
        return []
    workers = [u for u in grid_worker_candidates(community_id) if u.id in wanted]
    if len(workers) != len(wanted):
        errors["worker_ids"] = _("Choose grid workers of your community.")
    return workers


def _check_grid(community_id: int, name: str, worker_ids, grid: Grid | None) -> list[User]:
    errors: dict[str, str] = {}
    query = select(Grid.id).where(Grid.community_id == community_id, Grid.name == name)
    if grid is not None:
        query = query.where(Grid.id != grid.id)
    if _exists(query):
        errors["name"] = _grid_message()
    workers = _grid_workers(community_id, worker_ids, errors)
    if errors:
        raise DomainError(errors)
    return workers


def create_grid(
    community_id: int, *, name: str, description: str = "", worker_ids: Iterable[int] = ()
) -> Grid:
    """Add a grid with its workers; DomainError on a taken name or a worker from elsewhere."""
    name = name.strip()
    workers = _check_grid(community_id, name, worker_ids, None)
    grid = Grid(community_id=community_id, name=name, description=(description or "").strip())

    def apply() -> None:
        db.session.add(grid)
        grid.workers = workers

    _save(apply, "name", _grid_message())
    return grid


def update_grid(
    grid: Grid, *, name: str, description: str = "", worker_ids: Iterable[int] = ()
) -> Grid:
    """Rename a grid, change its description and workers; same errors as create_grid."""
    name = name.strip()
    workers = _check_grid(grid.community_id, name, worker_ids, grid)

    def apply() -> None:
        grid.name = name
        grid.description = (description or "").strip()
        grid.workers = workers

    _save(apply, "name", _grid_message())
    return grid


def delete_grid(grid: Grid) -> None:
    """Delete an empty grid; DomainError while buildings or volunteers still belong to it."""
    if _exists(select(Building.id).where(Building.grid_id == grid.id)):
        raise DomainError(
            {"_": _("This grid still has buildings. Move them to another grid or delete them.")}
        )
    if _exists(select(Volunteer.id).where(Volunteer.grid_id == grid.id)):
        raise DomainError(
            {"_": _("Volunteers still serve in this grid. Assign them to another grid first.")}
        )
    _delete(grid, _("This grid is still in use and cannot be deleted."))


# ---------------------------------------------------------------------------------------------
# Estates


def _estate_message() -> str:
    return _("An estate with this name already exists in your community.")


def _check_estate(community_id: int, name: str, kind: str, estate: Estate | None) -> None:
    errors: dict[str, str] = {}
    query = select(Estate.id).where(Estate.community_id == community_id, Estate.name == name)
    if estate is not None:
        query = query.where(Estate.id != estate.id)
    if _exists(query):
        errors["name"] = _estate_message()
    if kind not in ESTATE_KINDS:
        errors["kind"] = _("Choose a kind of estate.")
    if errors:
        raise DomainError(errors)


def create_estate(
    community_id: int, *, name: str, kind: str = "ordinary", address: str = ""
) -> Estate:
    """Add an estate or resettlement area; DomainError on a taken name or unknown kind."""
    name = name.strip()
    _check_estate(community_id, name, kind, None)
    estate = Estate(
        community_id=community_id, name=name, kind=kind, address=(address or "").strip()
    )
    _save(lambda: db.session.add(estate), "name", _estate_message())
    return estate


def update_estate(estate: Estate, *, name: str, kind: str, address: str = "") -> Estate:
    """Change an estate's name, kind and address; same errors as create_estate."""
    name = name.strip()
    _check_estate(estate.community_id, name, kind, estate)

    def apply() -> None:
        estate.name = name
        estate.kind = kind
        estate.address = (address or "").strip()

    _save(apply, "name", _estate_message())
    return estate


def delete_estate(estate: Estate) -> None:
    """Delete an estate without buildings; DomainError otherwise."""
    if _exists(select(Building.id).where(Building.estate_id == estate.id)):
        raise DomainError({"_": _("This estate still has buildings. Delete them first.")})
    _delete(estate, _("This estate is still in use and cannot be deleted."))


# ---------------------------------------------------------------------------------------------
# Buildings


def _building_message() -> str:
    return _("A building with this name already exists in this estate.")


def _check_building(
    community_id: int,
    *,
    estate_id: int | None,
    grid_id: int | None,
    name: str,
    captain_id: int | None,
    building: Building | None,
) -> None:
    errors: dict[str, str] = {}
    estate = _in_community(Estate, estate_id, community_id)
    if estate is None:
        errors["estate_id"] = _("Choose an estate of your community.")
    if _in_community(Grid, grid_id, community_id) is None:
        errors["grid_id"] = _("Choose a grid of your community.")
    if estate is not None:
        query = select(Building.id).where(Building.estate_id == estate.id, Building.name == name)
        if building is not None:
            query = query.where(Building.id != building.id)
        if _exists(query):
            errors["name"] = _building_message()
    if captain_id is not None:
        keep = building.captain_id if building is not None else None
        allowed = {p.id for p in captain_candidates(community_id, keep)}
        if captain_id not in allowed:
            errors["captain_id"] = _(
                "Choose an approved building-captain volunteer of your community."
            )
    if errors:
        raise DomainError(errors)


def create_building(
    community_id: int,
    *,
    estate_id: int | None,
    grid_id: int | None,
    name: str,
    floors: int | None = None,
    captain_id: int | None = None,
) -> Building:
    """Add a building to an estate and a grid of the community, with an optional captain.

    DomainError when the estate, grid or captain is not the community's, or the name is taken.
    """
    name = name.strip()
    _check_building(
        community_id,
        estate_id=estate_id,
        grid_id=grid_id,
        name=name,
        captain_id=captain_id,
        building=None,
    )
    building = Building(
        community_id=community_id,
        estate_id=estate_id,
        grid_id=grid_id,
        name=name,
        floors=floors,
        captain_id=captain_id,
    )
    _save(lambda: db.session.add(building), "name", _building_message())
    return building


def update_building(
    building: Building,
    *,
    estate_id: int | None,
    grid_id: int | None,
    name: str,
    floors: int | None = None,
    captain_id: int | None = None,
) -> Building:
    """Change a building's estate, grid, name, floors and captain; same errors as create."""
    name = name.strip()
    _check_building(
        building.community_id,
        estate_id=estate_id,
        grid_id=grid_id,
        name=name,
        captain_id=captain_id,
        building=building,
    )

    def apply() -> None:
        building.estate_id = estate_id
        building.grid_id = grid_id
        building.name = name
        building.floors = floors
        building.captain_id = captain_id

    _save(apply, "name", _building_message())
    return building


def delete_building(building: Building) -> None:
    """Delete a building without households or entrances; DomainError otherwise."""
    if _exists(select(Household.id).where(Household.building_id == building.id)):
        raise DomainError({"_": _("This building still has households. Delete them first.")})
    if _exists(select(Entrance.id).where(Entrance.building_id == building.id)):
        raise DomainError({"_": _("This building still has entrances. Delete them first.")})
    _delete(building, _("This building is still in use and cannot be deleted."))


# ---------------------------------------------------------------------------------------------
# Entrances


def _entrance_message() -> str:
    return _("This building already has an entrance with this name.")


def _check_entrance(building_id: int, name: str, entrance: Entrance | None) -> None:
    query = select(Entrance.id).where(Entrance.building_id == building_id, Entrance.name == name)
    if entrance is not None:
        query = query.where(Entrance.id != entrance.id)
    if _exists(query):
        raise DomainError({"name": _entrance_message()})


def create_entrance(building: Building, *, name: str) -> Entrance:
    """Add an entrance to a building; DomainError when the building already has that name."""
    name = name.strip()
    _check_entrance(building.id, name, None)
    entrance = Entrance(community_id=building.community_id, building_id=building.id, name=name)
    _save(lambda: db.session.add(entrance), "name", _entrance_message())
    return entrance


def rename_entrance(entrance: Entrance, *, name: str) -> Entrance:
    """Rename an entrance; DomainError when the building already has that name."""
    name = name.strip()
    _check_entrance(entrance.building_id, name, entrance)

    def apply() -> None:
        entrance.name = name

    _save(apply, "name", _entrance_message())
    return entrance


def delete_entrance(entrance: Entrance) -> None:
    """Delete an entrance no household uses; DomainError otherwise."""
    if _exists(select(Household.id).where(Household.entrance_id == entrance.id)):
        raise DomainError(
            {"_": _("Households still use this entrance. Change or delete them first.")}
        )
    _delete(entrance, _("This entrance is still in use and cannot be deleted."))


# ---------------------------------------------------------------------------------------------
# Households


def _household_message() -> str:
    return _("This building already has a household with this room number.")


def _check_household(
    building: Building, room: str, entrance_id: int | None, household: Household | None
) -> None:
    errors: dict[str, str] = {}
    query = select(Household.id).where(Household.building_id == building.id, Household.room == room)
    if household is not None:
        query = query.where(Household.id != household.id)
    if _exists(query):
        errors["room"] = _household_message()
    if entrance_id is not None:
        entrance = db.session.get(Entrance, entrance_id) if entrance_id else None
        if entrance is None or entrance.building_id != building.id:
            errors["entrance_id"] = _("Choose an entrance of this building.")
    if errors:
        raise DomainError(errors)


def create_household(
    building: Building, *, room: str, entrance_id: int | None = None, notes: str = ""
) -> Household:
    """Add a household (room) to a building; DomainError on a taken room or a foreign entrance."""
    room = room.strip()
    _check_household(building, room, entrance_id, None)
    household = Household(
        community_id=building.community_id,
        building_id=building.id,
        entrance_id=entrance_id,
        room=room,
        notes=(notes or "").strip(),
    )
    _save(lambda: db.session.add(household), "room", _household_message())
    return household


def update_household(
    household: Household, *, room: str, entrance_id: int | None = None, notes: str = ""
) -> Household:
    """Change a household's room, entrance and notes; same errors as create_household."""
    room = room.strip()
    _check_household(household.building, room, entrance_id, household)

    def apply() -> None:
        household.room = room
        household.entrance_id = entrance_id
        household.notes = (notes or "").strip()

    _save(apply, "room", _household_message())
    return household


def delete_household(household: Household) -> None:
    """Delete a household without registered residents; DomainError otherwise."""
    if _exists(select(Person.id).where(Person.household_id == household.id)):
        raise DomainError(
            {"_": _("Residents are still registered in this household. Move them first.")}
        )
    _delete(household, _("This household is still in use and cannot be deleted."))


# ---------------------------------------------------------------------------------------------
# Pages of rows and their counts (a fixed number of queries per page)


def _per_page() -> int:
    return current_app.config["PAGE_SIZE"]


def _counts(column, key, ids: list[int]) -> dict[int, int]:
    """How many rows of ``column``'s table point at each of ``ids`` through ``key``."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(key, func.count(column)).where(key.in_(ids)).group_by(key)
    ).all()
    found = dict(rows)
    return {i: found.get(i, 0) for i in ids}


def communities_page(community_ids: list[int], page: int) -> Pagination:
    return db.paginate(
        select(Community).where(Community.id.in_(community_ids)).order_by(Community.name),
        page=page,
        per_page=_per_page(),
        error_out=False,
    )


def community_counts(ids: list[int]) -> dict[int, dict[str, int]]:
    """Grids, estates, buildings and households per community (four grouped queries)."""
    counts = {i: {} for i in ids}
    for key, model in (
        ("grids", Grid),
        ("estates", Estate),
        ("buildings", Building),
        ("households", Household),
    ):
        for community_id, n in _counts(model.id, model.community_id, ids).items():
            counts[community_id][key] = n
    return counts


def grids_page(condition: ColumnElement[bool], page: int) -> Pagination:
    return db.paginate(
        select(Grid)
        .options(selectinload(Grid.workers).joinedload(User.person))
        .where(condition)
        .order_by(Grid.name),
        page=page,
        per_page=_per_page(),
        error_out=False,
    )


def estates_page(community_id: int, page: int) -> Pagination:
    return db.paginate(
        select(Estate).where(Estate.community_id == community_id).order_by(Estate.name),
        page=page,
        per_page=_per_page(),
        error_out=False,
    )


def buildings_page(condition: ColumnElement[bool], page: int) -> Pagination:
    return db.paginate(
        select(Building)
        .options(
            joinedload(Building.estate), joinedload(Building.grid), joinedload(Building.captain)
        )
        .join(Building.estate)
        .where(condition)
        .order_by(Estate.name, Building.name),
        page=page,
        per_page=_per_page(),
        error_out=False,
    )


def households_page(building_id: int, page: int) -> Pagination:
    return db.paginate(
        select(Household)
        .options(joinedload(Household.entrance))
        .where(Household.building_id == building_id)
        .order_by(Household.room),
        page=page,
        per_page=_per_page(),
        error_out=False,
    )


def buildings_per_grid(grids: Iterable[Grid]) -> dict[int, int]:
    return _counts(Building.id, Building.grid_id, [g.id for g in grids])


def buildings_per_estate(estates: Iterable[Estate]) -> dict[int, int]:
    return _counts(Building.id, Building.estate_id, [e.id for e in estates])


def households_per_building(buildings: Iterable[Building]) -> dict[int, int]:
    return _counts(Household.id, Household.building_id, [b.id for b in buildings])


def residents_per_household(households: Iterable[Household]) -> dict[int, int]:
    return _counts(Person.id, Person.household_id, [h.id for h in households])
