"""The rewards shop (积分超市): rewards a secretary offers, redemptions that spend points, and
their hand-over or cancellation.

Stock and points move in one transaction, enforced by the database: a conditional UPDATE takes a
unit (``stock > 0``), the ledger's conditional UPDATE takes the points (``balance >= 0``), and a
refund is a reversal row. Locks are always taken in the same order (redemption row, reward row,
points account) so that parallel redemptions and cancellations cannot deadlock. Services here
never commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app, has_request_context, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import joinedload

from portal.core.errors import DomainError
from portal.core.photos import PreparedPhoto, chosen, delete_photo, store_photo
from portal.core.timeutil import local_today, now_utc
from portal.core.validators import too_far_ahead
from portal.database import insert_unless_conflict
from portal.extensions import db
from portal.notifications.services import notify
from portal.people.models import Person
from portal.points import ledger
from portal.points.models import PointsAccount, PointsEntry
from portal.rewards.models import REDEMPTION_STATUSES, Redemption, Reward

NAME_MAX = 60
DESCRIPTION_MAX = 500
MAX_COST = 100_000
MAX_STOCK = 100_000
MAX_LIMIT = 1_000
REASON_MAX = 200
# No 0/O, 1/I/L: the code is read aloud at the community office and typed on a phone.
VOUCHER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VOUCHER_LENGTH = 8
VOUCHER_ATTEMPTS = 5


# --- managing rewards -------------------------------------------------------------------------


@dataclass
class RewardValues:
    """What the secretary typed; numbers are None when left empty (or not a number)."""

    name: str = ""
    description: str = ""
    cost: int | None = None
    stock: int | None = None
    per_person_limit: int | None = None
    available_from: date | None = None
    available_until: date | None = None
    active: bool = True


def check_reward(
    values: RewardValues, *, creating: bool, skip: set[str] | None = None, today: date | None = None
) -> dict:
    """Every rule a reward must meet, as {field: message}; ``skip`` names fields that already
    carry a message (e.g. not a number), so each field shows one message. Its window lies
    within two years from ``today`` (default: the local date), and a new reward's does not end
    before today."""
    skip = skip or set()
    today = today or local_today()
    errors: dict[str, str] = {}
    name = values.name.strip()
    if not name:
        errors["name"] = _("Give the reward a name.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("At most %(max)d characters.", max=NAME_MAX)
    if len(values.description.strip()) > DESCRIPTION_MAX:
        errors["description"] = _("At most %(max)d characters.", max=DESCRIPTION_MAX)
    if values.cost is None:
        errors["cost"] = _("Enter the cost in points.")
    elif not 0 < values.cost <= MAX_COST:
        errors["cost"] = _("The cost must be from 1 to %(max)d points.", max=MAX_COST)
    if values.stock is None:
        errors["stock"] = _("Enter how many units there are.")
    elif values.stock < 0:
        errors["stock"] = _("The stock cannot be below 0.")
    elif creating and values.stock == 0:
        errors["stock"] = _(
            "A new reward needs at least 1 unit in stock. To show it later, add it when you "
            "have the goods."
        )
    elif values.stock > MAX_STOCK:
        errors["stock"] = _("At most %(max)d units.", max=MAX_STOCK)
    if values.per_person_limit is not None and not 0 < values.per_person_limit <= MAX_LIMIT:
        errors["per_person_limit"] = _(
            "Leave empty for no limit, or enter a number from 1 to %(max)d.", max=MAX_LIMIT
        )
    start, end = values.available_from, values.available_until
    if start is not None and end is not None and end < start:
        errors["available_until"] = _("The last day cannot be before the first day.")
    elif creating and end is not None and end < today:
        errors["available_until"] = _("The last day has already passed.")
    for name, day in (("available_from", start), ("available_until", end)):
        if too_far_ahead(day, today):
            errors.setdefault(name, too_far_ahead(day, today))
    return {field: message for field, message in errors.items() if field not in skip}


def _apply(reward: Reward, values: RewardValues) -> None:
    reward.name = values.name.strip()
    reward.description = values.description.strip()
    reward.cost = values.cost
    reward.stock = values.stock
    reward.per_person_limit = values.per_person_limit
    reward.available_from = values.available_from
    reward.available_until = values.available_until
    reward.active = values.active


def _checked_photo(
    values: RewardValues, photo: PreparedPhoto | None, *, creating: bool
) -> str | None:
    """Check the values, then store the photo if one was chosen; DomainError with every
    message at once (nothing is kept on disk then)."""
    errors = check_reward(values, creating=creating)
    name = None
    if chosen(photo):
        try:
            name = store_photo(photo)
        except DomainError as error:
            errors.update(error.errors)
    if errors:
        if name:
            delete_photo(name)
        raise DomainError(errors)
    return name


def create_reward(
    community_id: int, values: RewardValues, photo: PreparedPhoto | None, actor_id: int
) -> Reward:
    """A new reward of the community. Raises DomainError({field: message})."""
    photo_name = _checked_photo(values, photo, creating=True)
    reward = Reward(community_id=community_id, photo=photo_name, created_by_id=actor_id)
    _apply(reward, values)
    try:
        db.session.add(reward)
        db.session.flush()
    except Exception:
        if photo_name:
            delete_photo(photo_name)
        raise
    return reward


def update_reward(
    reward: Reward, values: RewardValues, photo: PreparedPhoto | None, *, remove_photo: bool = False
) -> str | None:
    """Save the changes; the stock typed becomes the number of units left. Returns the photo
    that is no longer used (the caller deletes it after the commit). Raises DomainError."""
    photo_name = _checked_photo(values, photo, creating=False)
    old = reward.photo
    _apply(reward, values)
    if photo_name:
        reward.photo = photo_name
    elif remove_photo:
        reward.photo = None
    try:
        db.session.flush()
    except Exception:
        if photo_name:
            delete_photo(photo_name)
        raise
    return old if old and old != reward.photo else None


def manage_query(community_ids: list[int]) -> Select:
    """Every reward of these communities (inactive and sold out too): active first, newest first."""
    return (
        select(Reward)
        .where(Reward.community_id.in_(community_ids))
        .order_by(Reward.active.desc(), Reward.id.desc())
    )


def redeemed_counts(reward_ids: list[int]) -> dict[int, dict[str, int]]:
    """{reward_id: {status: count}} for these rewards (one query)."""
    counts: dict[int, dict[str, int]] = {rid: {} for rid in reward_ids}
    if not reward_ids:
        return counts
    rows = db.session.execute(
        select(Redemption.reward_id, Redemption.status, func.count(Redemption.id))
        .where(Redemption.reward_id.in_(reward_ids))
        .group_by(Redemption.reward_id, Redemption.status)
    )
    for reward_id, status, count in rows:
        counts[reward_id][status] = count
    return counts


# --- the shop ---------------------------------------------------------------------------------


def on_offer(query: Select, today: date) -> Select:
    """Only rewards that are active and inside their window on ``today``."""
    return query.where(
        Reward.active.is_(True),
        (Reward.available_from.is_(None)) | (Reward.available_from <= today),
        (Reward.available_until.is_(None)) | (Reward.available_until >= today),
    )


def shop_query(community_id: int, today: date) -> Select:
    """What the shop shows: rewards on offer, those in stock first, then the cheapest."""
    sold_out = Reward.stock <= 0
    return on_offer(select(Reward).where(Reward.community_id == community_id), today).order_by(
        sold_out, Reward.cost, Reward.id
    )


def balance_of(person_id: int) -> int:
    """The person's points balance (0 before their first ledger row)."""
    balance = db.session.scalar(
        select(PointsAccount.balance).where(PointsAccount.person_id == person_id)
    )
    return int(balance or 0)


