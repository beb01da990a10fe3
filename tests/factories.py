"""Factories that put valid rows in the database directly (no HTTP); each flushes and commits,
except inside ``batch()``, where they only flush and the batch commits once at its end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from werkzeug.security import generate_password_hash

from portal.auth.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.people.models import Person
from portal.places.models import Building, Community, Entrance, Estate, Grid, Household, Subdistrict
from portal.volunteers.models import Volunteer, VolunteerType

PASSWORD = "tongxin-test-pass"
# Cheap scrypt parameters: the suite signs in hundreds of times; production uses the defaults.
_HASH = generate_password_hash(PASSWORD, method="scrypt:1024:8:1")
_seq = itertools.count(1)

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")


_batching = False


@contextmanager
def batch() -> Iterator[None]:
    """Flush each row instead of committing it, and commit once at the end: a commit expires
    every loaded object, so committing row by row reloads them again and again."""
    global _batching
    outer = _batching
    _batching = True
    try:
        yield
    finally:
        _batching = outer
    if not outer:
        db.session.commit()


def _save(obj) -> None:
    db.session.add(obj)
    if _batching:
        db.session.flush()
    else:
        db.session.commit()


def _n() -> int:
    return next(_seq)


def _phone() -> str:
    return f"139{_n():08d}"


def make_subdistrict(**kw) -> Subdistrict:
    obj = Subdistrict(name=kw.pop("name", f"街道{_n()}"), **kw)
    _save(obj)
    return obj


def make_community(subdistrict: Subdistrict | None = None, **kw) -> Community:
    subdistrict = subdistrict or make_subdistrict()
    obj = Community(subdistrict_id=subdistrict.id, name=kw.pop("name", f"社区{_n()}"), **kw)
    _save(obj)
    return obj


def make_grid(community: Community, **kw) -> Grid:
    obj = Grid(community_id=community.id, name=kw.pop("name", f"第{_n()}网格"), **kw)
    _save(obj)
    return obj


def make_estate(community: Community, **kw) -> Estate:
    obj = Estate(community_id=community.id, name=kw.pop("name", f"小区{_n()}"), **kw)
    _save(obj)
    return obj


def make_building(estate: Estate, grid: Grid, **kw) -> Building:
    obj = Building(
        community_id=estate.community_id,
        estate_id=estate.id,
        grid_id=grid.id,
        name=kw.pop("name", f"{_n()}号楼"),
        **kw,
    )
    _save(obj)
    return obj


def make_entrance(building: Building, **kw) -> Entrance:
    obj = Entrance(
        community_id=building.community_id,
        building_id=building.id,
        name=kw.pop("name", f"{_n()}单元"),
        **kw,
    )
    _save(obj)
    return obj


def make_household(building: Building, **kw) -> Household:
    obj = Household(
        community_id=building.community_id,
        building_id=building.id,
        room=kw.pop("room", str(100 + _n())),
        **kw,
    )
    _save(obj)
    return obj


def make_person(community: Community, **kw) -> Person:
    household = kw.get("household")
    obj = Person(
        community_id=community.id,
        name=kw.pop("name", f"居民{_n()}"),
        phone=kw.pop("phone", _phone()),
        **kw,
    )
    if household is not None:
        obj.household = household
    _save(obj)
    return obj


def make_user(role: str = "resident", community: Community | None = None, **kw) -> User:
    """An account; staff and residents get a person record in ``community`` too."""
    username = kw.pop("username", f"user{_n()}")
    grids = kw.pop("grids", [])
    if role == "subdistrict_admin":
        subdistrict_id = kw.pop("subdistrict_id", None) or (
            community.subdistrict_id if community else make_subdistrict().id
        )
        user = User(username=username, role=role, subdistrict_id=subdistrict_id, **kw)
    else:
        community = community or make_community()
        person = kw.pop("person", None) or make_person(
            community, name=kw.pop("name", f"用户{_n()}"), household=kw.pop("household", None)
        )
        user = User(username=username, role=role, community_id=community.id, person=person, **kw)
    user.password_hash = _HASH
    user.grids = list(grids)
    _save(user)
    return user


def make_volunteer(
    person: Person,
    types: tuple[str, ...] = ("red_armband",),
    status: str = "approved",
    **kw,
) -> Volunteer:
    obj = Volunteer(community_id=person.community_id, person_id=person.id, status=status, **kw)
    obj.type_links = [VolunteerType(type=t) for t in types]
    if status != "pending":
        obj.decided_at = utcnow()
    _save(obj)
    return obj


def build_community(key: str, subdistrict: Subdistrict) -> SimpleNamespace:
    """One community with two grids and a user of every role (usernames end in ``_key``)."""
    community = make_community(subdistrict, name=f"社区{key.upper()}")
    grid1 = make_grid(community, name=f"{key.upper()}一网格")
    grid2 = make_grid(community, name=f"{key.upper()}二网格")
    estate = make_estate(community, name=f"{key.upper()}花园")
    building = make_building(estate, grid1, name="1号楼")
    building2 = make_building(estate, grid2, name="2号楼")
    entrance = make_entrance(building, name="1单元")
    household = make_household(building, room="101", entrance_id=entrance.id)
    household2 = make_household(building2, room="201")
    resident = make_user("resident", community, username=f"resident_{key}", household=household)
    volunteer = make_user("volunteer", community, username=f"volunteer_{key}", household=household)
    make_volunteer(volunteer.person, ("red_armband",), grid_id=grid1.id, armband_no=f"{key}-0001")
    pending = make_user("resident", community, username=f"pending_{key}", household=household2)
    pending_volunteer = make_volunteer(
        pending.person, ("party_member",), status="pending", grid_id=grid2.id
    )
    gridworker = make_user("grid_worker", community, username=f"gridworker_{key}", grids=[grid1])
    secretary = make_user("secretary", community, username=f"secretary_{key}")
    admin = make_user("subdistrict_admin", subdistrict_id=subdistrict.id, username=f"admin_{key}")
    return SimpleNamespace(
        subdistrict=subdistrict,
        community=community,
        grid=grid1,
        grid2=grid2,
        estate=estate,
        building=building,
        building2=building2,
        entrance=entrance,
        household=household,
        household2=household2,
        resident=resident,
        volunteer=volunteer,
        pending=pending,
        pending_volunteer=pending_volunteer,
        gridworker=gridworker,
        secretary=secretary,
        admin=admin,
        users={
            "resident": resident,
            "volunteer": volunteer,
            "grid_worker": gridworker,
            "secretary": secretary,
            "subdistrict_admin": admin,
        },
    )


def build_world() -> SimpleNamespace:
    """Communities A and B, each in its own subdistrict, so every role has an outsider."""
    with batch():
        a = build_community("a", make_subdistrict(name="东城街道"))
        b = build_community("b", make_subdistrict(name="西城街道"))
    return SimpleNamespace(a=a, b=b)
