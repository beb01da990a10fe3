"""Redeeming in the shop: points and stock move together, the voucher is shown, and every
refusal (not enough points, the per-person limit, inactive, out of window, sold out) changes
nothing. Also the shop list, one's own redemptions, and their query counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points.models import PointsAccount, PointsEntry
from portal.rewards import services
from portal.rewards.models import Redemption, Reward
from tests import factories
from tests.rewards.conftest import (
    RW_HX,
    rw_balance,
    rw_count_queries,
    rw_give_points,
    rw_ledger_rows,
    rw_ledger_sum,
    rw_make_reward,
    rw_redeemed,
    rw_redemptions,
    rw_stock,
)


def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def buyer(world):
    """volunteer_a with 100 points."""
    rw_give_points(world.a.volunteer.person, 100, world.a.secretary)
    return world.a.volunteer


def test_redeem_moves_points_and_stock_together(client, auth, world, buyer, rw_english):
    reward = rw_make_reward(world.a, name="Rice", cost=60, stock=3)
    person_id = buyer.person.id
    auth.login("volunteer_a")
    response = client.post(f"/rewards/{reward.id}/redeem")
    assert response.status_code == 303
    (redemption,) = rw_redemptions(reward.id)
    assert response.headers["Location"] == f"/rewards/vouchers/{redemption.id}"
    assert (redemption.person_id, redemption.cost, redemption.status) == (person_id, 60, "issued")
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}", redemption.voucher_code)
    assert rw_stock(reward.id) == 2
    assert rw_balance(person_id) == 40
    assert rw_ledger_rows(person_id) == [("adjustment", 100), ("redemption", -60)]
    assert rw_ledger_sum(person_id) == 40
    entry = db.session.scalars(select(PointsEntry).where(PointsEntry.kind == "redemption")).one()
    assert (entry.source_type, entry.source_id, entry.ranked) == (
        "redemption",
        redemption.id,
        False,
    )
    assert entry.note == "Rice"
    # Spending is not earning: the leaderboard figure stays.
    assert db.session.get(PointsAccount, person_id).earned == 100

    page = _text(client.get(response.headers["Location"]))
    assert f'id="voucher-code">{redemption.voucher_code}<' in page
    assert "Show this to the community office" in page
    assert 'src="data:image/svg+xml' in page  # the QR code of the voucher
    assert "60 points were taken from your balance" in page


def test_the_shop_and_mine_show_the_new_balance_and_voucher(client, auth, world, buyer):
    reward = rw_make_reward(world.a, name="Rice", cost=60, stock=3)
    auth.login("volunteer_a")
    client.post(f"/rewards/{reward.id}/redeem")
    (redemption,) = rw_redemptions(reward.id)
    assert "<strong>40</strong>" in _text(client.get("/rewards"))
    mine = _text(client.get("/rewards/mine"))
    assert redemption.voucher_code in mine and "Rice" in mine
    assert 'id="balance">40<' in mine


def test_not_enough_points_changes_nothing(client, auth, world, rw_english):
    rw_give_points(world.a.volunteer.person, 30)
    reward = rw_make_reward(world.a, cost=50, stock=3)
    auth.login("volunteer_a")
    response = client.post(f"/rewards/{reward.id}/redeem")
    assert response.status_code == 200
    assert "Not enough points: you have 30, this costs 50." in _text(response)
    assert rw_stock(reward.id) == 3
    assert rw_redemptions(reward.id) == []
    assert rw_balance(world.a.volunteer.person.id) == 30
    assert rw_ledger_rows(world.a.volunteer.person.id) == [("adjustment", 30)]


def test_no_points_at_all(client, auth, world, rw_english):
    reward = rw_make_reward(world.a, cost=1, stock=3)
    auth.login("resident_a")
    response = client.post(f"/rewards/{reward.id}/redeem")
    assert "Not enough points: you have 0, this costs 1." in _text(response)
    assert rw_stock(reward.id) == 3 and rw_redemptions(reward.id) == []


def test_the_ledgers_own_check_is_the_last_guard(app, world, monkeypatch):
    """Even if the balance read passed, the ledger's conditional UPDATE refuses (and the
    message still says what is wrong)."""
    rw_give_points(world.a.volunteer.person, 30)
    reward = rw_make_reward(world.a, cost=50, stock=3)
    monkeypatch.setattr(services, "balance_of", lambda person_id: 999)
    with app.test_request_context():
        with pytest.raises(DomainError) as caught:
            services.redeem(reward, world.a.volunteer.person, local_today(), None)
        db.session.rollback()
    assert "50" in caught.value.errors["_"]
    assert rw_stock(reward.id) == 3 and rw_redemptions(reward.id) == []


def test_per_person_limit(client, auth, world, buyer, rw_english):
    reward = rw_make_reward(world.a, cost=10, stock=5, per_person_limit=2)
    auth.login("volunteer_a")
    assert client.post(f"/rewards/{reward.id}/redeem").status_code == 303
    assert client.post(f"/rewards/{reward.id}/redeem").status_code == 303
    response = client.post(f"/rewards/{reward.id}/redeem")
    assert response.status_code == 200
    assert "You have already redeemed the most allowed (2)." in _text(response)
    assert rw_stock(reward.id) == 3
    assert len(rw_redemptions(reward.id)) == 2
    assert rw_balance(buyer.person.id) == 80


def test_a_cancelled_redemption_does_not_count_towards_the_limit(app, world, buyer):
    reward = rw_make_reward(world.a, cost=10, stock=5, per_person_limit=1)
    first = rw_redeemed(world.a, reward)
    with app.test_request_context():
        with pytest.raises(DomainError):
            services.redeem(reward, buyer.person, local_today(), None)
        db.session.rollback()
        services.cancel_redemption(first, "wrong size", world.a.secretary.id)
        db.session.commit()
    again = rw_redeemed(world.a, reward)
    assert again.status == "issued"
    assert rw_balance(buyer.person.id) == 90


def test_the_limit_is_per_person(client, auth, world, buyer):
    reward = rw_make_reward(world.a, cost=10, stock=5, per_person_limit=1)
    rw_give_points(world.a.resident.person, 50)
    rw_redeemed(world.a, reward)
    auth.login("resident_a")
    assert client.post(f"/rewards/{reward.id}/redeem").status_code == 303
    assert rw_stock(reward.id) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"active": False}, "This reward is not on offer at the moment."),
        ({"available_from": 3}, "This reward can be redeemed from"),
        ({"available_until": -1}, "This reward could only be redeemed until"),
        ({"stock": 0}, "Sold out: no units of this reward are left."),
    ],
    ids=["inactive", "not-yet", "ended", "sold-out"],
)
def test_refusals_change_nothing(client, auth, world, buyer, rw_english, changes, message):
    today = local_today()
    values = {
        k: today + timedelta(days=v) if k.startswith("available") else v for k, v in changes.items()
    }
    reward = rw_make_reward(world.a, cost=10, **{"stock": 3, **values})
    stock = rw_stock(reward.id)
    auth.login("volunteer_a")
    response = client.post(f"/rewards/{reward.id}/redeem")
    assert response.status_code == 200
    assert message in _text(response)
    assert rw_stock(reward.id) == stock
    assert rw_redemptions(reward.id) == []
    assert rw_balance(buyer.person.id) == 100
    # The page says why, without a Redeem button.
    page = _text(client.get(f"/rewards/{reward.id}"))
    assert message in page and "Redeem for" not in page


def test_the_window_includes_its_first_and_last_day(client, auth, world, buyer):
    today = local_today()
    first = rw_make_reward(world.a, cost=10, available_from=today)
    last = rw_make_reward(world.a, cost=10, available_until=today)
    auth.login("volunteer_a")
    assert client.post(f"/rewards/{first.id}/redeem").status_code == 303
    assert client.post(f"/rewards/{last.id}/redeem").status_code == 303
    assert rw_balance(buyer.person.id) == 80


def test_a_unit_taken_by_someone_else_in_the_meantime_says_sold_out(app, world, buyer, monkeypatch):
    """The check before the UPDATE saw stock (as in a race); the conditional UPDATE decides."""
    reward = rw_make_reward(world.a, cost=10, stock=0)
    monkeypatch.setattr(services, "unavailable_reason", lambda reward, today: None)
    with app.test_request_context():
        session_lang_en()
        with pytest.raises(DomainError) as caught:
            services.redeem(reward, buyer.person, local_today(), None)
        db.session.rollback()
    assert caught.value.errors["_"] == "Sold out: no units of this reward are left."
    assert rw_stock(reward.id) == 0 and rw_redemptions(reward.id) == []
    assert rw_balance(buyer.person.id) == 100


def test_a_reward_taken_off_in_the_meantime_says_not_on_offer(app, world, buyer, monkeypatch):
    reward = rw_make_reward(world.a, cost=10, stock=3, active=False)
    monkeypatch.setattr(services, "unavailable_reason", lambda reward, today: None)
    with app.test_request_context():
        session_lang_en()
        with pytest.raises(DomainError) as caught:
            services.redeem(reward, buyer.person, local_today(), None)
        db.session.rollback()
    assert caught.value.errors["_"] == "This reward is not on offer at the moment."
    assert rw_stock(reward.id) == 3


def session_lang_en() -> None:
    from flask import session

    session["lang"] = "en"


def test_a_reward_of_another_community_cannot_be_redeemed(client, auth, world, buyer):
    reward = rw_make_reward(world.b, cost=10)
    auth.login("volunteer_a")
    assert client.post(f"/rewards/{reward.id}/redeem").status_code == 404
    assert rw_stock(reward.id) == 5
    with current_app.test_request_context():
        with pytest.raises(DomainError):
            services.redeem(reward, buyer.person, local_today(), None)
        db.session.rollback()
    assert rw_stock(reward.id) == 5


def test_a_voucher_code_collision_tries_another_code(app, world, buyer, monkeypatch):
    reward = rw_make_reward(world.a, cost=10, stock=5)
    first = rw_redeemed(world.a, reward)
    codes = iter([first.voucher_code, first.voucher_code, "ZZZZ2345"])
    monkeypatch.setattr(services, "new_voucher_code", lambda: next(codes))
    second = rw_redeemed(world.a, reward)
    assert second.voucher_code == "ZZZZ2345"
    assert rw_stock(reward.id) == 3 and rw_balance(buyer.person.id) == 80
    assert rw_ledger_sum(buyer.person.id) == 80


# --- htmx -------------------------------------------------------------------------------------


def test_htmx_refusal_answers_the_redeem_box(client, auth, world, rw_english):
    rw_give_points(world.a.volunteer.person, 5)
    reward = rw_make_reward(world.a, cost=50)
    auth.login("volunteer_a")
    response = client.post(f"/rewards/{reward.id}/redeem", headers=RW_HX)
    assert response.status_code == 200
    body = _text(response)
    assert "<html" not in body and f'id="redeem-{reward.id}"' in body
    assert "Not enough points: you have 5, this costs 50." in body
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_success_goes_to_the_voucher(client, auth, world, buyer):
    reward = rw_make_reward(world.a, cost=50)
    auth.login("volunteer_a")
    response = client.post(f"/rewards/{reward.id}/redeem", headers=RW_HX)
    (redemption,) = rw_redemptions(reward.id)
    assert response.headers["HX-Redirect"] == f"/rewards/vouchers/{redemption.id}"


# --- the shop ---------------------------------------------------------------------------------


def test_shop_lists_what_is_on_offer(client, auth, world, buyer, rw_english):
    today = local_today()
    rw_make_reward(world.a, name="Cheap soap", cost=10)
    rw_make_reward(world.a, name="Sold-out towel", cost=5, stock=0)
    rw_make_reward(world.a, name="Hidden", active=False)
    rw_make_reward(world.a, name="Next month", available_from=today + timedelta(days=30))
    rw_make_reward(world.a, name="Last year", available_until=today - timedelta(days=1))
    rw_make_reward(world.b, name="West reward")
    auth.login("volunteer_a")
    page = _text(client.get("/rewards"))
    assert "Cheap soap" in page and "Sold-out towel" in page
    for hidden in ("Hidden", "Next month", "Last year", "West reward"):
        assert hidden not in page
    assert "<strong>100</strong>" in page
    # In stock first; sold out greyed and marked.
    assert page.index("Cheap soap") < page.index("Sold-out towel")
    towel = re.search(r'<li class="reward-card sold-out"[^>]*>.*?</li>', page, flags=re.S)
    assert towel and "Sold-out towel" in towel.group(0) and "Sold out" in towel.group(0)


def test_shop_is_a_fragment_for_htmx(client, auth, world, buyer):
    rw_make_reward(world.a, name="Soap")
    auth.login("volunteer_a")
    response = client.get("/rewards", headers=RW_HX)
    assert "<html" not in _text(response) and 'id="reward-list"' in _text(response)
    assert "HX-Request" in response.headers["Vary"]


def _fill(side, n: int) -> list[int]:
    rewards = [
        Reward(community_id=side.community.id, name=f"奖品{i}", cost=1 + i, stock=i % 3)
        for i in range(n)
    ]
    db.session.add_all(rewards)
    db.session.commit()
    return [r.id for r in rewards]


def test_shop_runs_a_fixed_number_of_queries(client, auth, world, buyer):
    auth.login("volunteer_a")
    _fill(world.a, 3)
    with rw_count_queries() as small:
        assert client.get("/rewards").status_code == 200
    _fill(world.a, 27)
    with rw_count_queries() as large:
        assert client.get("/rewards").status_code == 200
    assert small["n"] == large["n"]


def test_mine_runs_a_fixed_number_of_queries(client, auth, world):
    rw_give_points(world.a.volunteer.person, 10_000)
    auth.login("volunteer_a")
    ids = _fill(world.a, 30)
    for reward_id in ids[:3]:
        db.session.execute(Reward.__table__.update().values(stock=5))
        rw_redeemed(world.a, db.session.get(Reward, reward_id))
    with rw_count_queries() as small:
        assert client.get("/rewards/mine").status_code == 200
    for reward_id in ids[3:]:
        rw_redeemed(world.a, db.session.get(Reward, reward_id))
    with rw_count_queries() as large:
        assert client.get("/rewards/mine").status_code == 200
    assert small["n"] == large["n"]
    assert len(db.session.scalars(select(Redemption)).all()) == 30


def test_mine_shows_only_ones_own(client, auth, world, buyer):
    reward = rw_make_reward(world.a, cost=10)
    theirs = rw_redeemed(world.a, reward)
    other = factories.make_user("volunteer", world.a.community, username="other_a")
    rw_give_points(other.person, 50)
    auth.login("other_a")
    page = _text(client.get("/rewards/mine"))
    assert theirs.voucher_code not in page
    # Nor can they open the voucher of someone else of the same community.
    assert client.get(f"/rewards/vouchers/{theirs.id}").status_code == 404


def test_detail_shows_the_button_with_the_cost(client, auth, world, buyer, rw_english):
    reward = rw_make_reward(world.a, name="Rice", cost=60, stock=2)
    auth.login("volunteer_a")
    page = _text(client.get(f"/rewards/{reward.id}"))
    assert "Redeem for 60 points" in page
    assert f'action="/rewards/{reward.id}/redeem"' in page
    rich = rw_make_reward(world.a, name="Bike", cost=500)
    page = _text(client.get(f"/rewards/{rich.id}"))
    assert "Redeem for" not in page and "You need 400 more points" in page