def unavailable_reason(reward: Reward, today: date) -> str | None:
    """Why the reward cannot be redeemed today (inactive, outside its window, sold out), or None."""
    if not reward.active:
        return _("This reward is not on offer at the moment.")
    if reward.available_from is not None and today < reward.available_from:
        return _(
            "This reward can be redeemed from %(day)s.", day=format_date(reward.available_from)
        )
    if reward.available_until is not None and today > reward.available_until:
        return _(
            "This reward could only be redeemed until %(day)s.",
            day=format_date(reward.available_until),
        )
    if reward.stock <= 0:
        return _sold_out()
    return None


def _sold_out() -> str:
    return _("Sold out: no units of this reward are left.")


def _not_enough(balance: int, cost: int) -> DomainError:
    return DomainError(
        {"_": _("Not enough points: you have %(balance)d, this costs %(cost)d.",
                balance=balance, cost=cost)}
    )  # fmt: skip


def new_voucher_code() -> str:
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_LENGTH))


def normalise_code(value: str | None) -> str:
    return (value or "").strip().upper().replace(" ", "").replace("-", "")


def _insert_redemption(values: dict) -> Redemption:
    """Insert with a fresh voucher code, trying another on the (rare) collision: the
    duplicate inserts nothing (ON CONFLICT DO NOTHING), so the stock taken stays taken."""
    for _attempt in range(VOUCHER_ATTEMPTS):
        row = dict(values, voucher_code=new_voucher_code(), status="issued")
        redemption = insert_unless_conflict(Redemption, row, ["voucher_code"])
        if redemption is not None:
            return redemption
    raise RuntimeError(f"no free voucher code after {VOUCHER_ATTEMPTS} attempts")


