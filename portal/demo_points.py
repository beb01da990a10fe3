"""Demo points: rules for both communities, a year of ledger history, awards for the demo's
verified shifts and party members' reports, leaderboard consent, and a rewards shop.

History before the portal was kept on paper (纸质台账); the demo carries eleven months of it over
as "import" rows, one per volunteer and month, so the monthly chart, the year's leaderboard and
the certificates have something to show. Everything goes through ``portal.points.ledger`` so the
cached balances and tallies agree with the ledger, as in the app.

Deterministic choices (``random.Random(2026)``); adds and flushes, never commits.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from portal.auth.models import User
from portal.core.timeutil import local_today, now_utc
from portal.extensions import db
from portal.patrols.models import Signup
from portal.places.models import Community
from portal.points import ledger
from portal.points.models import PointsAccount, PointsRule
from portal.rewards.models import Reward
from portal.volunteers.models import Volunteer

SEED = 2026
HISTORY_MONTHS = 11
RULES = {
    "per_hour:patrol": Decimal(10),
    "per_hour:door_watch": Decimal(12),
    "per_hour:other": Decimal(8),
    "party_report": Decimal(20),
    "daily_cap": Decimal(100),
    "multiplier:five_elders": Decimal("1.20"),
    "multiplier:party_member": Decimal("1.00"),
    "multiplier:red_armband": Decimal("1.00"),
}
# (name, description, cost, stock, per-person limit, active, window in days from today or None)
REWARDS = (
    ("东北大米 5kg", "社区粮油店提供，凭兑换码到社区服务站领取。", 200, 20, 2, True, None),
    ("食用油 1.8L", "花生油一桶。", 260, 12, 1, True, None),
    ("洗衣液 2kg", "", 80, 30, None, True, None),
    ("理发服务券", "社区爱心理发点，周二、周四上午。", 50, 40, 2, True, None),
    ("家政保洁 2 小时", "由社区合作家政公司上门服务，需提前三天预约。", 300, 5, 1, True, None),
    ("电影票（两张）", "汉江影城通兑券。", 150, 0, 2, True, None),
    ("暖手宝", "冬季慰问品，12 月起可兑换。", 120, 25, 1, True, (1, 90)),
    ("保温杯", "已下架。", 100, 8, None, False, None),
)


def _months_back(today: date, count: int) -> list[date]:
    """The 15th of each of the ``count`` months before this one, oldest first."""
    days = []
    year, month = today.year, today.month
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        days.append(date(year, month, 15))
    return list(reversed(days))


def _rules(community: Community, secretary: User | None) -> None:
    for key, value in RULES.items():
        db.session.add(
            PointsRule(
                community_id=community.id,
                key=key,
                value=value,
                updated_by_id=secretary.id if secretary else None,
            )
        )
    db.session.flush()


def _history(rng: random.Random, volunteers: list[Volunteer], secretary: User | None) -> None:
    today = local_today()
    for volunteer in volunteers:
        if not volunteer.type_links:
            continue
        for day in _months_back(today, HISTORY_MONTHS):
            if day < volunteer.applied_at.date() or rng.random() < 0.25:
                continue
            hours = Decimal(rng.choice((2, 2, 4, 4, 6, 8, 10)))
            ledger.post_entry(
                volunteer.person_id,
                kind="patrol" if "red_armband" in volunteer.types else "duty",
                source_type="import",
                source_id=day.year * 100 + day.month,
                points=int(hours * 10),
                hours=hours,
                occurred_on=day,
                note=f"{day.year}年{day.month}月纸质台账结转",
                actor_id=secretary.id if secretary else None,
            )


def _rewards(community: Community, secretary: User | None) -> None:
    today = local_today()
    for name, description, cost, stock, limit, active, window in REWARDS:
        db.session.add(
            Reward(
                community_id=community.id,
                name=name,
                description=description,
                cost=cost,
                stock=stock,
                per_person_limit=limit,
                active=active,
                available_from=today + timedelta(days=window[0]) if window else None,
                available_until=today + timedelta(days=window[1]) if window else None,
                created_by_id=secretary.id if secretary else None,
            )
        )
    db.session.flush()


def _redemptions(rng: random.Random) -> None:
    """Vouchers in every state: the demo volunteer's own, and some of volunteer01 … 08."""
    from portal.rewards.services import cancel_redemption, hand_over, redeem

    today = local_today()
    community = db.session.scalar(select(Community).order_by(Community.id))
    if community is None:
        return
    secretary = db.session.scalar(
        select(User).where(User.community_id == community.id, User.role == "secretary")
    )
    rewards = {
        r.name: r
        for r in db.session.scalars(select(Reward).where(Reward.community_id == community.id))
    }
    plan = [("volunteer", "理发服务券", "issued"), ("volunteer", "洗衣液 2kg", "handed_over")]
    names = ("东北大米 5kg", "洗衣液 2kg", "理发服务券", "食用油 1.8L")
    for n in range(1, 9):
        state = rng.choice(("issued", "handed_over", "handed_over", "cancelled"))
        plan.append((f"volunteer{n:02d}", rng.choice(names), state))
    for username, reward_name, state in plan:
        user = db.session.scalar(select(User).where(User.username == username))
        reward = rewards.get(reward_name)
        if user is None or user.person is None or reward is None or secretary is None:
            continue
        if _balance(user.person_id) < reward.cost:
            continue
        redemption = redeem(reward, user.person, today, user.id)
        if state == "handed_over":
            hand_over(redemption, secretary.id)
        elif state == "cancelled":
            cancel_redemption(redemption, "本人申请取消，积分已退回。", secretary.id)
    db.session.flush()


