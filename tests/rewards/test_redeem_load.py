"""Redemptions under real concurrency, against gunicorn with 4 sync workers (separate processes,
each with its own database connections) on the suite's database (SQLite or PostgreSQL):

1. one volunteer with 100 points clicks "redeem" ten times at once on a 60-point reward with
   10 in stock: one redemption, balance 40, stock 9;
2. ten volunteers with 100 points each redeem the last unit at once: one redemption, stock 0,
   the nine others keep their 100;
3. a secretary's ten parallel hand-over / cancel clicks on one redemption: exactly one wins,
   and a cancellation refunds once.

Nothing answers 5xx, and every cached balance equals the sum of its ledger rows afterwards.
The browser and server helpers are those of tests/patrols/test_signup_load.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.points.models import PointsAccount, PointsEntry
from portal.rewards.models import Redemption, Reward
from tests import factories
from tests.patrols.test_signup_load import (
    Browser,
    _all_at_once,
    _signed_in,
    gunicorn_serving,
)
from tests.rewards.conftest import rw_give_points, rw_make_reward

CLICKS = 10


@pytest.fixture(scope="module")
def rw_server(database_url):
    """gunicorn with 4 sync workers on a free port, serving the suite's database."""
    with gunicorn_serving(database_url) as port:
        yield port


def _fresh() -> None:
    db.session.commit()  # a fresh snapshot: what the server's workers wrote
    db.session.expire_all()


def _balances_equal_ledger_sums() -> None:
    _fresh()
    sums = dict(
        db.session.execute(
            select(PointsEntry.person_id, func.sum(PointsEntry.points)).group_by(
                PointsEntry.person_id
            )
        ).all()
    )
    balances = dict(
        db.session.execute(select(PointsAccount.person_id, PointsAccount.balance)).all()
    )
    assert balances == {person: int(total) for person, total in sums.items()}
    assert all(balance >= 0 for balance in balances.values())


def _balance(person_id: int) -> int:
    _fresh()
    return db.session.scalar(
        select(PointsAccount.balance).where(PointsAccount.person_id == person_id)
    )


def _state(reward_id: int) -> tuple[int, list[Redemption]]:
    _fresh()
    stock = db.session.scalar(select(Reward.stock).where(Reward.id == reward_id))
    rows = list(db.session.scalars(select(Redemption).where(Redemption.reward_id == reward_id)))
    return stock, rows


def test_ten_parallel_clicks_of_one_volunteer_redeem_once(app, world, rw_server):
    person_id = world.a.volunteer.person.id
    rw_give_points(world.a.volunteer.person, 100)
    reward = rw_make_reward(world.a, name="压力测试大米", cost=60, stock=10)
    reward_id = reward.id
    db.session.commit()
    (browser,) = _signed_in(rw_server, ["volunteer_a"], f"/rewards/{reward_id}")

    statuses = _all_at_once([lambda: browser.post(f"/rewards/{reward_id}/redeem")] * CLICKS)

    assert all(status < 500 for status in statuses), statuses
    assert statuses.count(303) == 1, statuses
    stock, rows = _state(reward_id)
    assert stock == 9
    assert [(r.person_id, r.status, r.cost) for r in rows] == [(person_id, "issued", 60)]
    assert _balance(person_id) == 40
    _fresh()
    kinds = db.session.execute(
        select(PointsEntry.kind, PointsEntry.points)
        .where(PointsEntry.person_id == person_id)
        .order_by(PointsEntry.id)
    ).all()
    assert [tuple(k) for k in kinds] == [("adjustment", 100), ("redemption", -60)]
    _balances_equal_ledger_sums()


def test_ten_volunteers_for_the_last_unit_one_gets_it(app, world, rw_server):
    users = [
        factories.make_user("volunteer", world.a.community, username=f"rw_load_{n:02d}")
        for n in range(CLICKS)
    ]
    for user in users:
        rw_give_points(user.person, 100)
    people = [user.person.id for user in users]
    reward = rw_make_reward(world.a, name="最后一件", cost=10, stock=1)
    reward_id = reward.id
    db.session.commit()
    browsers = _signed_in(rw_server, [u.username for u in users], f"/rewards/{reward_id}")

    statuses = _all_at_once([lambda b=b: b.post(f"/rewards/{reward_id}/redeem") for b in browsers])

    assert all(status < 500 for status in statuses), statuses
    assert statuses.count(303) == 1, statuses
    stock, rows = _state(reward_id)
    assert stock == 0
    assert len(rows) == 1
    winner = rows[0].person_id
    assert winner in people
    assert _balance(winner) == 90
    for person_id in people:
        if person_id != winner:
            assert _balance(person_id) == 100
    _balances_equal_ledger_sums()


def test_parallel_hand_over_and_cancel_clicks_win_once(app, world, rw_server):
    person_id = world.a.volunteer.person.id
    rw_give_points(world.a.volunteer.person, 100)
    reward = rw_make_reward(world.a, name="并发取消", cost=60, stock=3)
    reward_id = reward.id
    db.session.commit()
    (buyer,) = _signed_in(rw_server, ["volunteer_a"], f"/rewards/{reward_id}")
    assert buyer.post(f"/rewards/{reward_id}/redeem") == 303
    _stock, (redemption,) = _state(reward_id)
    redemption_id = redemption.id
    (secretary,) = _signed_in(rw_server, ["secretary_a"], "/rewards/redemptions")

    def click(n: int):
        action = "cancel" if n % 2 else "hand-over"

        def call() -> int:
            status, _headers, _text = secretary.request(
                "POST",
                f"/rewards/redemptions/{redemption_id}/{action}",
                {"reason": f"click {n}"},
                headers={"X-CSRFToken": secretary.csrf},
            )
            return status

        return call

    statuses = _all_at_once([click(n) for n in range(CLICKS)])

    assert all(status < 500 for status in statuses), statuses
    stock, (after,) = _state(reward_id)
    _fresh()
    reversals = db.session.scalar(
        select(func.count(PointsEntry.id)).where(
            PointsEntry.person_id == person_id, PointsEntry.kind == "reversal"
        )
    )
    if after.status == "cancelled":
        assert (stock, reversals, _balance(person_id)) == (3, 1, 100)
    else:
        assert after.status == "handed_over"
        assert (stock, reversals, _balance(person_id)) == (2, 0, 40)
    _balances_equal_ledger_sums()


def test_browser_helper_is_shared(rw_server):
    """The helpers come from the patrols load test; a sanity check that they still answer."""
    assert Browser(rw_server).request("GET", "/healthz")[0] == 200