def redeem(reward: Reward, person: Person, today: date, actor_id: int | None) -> Redemption:
    """Spend the person's points on one unit of the reward: stock, redemption and ledger row in
    one transaction. Raises DomainError({"_": ...}) when it is not on offer, sold out, over the
    per-person limit or not affordable; the caller then rolls back (the unit taken too)."""
    reward_id, community_id = reward.id, reward.community_id
    if community_id != person.community_id:
        raise DomainError({"_": _("This reward is not on offer at the moment.")})
    reason = unavailable_reason(reward, today)
    if reason is not None:
        raise DomainError({"_": reason})
    # The unit first: its row lock also holds the cost and the limit as they were read here.
    taken = db.session.execute(
        update(Reward)
        .where(Reward.id == reward_id, Reward.stock > 0, Reward.active.is_(True))
        .values(stock=Reward.stock - 1)
        .returning(Reward.cost, Reward.name, Reward.per_person_limit)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.expire(reward)
    if taken is None:
        if not db.session.scalar(select(Reward.active).where(Reward.id == reward_id)):
            raise DomainError({"_": _("This reward is not on offer at the moment.")})
        raise DomainError({"_": _sold_out()})
    cost, name, limit = taken
    ledger.lock_account(person.id, create=False)  # no account: no balance to spend
    # Held under the account's lock: a parallel redemption of this person waits for our commit.
    if limit is not None:
        held = db.session.scalar(
            select(func.count(Redemption.id)).where(
                Redemption.reward_id == reward_id,
                Redemption.person_id == person.id,
                Redemption.status != "cancelled",
            )
        )
        if held >= limit:
            raise DomainError(
                {"_": _("You have already redeemed the most allowed (%(limit)d).", limit=limit)}
            )
    balance = balance_of(person.id)
    if balance < cost:
        raise _not_enough(balance, cost)
    redemption = _insert_redemption(
        {
            "community_id": community_id,
            "reward_id": reward_id,
            "person_id": person.id,
            "cost": cost,
            "created_at": now_utc(),
        }
    )
    try:
        ledger.post_entry(
            person.id,
            account_exists=True,  # its balance was just read, under the lock
            kind="redemption",
            source_type="redemption",
            source_id=redemption.id,
            points=-cost,
            ranked=False,
            note=name,
            actor_id=actor_id,
        )
    except DomainError:
        raise _not_enough(balance_of(person.id), cost) from None
    return redemption


def my_redemptions_query(person_id: int) -> Select:
    """The person's redemptions, newest first, with their rewards."""
    return (
        select(Redemption)
        .options(joinedload(Redemption.reward))
        .where(Redemption.person_id == person_id)
        .order_by(Redemption.id.desc())
    )


# --- handling redemptions ---------------------------------------------------------------------


@dataclass
class RedemptionFilters:
    status: str | None = None
    code: str = ""
    reward_id: int | None = None

    @classmethod
    def clean(cls, status: str | None, code: str | None, reward: str | None) -> RedemptionFilters:
        raw = (reward or "").strip()
        return cls(
            status=status if status in REDEMPTION_STATUSES else None,
            code=normalise_code(code)[:12],
            reward_id=int(raw) if raw.isdigit() and len(raw) < 18 else None,
        )

    def args(self) -> dict:
        values = {"status": self.status, "code": self.code, "reward": self.reward_id}
        return {k: v for k, v in values.items() if v}


def _filtered(query: Select, filters: RedemptionFilters, community_ids: list[int]) -> Select:
    query = query.where(Redemption.community_id.in_(community_ids))
    if filters.status:
        query = query.where(Redemption.status == filters.status)
    if filters.code:
        query = query.where(Redemption.voucher_code == filters.code)
    if filters.reward_id:
        query = query.where(Redemption.reward_id == filters.reward_id)
    return query


def redemptions_query(filters: RedemptionFilters, community_ids: list[int]) -> Select:
    """Redemptions of these communities, newest first, with reward and person."""
    query = select(Redemption).options(joinedload(Redemption.reward), joinedload(Redemption.person))
    return _filtered(query, filters, community_ids).order_by(Redemption.id.desc())


def load_redemption(redemption_id: int) -> Redemption:
    """The redemption as the database has it now, with reward and person."""
    return db.session.scalars(
        select(Redemption)
        .options(joinedload(Redemption.reward), joinedload(Redemption.person))
        .where(Redemption.id == redemption_id)
        .execution_options(populate_existing=True)
    ).one()


def reward_choices(community_ids: list[int]) -> list[Reward]:
    return list(
        db.session.scalars(
            select(Reward)
            .where(Reward.community_id.in_(community_ids))
            .order_by(Reward.name, Reward.id)
        )
    )


@dataclass
class ExportRow:
    created_at: datetime
    voucher_code: str
    reward: str
    name: str
    phone: str | None
    cost: int
    status: str
    handed_over_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str


def export_rows(filters: RedemptionFilters, community_ids: list[int]) -> Iterator[ExportRow]:
    """The filtered redemptions as plain rows, oldest first (one streamed query)."""
    query = (
        select(
            Redemption.created_at,
            Redemption.voucher_code,
            Reward.name,
            Person.name,
            Person.phone,
            Redemption.cost,
            Redemption.status,
            Redemption.handed_over_at,
            Redemption.cancelled_at,
            Redemption.cancel_reason,
        )
        .join(Reward, Reward.id == Redemption.reward_id)
        .join(Person, Person.id == Redemption.person_id)
    )
    query = _filtered(query, filters, community_ids).order_by(Redemption.id)
    for row in db.session.execute(query.execution_options(yield_per=1000)):
        yield ExportRow(*row)


def _redeemer_user_id(person_id: int) -> int | None:
    from portal.auth.models import User

    return db.session.scalar(
        select(User.id).where(User.person_id == person_id, User.active.is_(True))
    )


def _mine_link() -> str:
    """The path of "my redemptions", also outside a request (a CLI command)."""
    if has_request_context():
        return url_for("rewards.mine")
    adapter = current_app.url_map.bind(
        "localhost", script_name=current_app.config.get("APPLICATION_ROOT") or "/"
    )
    return adapter.build("rewards.mine", {})


def _notify(redemption: Redemption, kind: str, params: dict) -> None:
    user_id = _redeemer_user_id(redemption.person_id)
    if user_id is None:
        return
    notify(
        user_id,
        kind,
        dedupe_key=f"{kind}:redemption:{redemption.id}",
        params={"reward": redemption.reward.name, "code": redemption.voucher_code, **params},
        link=_mine_link(),
        community_id=redemption.community_id,
    )


def _already(redemption: Redemption) -> DomainError:
    db.session.refresh(redemption, ["status"])
    if redemption.status == "handed_over":
        return DomainError({"_": _("Already handed over; nothing was changed.")})
    return DomainError({"_": _("Already cancelled; nothing was changed.")})


def hand_over(redemption: Redemption, actor_id: int) -> None:
    """Mark an issued redemption handed over (once, however often it is clicked); tells the
    redeemer. Raises DomainError when it is no longer issued."""
    won = db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.status == "issued")
        .values(status="handed_over", handed_over_at=now_utc(), handed_over_by_id=actor_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise _already(redemption)
    db.session.expire(redemption)
    _notify(redemption, "reward_handed_over", {})


def cancel_redemption(redemption: Redemption, reason: str, actor_id: int) -> PointsEntry:
    """Cancel an issued redemption: the unit goes back to stock and the points come back by a
    reversal row; tells the redeemer. Raises DomainError for no reason or when it is no longer
    issued (nothing changes then)."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError({"reason": _("Give the reason for the cancellation.")})
    if len(reason) > REASON_MAX:
        raise DomainError({"reason": _("At most %(max)d characters.", max=REASON_MAX)})
    won = db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.status == "issued")
        .values(
            status="cancelled",
            cancelled_at=now_utc(),
            cancelled_by_id=actor_id,
            cancel_reason=reason,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise _already(redemption)
    db.session.execute(
        update(Reward)
        .where(Reward.id == redemption.reward_id)
        .values(stock=Reward.stock + 1)
        .execution_options(synchronize_session=False)
    )
    entry = db.session.scalar(
        select(PointsEntry).where(
            PointsEntry.person_id == redemption.person_id,
            PointsEntry.kind == "redemption",
            PointsEntry.source_type == "redemption",
            PointsEntry.source_id == redemption.id,
        )
    )
    if entry is None:
        raise DomainError({"_": _("The points of this redemption cannot be found.")})
    refund = ledger.reverse(entry, reason=reason, actor_id=actor_id)
    db.session.expire(redemption)
    _notify(redemption, "redemption_cancelled", {"reason": reason})
    return refund
