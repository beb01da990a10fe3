"""Figures per grid and community, on a small data set whose numbers are known."""

from __future__ import annotations

from datetime import timedelta

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.figures import clamp_days, compute_figures
from tests.help.conftest import hd_make_request


def _data(hd_world):
    a = hd_world.a
    now = now_utc()
    t0 = now - timedelta(days=3)

    def make(grid, status, accept_min=None, close_min=None, rating=None, limit_h=24, **kw):
        req = hd_make_request(a, a.hd.light, status, grid_id=grid.id, created_at=t0,
                              due_at=t0 + timedelta(hours=limit_h), **kw)  # fmt: skip
        req.accepted_at = t0 + timedelta(minutes=accept_min) if accept_min is not None else None
        req.verified_at = t0 + timedelta(minutes=close_min) if close_min is not None else None
        req.rating = rating
        return req

    make(a.grid, "rated", accept_min=10, close_min=120, rating=5)
    make(a.grid, "verified", accept_min=20, close_min=60 * 30)  # closed after its 24 h limit
    make(a.grid, "accepted", accept_min=30)
    make(a.grid, "submitted")
    make(a.grid2, "rated", accept_min=5, close_min=600, rating=3)
    # Outside the period, and in community B: not counted.
    hd_make_request(a, a.hd.light, "rated", created_at=now - timedelta(days=40), rating=1)
    hd_make_request(hd_world.b, hd_world.b.hd.light, "rated", rating=1)
    db.session.commit()
    return now


def test_figures_numbers(hd_world):
    now = _data(hd_world)
    a = hd_world.a
    [community] = compute_figures([a.community.id], days=30, now=now)
    grids = {f.grid_id: f for f in community.grids}
    g1, g2, total = grids[a.grid.id], grids[a.grid2.id], community.total
    assert (g1.requests_in, g1.closed) == (4, 2)
    assert g1.median_accept_minutes == 20
    assert g1.median_close_minutes == (120 + 1800) // 2
    assert g1.within_limit_percent == 50
    assert g1.average_rating == 5.0
    assert (g2.requests_in, g2.closed, g2.median_accept_minutes) == (1, 1, 5)
    assert (g2.median_close_minutes, g2.within_limit_percent, g2.average_rating) == (600, 100, 3.0)
    assert (total.requests_in, total.closed) == (5, 3)
    assert total.median_accept_minutes == 15  # of 5, 10, 20, 30
    assert total.median_close_minutes == 600
    assert total.within_limit_percent == 67
    assert total.average_rating == 4.0
    # A grid worker's view is limited to their grids.
    [limited] = compute_figures([a.community.id], [a.grid.id], days=30, now=now)
    assert [f.grid_id for f in limited.grids] == [a.grid.id]
    assert limited.total.requests_in == 4


def test_clamp_days():
    assert [clamp_days(x) for x in (None, "7", "0", "abc", "9999")] == [30, 7, 1, 30, 366]


def test_figures_page(client, auth, hd_world):
    _data(hd_world)
    client.post("/language", data={"lang": "en"})
    auth.login("gridworker_a")
    body = client.get("/handling/figures?days=14").get_data(as_text=True)
    assert "Your grids together" in body and hd_world.a.grid.name in body
    assert hd_world.a.grid2.name not in body
    assert "Median minutes to accept" in body and "50%" in body
    auth.logout()
    auth.login("secretary_a")
    body = client.get("/handling/figures").get_data(as_text=True)
    assert "Whole community" in body and hd_world.a.grid2.name in body and "67%" in body
    assert hd_world.b.community.name not in body
    assert client.get("/handling").get_data(as_text=True).count("/handling/figures") >= 1
    auth.logout()
    auth.login("admin_a")
    body = client.get("/handling/figures").get_data(as_text=True)
    assert hd_world.a.community.name in body and hd_world.b.community.name not in body
