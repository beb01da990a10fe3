"""Fixtures shared by the help tests. Each helper's fixtures carry its prefix (in_, ...)."""

from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from PIL import Image

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import Category, HelpRequest, RequestEvent
from tests import helpers

# --- intake (submitting, the request page) ----------------------------------------------------

IN_HX = {"HX-Request": "true"}


def in_make_catalogue(community) -> SimpleNamespace:
    """A small catalogue: one major with a report minor (grid worker, 24 h) and a neighbour-help
    minor (volunteer pool, 48 h)."""
    major = Category(
        community_id=community.id, code="repair", name_zh="物业报修", name_en="Property repair",
        kind="report",
    )  # fmt: skip
    help_major = Category(
        community_id=community.id, code="help", name_zh="邻里互助", name_en="Neighbour help",
        kind="neighbour_help", position=1,
    )  # fmt: skip
    db.session.add_all([major, help_major])
    db.session.flush()
    water = Category(
        community_id=community.id, parent_id=major.id, code="repair.water", name_zh="水管漏水",
        name_en="Water leak", kind="report", handler="grid_worker", time_limit_hours=24,
    )  # fmt: skip
    shopping = Category(
        community_id=community.id, parent_id=help_major.id, code="help.shopping",
        name_zh="代买菜", name_en="Shopping", kind="neighbour_help", handler="volunteer_pool",
        time_limit_hours=48,
    )  # fmt: skip
    db.session.add_all([water, shopping])
    db.session.commit()
    return SimpleNamespace(major=major, help_major=help_major, water=water, shopping=shopping)


def in_make_request(side, category, *, status="submitted", requester=None, **kw) -> HelpRequest:
    """A request of ``side`` (world.a / world.b) by its resident, with its submit event."""
    now = now_utc()
    requester = requester or side.resident
    req = HelpRequest(
        community_id=side.community.id,
        grid_id=kw.pop("grid_id", side.grid.id),
        category_id=category.id,
        requester_id=requester.person.id,
        created_by_id=requester.id,
        description=kw.pop("description", "厨房水管漏水"),
        household_id=kw.pop("household_id", side.household.id),
        status=status,
        handler_user_id=kw.pop("handler_user_id", side.gridworker.id),
        due_at=kw.pop("due_at", now + timedelta(hours=24)),
        created_at=kw.pop("created_at", now),
        **kw,
    )
    db.session.add(req)
    db.session.flush()
    db.session.add(
        RequestEvent(
            community_id=req.community_id, request_id=req.id, actor_id=requester.id,
            action="submit", to_status="submitted", at=now,
        )
    )  # fmt: skip
    db.session.commit()
    return req


