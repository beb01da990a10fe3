"""Coverage: the next 14 days per grid, shifts below their minimum flagged (class and text), one
click to a shift, scope per role, and a fixed number of queries."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest

from portal.core.timeutil import local_to_utc, local_today
from portal.extensions import db
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Shift
from tests import factories
from tests.patrols.conftest import SCHED_HX, sched_count_queries

DAY = timedelta(days=1)


def put_shift(side, days_ahead: int, *, grid=None, title="巡逻", taken=0, minimum=2, **kw) -> Shift:
    """A shift at 19:00 local, ``days_ahead`` days from today, in ``side`` (world.a / world.b)."""
    day = local_today() + days_ahead * DAY
    community_id = kw.pop("community_id", None) or side.community.id
    shift = Shift(
        community_id=community_id,
        grid_id=(grid or side.grid).id,
        kind="patrol",
        title=title,
        starts_at=local_to_utc(day, time(19)),
        ends_at=local_to_utc(day, time(21)),
        capacity=kw.pop("capacity", 5),
        minimum=minimum,
        taken=taken,
        checkin_code=new_checkin_code(),
        **kw,
    )
    db.session.add(shift)
    db.session.commit()
    return shift


def slot(body: str, shift: Shift) -> str:
    """The coverage link of one shift."""
    found = re.search(rf'<a id="slot-{shift.id}"[^>]*>.*?</a>', body, re.S)
    assert found, f"shift {shift.id} not shown"
    return found.group(0)


@pytest.fixture
def spread(world):
    a = world.a
    return {
        "low": put_shift(a, 1, title="人手不足", taken=1, minimum=2),
        "ok": put_shift(a, 2, title="人手够了", taken=2, minimum=2),
        "grid2": put_shift(a, 3, grid=a.grid2, title="二网格巡逻", taken=3),
        "late": put_shift(a, 14, title="两周以后"),
        "past": put_shift(a, -1, title="昨天的"),
        "cancelled": put_shift(a, 4, title="取消了", status="cancelled"),
        "b": put_shift(world.b, 1, title="西城巡逻"),
    }


def test_secretary_sees_every_grid_for_14_days(client, auth, world, spread, sched_english):
    auth.login("secretary_a")
    response = client.get("/coverage")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="coverage"' in body
    assert f'id="coverage-grid-{world.a.grid.id}"' in body
    assert f'id="coverage-grid-{world.a.grid2.id}"' in body
    for key in ("low", "ok", "grid2"):
        assert f'href="/shifts/{spread[key].id}"' in body
    for title in ("两周以后", "昨天的", "取消了", "西城巡逻"):
        assert title not in body
    assert body.count('<th scope="col">') == 15  # the grid column and 14 days
    assert "1 shift is below its minimum." in body
    assert 'href="/shifts/new"' in body and 'href="/series/new"' in body
    assert f'href="/shifts/new?grid_id={world.a.grid2.id}"' in body


def test_below_minimum_is_flagged_by_class_and_text(client, auth, world, spread, sched_english):
    auth.login("secretary_a")
    body = client.get("/coverage").get_data(as_text=True)
    low, ok = slot(body, spread["low"]), slot(body, spread["ok"])
    assert 'class="slot below-minimum"' in low and "Below minimum" in low
    assert "1 of 5 (minimum 2)" in low
    assert "below-minimum" not in ok and "Below minimum" not in ok
    assert "2 of 5 (minimum 2)" in ok
    assert "19:00–21:00" in low


def test_grid_worker_sees_their_grids(client, auth, world, spread):
    auth.login("gridworker_a")
    body = client.get("/coverage").get_data(as_text=True)
    assert f'id="coverage-grid-{world.a.grid.id}"' in body
    assert f'id="coverage-grid-{world.a.grid2.id}"' not in body
    assert "二网格巡逻" not in body and "人手不足" in body
    assert 'href="/shifts/new"' in body


def test_subdistrict_admin_chooses_a_community(client, auth, world, spread):
    a = world.a
    other = factories.make_community(a.subdistrict, name="社区C")
    other_grid = factories.make_grid(other, name="C一网格")
    put_shift(a, 2, grid=other_grid, community_id=other.id, title="C社区巡逻")
    auth.login("admin_a")
    body = client.get("/coverage").get_data(as_text=True)
    assert 'name="community"' in body and "社区C" in body
    # Read-only: no scheduling buttons.
    assert 'href="/shifts/new' not in body and 'href="/series/new"' not in body
    assert "人手不足" in body  # 社区A comes first by name
    body = client.get(f"/coverage?community={other.id}").get_data(as_text=True)
    assert "C社区巡逻" in body and "人手不足" not in body
    fragment = client.get(f"/coverage?community={other.id}", headers=SCHED_HX)
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and text.lstrip().startswith('<div id="coverage">')
    assert "HX-Request" in fragment.headers.get("Vary", "")
    assert client.get(f"/coverage?community={world.b.community.id}").status_code == 404


def test_coverage_runs_a_fixed_number_of_queries(client, auth, world):
    auth.login("secretary_a")
    put_shift(world.a, 1)
    client.get("/coverage")
    with sched_count_queries() as few:
        assert client.get("/coverage").status_code == 200
    for n in range(30):
        put_shift(world.a, n % 14, grid=world.a.grid2 if n % 2 else world.a.grid, taken=n % 3)
    factories.make_grid(world.a.community, name="三网格")
    with sched_count_queries() as many:
        assert client.get("/coverage").status_code == 200
    assert few["n"] == many["n"]


def test_empty_coverage(client, auth, world, sched_english):
    auth.login("secretary_a")
    body = client.get("/coverage").get_data(as_text=True)
    assert "Every shift has at least its minimum." in body
