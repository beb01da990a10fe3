"""The demo points: rules, a year of history, awards for the demo week, rewards with stock,
vouchers in every state and a certificate; the cached totals agree with the ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.patrols.models import Signup
from portal.places.models import Community
from portal.points.models import PointsAccount, PointsEntry, PointsRule, PointsTally
from portal.rewards.models import Redemption, Reward
from tests.conftest import seed_demo


@pytest.fixture
def seeded(runner):
    seed_demo(runner)


def test_rules_and_rewards_in_both_communities(seeded):
    for community in db.session.scalars(select(Community)):
        keys = set(
            db.session.scalars(
                select(PointsRule.key).where(PointsRule.community_id == community.id)
            )
        )
        assert {"per_hour:patrol", "daily_cap", "party_report"} <= keys
        rewards = db.session.scalars(
            select(Reward).where(Reward.community_id == community.id)
        ).all()
        assert any(r.active and r.stock > 0 for r in rewards)
        assert any(r.stock == 0 for r in rewards)  # one sold out
        assert any(not r.active for r in rewards)


def test_every_verified_shift_and_party_report_is_awarded_once(seeded):
    verified = db.session.scalar(
        select(func.count()).select_from(Signup).where(Signup.hours_recorded_at.is_not(None))
    )
    awarded = db.session.scalar(
        select(func.count()).select_from(PointsEntry).where(PointsEntry.source_type == "signup")
    )
    assert verified > 0 and awarded == verified
    assert (
        db.session.scalar(
            select(func.count()).select_from(PointsEntry).where(PointsEntry.kind == "party_report")
        )
        > 0
    )


def test_the_cached_totals_equal_the_ledger(seeded):
    sums = {
        person_id: (int(points), Decimal(str(hours)))
        for person_id, points, hours in db.session.execute(
            select(
                PointsEntry.person_id, func.sum(PointsEntry.points), func.sum(PointsEntry.hours)
            ).group_by(PointsEntry.person_id)
        )
    }
    accounts = db.session.scalars(select(PointsAccount)).all()
    assert len(accounts) == len(sums) > 40
    for account in accounts:
        assert (account.balance, account.hours) == sums[account.person_id]
    earned = dict(
        db.session.execute(
            select(PointsEntry.person_id, func.sum(PointsEntry.points))
            .where(PointsEntry.ranked)
            .group_by(PointsEntry.person_id)
        ).all()
    )
    for tally in db.session.scalars(select(PointsTally).where(PointsTally.period == "all")):
        assert tally.points == earned[tally.person_id]


def test_vouchers_in_every_state_and_a_certificate(seeded):
    states = set(db.session.scalars(select(Redemption.status)))
    assert states == {"issued", "handed_over", "cancelled"}
    volunteer = db.session.scalar(select(User).where(User.username == "volunteer"))
    mine = db.session.scalars(
        select(Redemption).where(Redemption.person_id == volunteer.person_id)
    ).all()
    assert {r.status for r in mine} == {"issued", "handed_over"}
    account = db.session.get(PointsAccount, volunteer.person_id)
    assert account.listed and account.balance > 0
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.person_id == volunteer.person_id)
    )
    assert certificate is not None and certificate.total_hours > 0
