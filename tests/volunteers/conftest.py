"""Helpers for the volunteers tests: English messages, applicants, reading rows back."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.extensions import db
from portal.places.models import Community
from portal.volunteers.models import Volunteer
from tests import factories, helpers

HX = {"HX-Request": "true"}


@pytest.fixture
def english(client):
    """Show English messages (the default is Chinese)."""
    response = client.post("/language", data={"lang": "en"})
    assert response.status_code == 303


def make_applicant(
    side,
    types: tuple[str, ...] = ("red_armband",),
    status: str = "pending",
    grid=None,
    name: str | None = None,
    role: str = "resident",
    **kw,
) -> Volunteer:
    """A new account in ``side`` (world.a / world.b) with a registration in ``grid``."""
    grid = grid or side.grid
    user = factories.make_user(
        role, side.community, household=side.household, **({"name": name} if name else {})
    )
    return factories.make_volunteer(
        user.person, types, status=status, grid_id=grid.id if grid else None, **kw
    )


def reload(volunteer: Volunteer) -> Volunteer:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.get(Volunteer, volunteer.id)


def volunteer_of(person_id: int) -> Volunteer | None:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.scalar(select(Volunteer).where(Volunteer.person_id == person_id))


def volunteer_count() -> int:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.scalar(select(func.count(Volunteer.id)))


def armband_seq(community: Community) -> int:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.scalar(select(Community.armband_seq).where(Community.id == community.id))


def role_of(user: User) -> str:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.scalar(select(User.role).where(User.id == user.id))


def snapshot(volunteer: Volunteer) -> tuple:
    """Every column that a decision could change."""
    v = reload(volunteer)
    return (
        v.status,
        v.armband_no,
        v.decided_at,
        v.decided_by_id,
        v.rejection_reason,
        v.party_reported_on,
    )


count_queries = helpers.count_queries
