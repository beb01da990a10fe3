"""The scene of the care tests over HTTP: world A with a neighbour-help category and volunteers
of both sexes in grid 1; world B the same category, for isolation checks."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.help.models import Category
from tests import factories


@pytest.fixture
def care_world(world):
    """World A with a neighbour-help category, a second (female) volunteer of grid 1, and a
    male volunteer of grid 1; world B the same category for isolation checks."""
    for side in (world.a, world.b):
        major = Category(
            community_id=side.community.id, code="help", name_zh="邻里互助",
            name_en="Neighbour help", kind="neighbour_help",
        )  # fmt: skip
        db.session.add(major)
        db.session.flush()
        side.category = Category(
            community_id=side.community.id, parent_id=major.id, code="help.shopping",
            name_zh="代购", name_en="Shopping", kind="neighbour_help", handler="grid_worker",
            time_limit_hours=24,
        )  # fmt: skip
        db.session.add(side.category)
    a = world.a
    a.volunteer.person.sex = "male"
    a.helper = factories.make_user("volunteer", a.community, username="helper_a")
    a.helper.person.sex = "female"
    factories.make_volunteer(a.helper.person, ("five_elders",), grid_id=a.grid.id)
    db.session.commit()
    return world
