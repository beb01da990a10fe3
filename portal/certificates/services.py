"""Hours certificates (志愿服务时长证明): which verified service a period holds, issuing a
certificate with a random number, and finding one by its number.

What a certificate states is copied onto it when it is issued, so the verification page and
the PDF say the same thing for ever, whatever happens to the ledger afterwards.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from portal.certificates.models import Certificate
from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.core.validators import mask_id_number, normalise_id_number, valid_id_number
from portal.extensions import db
from portal.points import ledger
from portal.points.models import EARNING_KINDS, PointsEntry

# Letters and digits that cannot be misread for one another (no 0/O, 1/I/L, 5/S, 8/B, 2/Z, U/V).
NUMBER_ALPHABET = "34679ACDEFGHJKMNPQRTWXY"
NUMBER_PREFIX = "TX"
NUMBER_RE = re.compile(
    rf"^{NUMBER_PREFIX}\d{{4}}-[{NUMBER_ALPHABET}]{{4}}-[{NUMBER_ALPHABET}]{{4}}$"
)
NUMBER_ATTEMPTS = 5
MAX_SPAN_YEARS = 5
# Service a certificate states: earned activities and a secretary's added hours. Reversals,
# redemptions and refunds are bookkeeping, not service.
SERVICE_KINDS = (*EARNING_KINDS, "adjustment")
HOURS = Decimal("0.01")


@dataclass(frozen=True)
class Activity:
    """One line of a certificate: a day, a ledger kind, what was done, how long."""

    day: date
    kind: str
    title: str
    hours: Decimal

    def snapshot(self) -> dict[str, str]:
        return {
            "date": self.day.isoformat(),
            "kind": self.kind,
            "title": self.title,
            "hours": str(self.hours.quantize(HOURS)),
        }


def new_number(year: int) -> str:
    """A random certificate number such as TX2026-K7MC-3QHT (23^8 ≈ 78 billion per year)."""
    body = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))
    return f"{NUMBER_PREFIX}{year:04d}-{body[:4]}-{body[4:]}"


def clean_number(value: str | None) -> str | None:
    """The number in its stored form, or None when it cannot be one (checked before any query)."""
    number = (value or "").strip().upper()
    if len(number) > 24 or not NUMBER_RE.match(number):
        return None
    return number


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def check_period(start: date | None, end: date | None, today: date) -> dict[str, str]:
    """Messages for a period that cannot be certified (empty when it can)."""
    errors: dict[str, str] = {}
    if start is None or end is None:
        return errors  # the form already says which date is missing or unreadable
    if end > today:
        errors["period_end"] = _("The period cannot end in the future.")
    if start > end:
        errors["period_start"] = _("The start must be on or before the end.")
    elif _add_years(start, MAX_SPAN_YEARS) < end:
        errors["period_end"] = _(
            "A certificate covers at most %(years)d years; choose a shorter period.",
            years=MAX_SPAN_YEARS,
        )
    return errors


def _category_name(name_zh: str, name_en: str) -> str:
    locale = get_locale()
    return name_en if locale is not None and locale.language == "en" else name_zh


def _titles(entries: list[PointsEntry]) -> dict[tuple[str, int], str]:
    """Titles of the shifts and requests these entries came from (two queries at most)."""
    from portal.help.models import Category, HelpRequest
    from portal.patrols.models import Shift, Signup

    signup_ids = [e.source_id for e in entries if e.source_type == "signup" and e.source_id]
    request_ids = [e.source_id for e in entries if e.source_type == "request" and e.source_id]
    titles: dict[tuple[str, int], str] = {}
    if signup_ids:
        for signup_id, title in db.session.execute(
            select(Signup.id, Shift.title)
            .join(Shift, Shift.id == Signup.shift_id)
            .where(Signup.id.in_(signup_ids))
        ):
            titles["signup", signup_id] = title
    if request_ids:
        for request_id, name_zh, name_en in db.session.execute(
            select(HelpRequest.id, Category.name_zh, Category.name_en)
            .join(Category, Category.id == HelpRequest.category_id)
            .where(HelpRequest.id.in_(request_ids))
        ):
            titles["request", request_id] = f"{_category_name(name_zh, name_en)} #{request_id}"
    return titles


def period_activities(person_id: int, start: date, end: date) -> list[Activity]:
    """The person's verified service from ``start`` to ``end`` (both included), oldest first:
    ledger rows with hours that were not reversed."""
    entries = list(
        db.session.scalars(
            select(PointsEntry)
            .where(
                PointsEntry.person_id == person_id,
                PointsEntry.occurred_on >= start,
                PointsEntry.occurred_on <= end,
                PointsEntry.hours > 0,
                PointsEntry.kind.in_(SERVICE_KINDS),
            )
            .order_by(PointsEntry.occurred_on, PointsEntry.id)
        )
    )
    cancelled = ledger.reversed_ids(entries)
    entries = [e for e in entries if e.id not in cancelled]
    titles = _titles(entries)
    return [
        Activity(
            day=e.occurred_on,
            kind=e.kind,
            title=titles.get((e.source_type, e.source_id or 0)) or e.note,
            hours=Decimal(e.hours),
        )
        for e in entries
    ]


def issue_certificate(
    person,  # noqa: ANN001 (people.models.Person)
    *,
    period_start: date | None,
    period_end: date | None,
    id_number: str | None,
    actor_id: int | None,
) -> Certificate:
    """Certify the person's verified hours in the period. Only the masked ID number is kept.
    Raises DomainError for a bad period or ID number, or a period without hours."""
    errors = check_period(period_start, period_end, local_today())
    number_given = normalise_id_number(id_number)
    if number_given and not valid_id_number(number_given):
        errors["id_number"] = _(
            "This is not a valid identity card number: 18 characters, the last a digit or X."
        )
    if errors or period_start is None or period_end is None:
        raise DomainError(errors or {"_": _("Choose the period.")})
    activities = period_activities(person.id, period_start, period_end)
    if not activities:
        raise DomainError(
            {"_": _("You have no verified service hours in this period: nothing to certify.")}
        )
    total = sum((a.hours for a in activities), Decimal(0)).quantize(HOURS)
    certificate = Certificate(
        person_id=person.id,
        community_id=person.community_id,
        holder_name=person.name,
        id_number_masked=mask_id_number(number_given),
        community_name=_community_name(person.community_id),
        period_start=period_start,
        period_end=period_end,
        total_hours=total,
        activity_count=len(activities),
        activities=[a.snapshot() for a in activities],
        issued_by_id=actor_id,
    )
    _insert_with_number(certificate, local_today().year)
    return certificate


def _community_name(community_id: int) -> str:
    from portal.places.models import Community

    return db.session.scalar(select(Community.name).where(Community.id == community_id)) or ""


def _insert_with_number(certificate: Certificate, year: int) -> None:
    """Add the certificate under a fresh random number; the unique key decides, and a
    collision (or a parallel issue of the same number) just draws again."""
    for _attempt in range(NUMBER_ATTEMPTS):
        certificate.number = new_number(year)
        try:
            with db.session.begin_nested():
                db.session.add(certificate)
        except IntegrityError:
            continue
        return
    raise DomainError({"_": _("No free certificate number was found. Please try again.")})


def find_by_number(number: str) -> Certificate | None:
    """The certificate with this (already cleaned) number."""
    return db.session.scalar(select(Certificate).where(Certificate.number == number))


def certificates_query(person_id: int) -> Select:
    """The person's certificates, newest first."""
    return (
        select(Certificate)
        .where(Certificate.person_id == person_id)
        .order_by(Certificate.id.desc())
    )
