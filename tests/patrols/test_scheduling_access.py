"""Who may schedule: every scheduling route for every role and anonymous; grid workers only in
their grids; community A never reads nor changes community B's shifts and series."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.patrols import scheduling
from tests.patrols.conftest import SCHED_HX, sched_form, sched_plan

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
DAY = timedelta(days=1)


@pytest.fixture
def plans(world, sched_request):
    """In A and B: a shift and a weekly series in grid 1; in A also a shift in grid 2."""

    def shift(side, grid=None):
        plan = sched_plan(side, grid_id=(grid or side.grid).id, route=[])
        return scheduling.create_shift(side.community.id, None, plan, local_today() + 2 * DAY)

    def series(side):
        return scheduling.create_series(
            side.community.id,
            None,
            sched_plan(side),
            weekdays=["MO", "FR"],
            starts_on=local_today() + DAY,
            ends_on=local_today() + 30 * DAY,
        )

    made = SimpleNamespace(
        a_shift=shift(world.a),
        a_shift2=shift(world.a, world.a.grid2),
        a_series=series(world.a),
        b_shift=shift(world.b),
        b_series=series(world.b),
    )
    db.session.commit()
    return made


def routes(world, plans, shift, series) -> list[tuple[str, str, dict]]:
    """Every scheduling route as (method, url, form data that would succeed)."""
    day = local_today() + 3 * DAY
    start = series.starts_on
    return [
        ("GET", "/shifts/new", {}),
        ("POST", "/shifts/new", sched_form(world.a, day, **{"route-0-building_id": ""})),
        ("GET", f"/shifts/{shift.id}/edit", {}),
        (
            "POST",
            f"/shifts/{shift.id}/edit",
            sched_form(world.a, day, **{"route-0-building_id": ""}),
        ),
        ("POST", f"/shifts/{shift.id}/cancel-shift", {"reason": "测试"}),
        ("GET", "/series/new", {}),
        ("GET", f"/series/{series.id}", {}),
        ("GET", f"/series/{series.id}/edit?from={start}", {}),
        (
            "POST",
            f"/series/{series.id}/edit",
            {
                "from": start.isoformat(),
                "title": "改",
                "start_time": "18:00",
                "end_time": "19:00",
                "capacity": "5",
                "minimum": "1",
            },
        ),  # fmt: skip
        ("POST", f"/series/{series.id}/cancel", {"from": start.isoformat()}),
        ("GET", "/coverage", {}),
        ("GET", f"/schedule/route-stops?grid_id={world.a.grid.id}", {}),
    ]


def expected(role: str, method: str, url: str, series_id: int) -> int | str:
    """What ``role`` gets on A's own rows (grid 1); "ok" is 200 or 303."""
    if role == "anonymous":
        return 302
    if role in ("resident", "volunteer"):
        return 403
    if role == "subdistrict_admin":
        readable = url == "/coverage" or (method == "GET" and url == f"/series/{series_id}")
        return "ok" if readable else 403
    if url.startswith("/schedule/route-stops"):
        return 303  # without htmx: back to the new-shift page
    return "ok"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_for_every_role(client, auth, world, plans, role):
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    for method, url, data in routes(world, plans, plans.a_shift, plans.a_series):
        response = client.open(url, method=method, data=data)
        want = expected(role, method, url, plans.a_series.id)
        if want == "ok":
            assert response.status_code in (200, 303), (role, method, url, response.status_code)
            if response.status_code == 200 and method == "POST":
                pytest.fail(f"{url} refused valid data: {response.get_data(as_text=True)[:300]}")
        else:
            assert response.status_code == want, (role, method, url, response.status_code)
        if want == 302:
            assert response.headers["Location"].startswith("/login")


def test_anonymous_htmx_is_sent_to_login(client, world, plans):
    for method, url, data in routes(world, plans, plans.a_shift, plans.a_series):
        response = client.open(url, method=method, data=data, headers=SCHED_HX)
        assert response.headers.get("HX-Redirect", "").startswith("/login"), url


def test_grid_worker_outside_their_grids_gets_404(client, auth, world, plans):
    auth.login("gridworker_a")
    before = snapshot()
    shift = plans.a_shift2
    day = local_today() + 3 * DAY
    for method, url, data in [
        ("GET", f"/shifts/{shift.id}/edit", {}),
        (
            "POST",
            f"/shifts/{shift.id}/edit",
            sched_form(world.a, day, grid_id=str(world.a.grid2.id)),
        ),
        ("POST", f"/shifts/{shift.id}/cancel-shift", {}),
    ]:
        assert client.open(url, method=method, data=data).status_code == 404, url
    assert snapshot() == before


def test_grid_worker_series_of_another_grid_is_404(client, auth, world, sched_request):
    series = scheduling.create_series(
        world.a.community.id,
        None,
        sched_plan(world.a, grid_id=world.a.grid2.id, route=[]),
        weekdays=["TU"],
        starts_on=local_today() + DAY,
        ends_on=local_today() + 20 * DAY,
    )
    db.session.commit()
    auth.login("gridworker_a")
    before = snapshot()
    for method, url in [
        ("GET", f"/series/{series.id}"),
        ("GET", f"/series/{series.id}/edit"),
        ("POST", f"/series/{series.id}/edit"),
        ("POST", f"/series/{series.id}/cancel"),
    ]:
        assert (
            client.open(url, method=method, data={"from": local_today().isoformat()}).status_code
            == 404
        )
    assert snapshot() == before


def snapshot() -> dict[str, list]:
    """Every row of the tables scheduling may write."""
    rows = {}
    for table in ("shift", "shift_series", "signup", "notification"):
        rows[table] = sorted(
            map(tuple, db.session.execute(text(f'SELECT * FROM "{table}"')).all()), key=repr
        )
    db.session.commit()
    return rows


@pytest.mark.parametrize("role", ROLES[1:])
@pytest.mark.parametrize("htmx", [False, True])
def test_community_a_cannot_touch_community_b(client, auth, world, plans, role, htmx):
    auth.login(world.a.users[role].username)
    headers = SCHED_HX if htmx else {}
    before = snapshot()
    for method, url, data in routes(world, plans, plans.b_shift, plans.b_series):
        if str(plans.b_shift.id) not in url.split("?")[0].split("/") and str(
            plans.b_series.id
        ) not in url.split("?")[0].split("/"):
            continue  # routes without an id are covered above
        response = client.open(url, method=method, data=data, headers=headers)
        if htmx:
            assert response.headers.get("HX-Retarget") == "#flash", (method, url)
        elif role in ("resident", "volunteer") or (
            role == "subdistrict_admin" and (method == "POST" or "/edit" in url)
        ):
            assert response.status_code == 403, (role, method, url, response.status_code)
        else:
            assert response.status_code == 404, (role, method, url, response.status_code)
        assert world.b.grid.name not in response.get_data(as_text=True)
    assert snapshot() == before


def test_route_stops_of_another_community_grid(client, auth, world):
    auth.login("secretary_a")
    url = f"/schedule/route-stops?grid_id={world.b.grid.id}"
    assert client.get(url, headers=SCHED_HX).headers.get("HX-Retarget") == "#flash"
    assert client.get(url).status_code == 404


def test_csrf_is_required(client, auth, world, plans):
    auth.login("secretary_a")
    response = client.post(
        f"/shifts/{plans.a_shift.id}/cancel-shift", data={"reason": "x"}, csrf=False
    )
    assert response.status_code == 400
    db.session.commit()
    assert db.session.get(type(plans.a_shift), plans.a_shift.id).status == "scheduled"
