"""Fixtures of the rewards shop tests (prefix rw_)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount, PointsEntry
from portal.rewards.models import Redemption, Reward
from tests import helpers

RW_HX = {"HX-Request": "true"}
ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")

rw_reload = helpers.reload
rw_count_queries = helpers.count_queries


def rw_make_reward(side, **kw) -> Reward:
    """A reward of ``side`` (world.a / world.b): on offer, 50 points, 5 in stock by default."""
    reward = Reward(
        community_id=side.community.id,
        name=kw.pop("name", "环保袋"),
        description=kw.pop("description", "社区定制环保袋"),
        cost=kw.pop("cost", 50),
        stock=kw.pop("stock", 5),
        created_by_id=side.secretary.id,
        **kw,
    )
    db.session.add(reward)
    db.session.commit()
    return reward


def rw_give_points(person, points: int, actor=None) -> None:
    """Put ``points`` on the person's balance by an adjustment row (the ledger's own way)."""
    ledger.adjust(
        person.id, points=points, hours=Decimal(0), reason="opening balance",
        actor_id=actor.id if actor is not None else None,
    )  # fmt: skip
    db.session.commit()


def rw_balance(person_id: int) -> int:
    db.session.commit()
    balance = db.session.scalar(
        select(PointsAccount.balance).where(PointsAccount.person_id == person_id)
    )
    return int(balance or 0)


def rw_ledger_sum(person_id: int) -> int:
    db.session.commit()
    total = db.session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.person_id == person_id
        )
    )
    return int(total)


def rw_ledger_rows(person_id: int) -> list[tuple[str, int]]:
    """(kind, points) of the person's ledger rows, oldest first."""
    db.session.commit()
    return [
        tuple(row)
        for row in db.session.execute(
            select(PointsEntry.kind, PointsEntry.points)
            .where(PointsEntry.person_id == person_id)
            .order_by(PointsEntry.id)
        )
    ]


def rw_stock(reward_id: int) -> int:
    db.session.commit()
    return db.session.scalar(select(Reward.stock).where(Reward.id == reward_id))


def rw_redemptions(reward_id: int) -> list[Redemption]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(Redemption).where(Redemption.reward_id == reward_id).order_by(Redemption.id)
        )
    )


def rw_redeemed(side, reward: Reward, person=None, *, actor=None) -> Redemption:
    """A redemption made through the service (points must be on the balance already)."""
    from flask import current_app

    from portal.core.timeutil import local_today
    from portal.rewards import services

    person = person or side.volunteer.person
    with current_app.test_request_context():
        redemption = services.redeem(reward, person, local_today(), actor.id if actor else None)
        db.session.commit()
        return db.session.get(Redemption, redemption.id)


@pytest.fixture
def rw_english(client):
    """Show English messages (the default is Chinese)."""
    assert client.post("/language", data={"lang": "en"}).status_code == 303


@pytest.fixture
def rw_uploads(app, tmp_path):
    """Photos go to a throw-away instance folder."""
    previous = app.instance_path
    app.instance_path = str(tmp_path)
    yield tmp_path / "uploads"
    app.instance_path = previous


@pytest.fixture
def rw_outbox(app):
    """Outbound messages collected instead of logged."""
    sent: list[dict] = []

    class Backend:
        def send(self, **message):
            sent.append(message)

    app.config["MESSAGE_BACKEND"] = Backend()
    yield sent
    app.config.pop("MESSAGE_BACKEND", None)