def _balance(person_id: int) -> int:
    account = db.session.get(PointsAccount, person_id)
    return account.balance if account else 0


def _certificate() -> None:
    """The demo volunteer's certificate of this year's hours (the public page can be tried)."""
    from portal.certificates.services import issue_certificate

    user = db.session.scalar(select(User).where(User.username == "volunteer"))
    if user is None or user.person is None:
        return
    today = local_today()
    issue_certificate(
        user.person,
        period_start=date(today.year, 1, 1),
        period_end=today,
        id_number=None,
        actor_id=user.id,
    )


def seed_points_demo() -> None:
    """Rules, history, awards and rewards for every demo community (after patrols and help)."""
    rng = random.Random(SEED)
    communities = db.session.scalars(select(Community).order_by(Community.id)).all()
    for community in communities:
        secretary = db.session.scalar(
            select(User)
            .where(User.community_id == community.id, User.role == "secretary")
            .order_by(User.id)
        )
        _rules(community, secretary)
        volunteers = db.session.scalars(
            select(Volunteer)
            .where(Volunteer.community_id == community.id, Volunteer.status == "approved")
            .options(selectinload(Volunteer.type_links))
            .order_by(Volunteer.id)
        ).all()
        _history(rng, list(volunteers), secretary)
        for volunteer in volunteers:
            ledger.award_party_report(volunteer)
        _rewards(community, secretary)
    # The demo week's verified shifts, recorded before the ledger existed in this seed.
    for signup in db.session.scalars(
        select(Signup).where(Signup.hours_recorded_at.is_not(None)).order_by(Signup.id)
    ):
        ledger.award_signup(signup)
    db.session.flush()
    _redemptions(rng)
    _certificate()
    # Most volunteers agreed to appear on the leaderboards; a few did not.
    person_ids = db.session.scalars(
        select(PointsAccount.person_id).order_by(PointsAccount.person_id)
    )
    listed = [pid for pid in person_ids if rng.random() < 0.85]
    if listed:
        db.session.execute(
            update(PointsAccount)
            .where(PointsAccount.person_id.in_(listed))
            .values(listed=True, listed_at=now_utc())
            .execution_options(synchronize_session=False)
        )
    demo_volunteer = db.session.scalar(select(User).where(User.username == "volunteer"))
    if demo_volunteer is not None and demo_volunteer.person_id is not None:
        db.session.execute(
            update(PointsAccount)
            .where(PointsAccount.person_id == demo_volunteer.person_id)
            .values(listed=True, listed_at=now_utc())
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