def in_image(fmt: str = "PNG", size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def in_uploads(app, tmp_path):
    """Photos go to a throw-away instance folder."""
    previous = app.instance_path
    app.instance_path = str(tmp_path)
    yield tmp_path / "uploads"
    app.instance_path = previous


@pytest.fixture
def in_world(world):
    """The world with a catalogue in each community (world.a.cat / world.b.cat)."""
    world.a.cat = in_make_catalogue(world.a.community)
    world.b.cat = in_make_catalogue(world.b.community)
    return world


# --- catalogue and Open311 (cat_) -------------------------------------------------------------


def cat_category(community, code: str) -> Category:
    from sqlalchemy import select

    return db.session.scalar(
        select(Category).where(Category.community_id == community.id, Category.code == code)
    )


@pytest.fixture
def cat_world(world):
    """The world with the default catalogue seeded in both communities."""
    from portal.help.catalogue import seed_catalogue

    seed_catalogue(world.a.community.id)
    seed_catalogue(world.b.community.id)
    db.session.commit()
    for side in (world.a, world.b):
        side.cat_water = cat_category(side.community, "repair.water")
        side.cat_shopping = cat_category(side.community, "help.shopping")
        side.cat_repair = cat_category(side.community, "repair")
    return world


@pytest.fixture
def cat_keys(cat_world):
    """An API key of each community: world.a.cat_key (full key) and world.a.cat_key_row."""
    from portal.help.apikeys import create_api_key

    for side in (cat_world.a, cat_world.b):
        side.cat_key_row, side.cat_key = create_api_key(
            side.community.id, "12345平台", side.secretary.id
        )
    db.session.commit()
    return cat_world


# --- handling (queue, actions, board, escalation, figures: hd_) ------------------------------

HD_HX = {"HX-Request": "true"}


def hd_catalogue(community) -> SimpleNamespace:
    """A report category (grid worker, 24 h) and a neighbour-help one (volunteer pool, 48 h)."""
    report = Category(
        community_id=community.id, code="hd", name_zh="报事", name_en="Reports", kind="report",
    )  # fmt: skip
    neighbour = Category(
        community_id=community.id, code="hdhelp", name_zh="互助", name_en="Help",
        kind="neighbour_help",
    )  # fmt: skip
    db.session.add_all([report, neighbour])
    db.session.flush()
    light = Category(
        community_id=community.id, parent_id=report.id, code="hd.light", name_zh="楼道灯坏",
        name_en="Stair light broken", kind="report", handler="grid_worker", time_limit_hours=24,
    )  # fmt: skip
    shopping = Category(
        community_id=community.id, parent_id=neighbour.id, code="hdhelp.shopping",
        name_zh="代买菜", name_en="Grocery shopping", kind="neighbour_help",
        handler="volunteer_pool", time_limit_hours=48,
    )  # fmt: skip
    db.session.add_all([light, shopping])
    db.session.commit()
    return SimpleNamespace(light=light, shopping=shopping)


# Which timestamps a request in each state already has.
HD_STAMPS = {
    "submitted": (),
    "accepted": ("accepted_at",),
    "dispatched": ("accepted_at", "dispatched_at"),
    "done": ("accepted_at", "dispatched_at", "done_at"),
    "verified": ("accepted_at", "dispatched_at", "done_at", "verified_at", "closed_at"),
    "rated": ("accepted_at", "dispatched_at", "done_at", "verified_at", "rated_at", "closed_at"),
    "rejected": ("closed_at",),
    "cancelled": ("closed_at",),
}


def hd_make_request(side, category, status="submitted", **kw) -> HelpRequest:
    """A request of ``side`` by its resident in grid 1, in ``status`` with fitting timestamps;
    a held state (dispatched onwards) is held by the side's volunteer unless ``volunteer_id``."""
    now = kw.pop("now", None) or now_utc()
    created_at = kw.pop("created_at", now - timedelta(hours=2))
    held = status in ("dispatched", "done", "verified", "rated")
    handler = side.gridworker.id if status != "submitted" else None
    req = HelpRequest(
        community_id=side.community.id,
        grid_id=kw.pop("grid_id", side.grid.id),
        category_id=category.id,
        requester_id=kw.pop("requester_id", side.resident.person.id),
        created_by_id=kw.pop("created_by_id", side.resident.id),
        description=kw.pop("description", "楼道灯不亮了"),
        household_id=kw.pop("household_id", side.household.id),
        status=status,
        handler_user_id=kw.pop("handler_user_id", handler),
        volunteer_id=kw.pop("volunteer_id", side.volunteer.person.id if held else None),
        due_at=kw.pop("due_at", created_at + timedelta(hours=24)),
        created_at=created_at,
        **{stamp: now - timedelta(hours=1) for stamp in HD_STAMPS[status]},
        **kw,
    )  # fmt: skip
    db.session.add(req)
    db.session.commit()
    return req


@pytest.fixture
def hd_world(world):
    """The world with two categories in each community (world.a.hd.light / .shopping)."""
    world.a.hd = hd_catalogue(world.a.community)
    world.b.hd = hd_catalogue(world.b.community)
    return world


hd_reload = helpers.reload


hd_count_queries = helpers.count_queries
