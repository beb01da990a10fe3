"""Shared fixtures of the security tests: two fully seeded communities and what tells them apart.

``seeded`` is the ``world`` of tests/factories.py (communities A and B in different subdistricts,
a user of every role in each) with one of every kind of object in each community (those of
tests/test_access_matrix.py plus door visits, timeline events, consents and audit rows), every
person and free text carrying its side's mark (东城 for A, 西城 for B). ``markers(side)`` lists
the strings that must never reach the other side's users.
"""

from __future__ import annotations

import html
from io import BytesIO
from zipfile import ZipFile

import pytest
from sqlalchemy import select, text

from portal.core.validators import mask_phone
from portal.extensions import db
from portal.help.models import RequestEvent
from portal.patrols.models import DoorVisit
from portal.people.models import Person
from portal.trust.models import AuditEntry, Consent
from tests.test_access_matrix import _add_duties

MARKS = {"a": "东城", "b": "西城"}
ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
# Tables whose rows a refused request may legitimately add: the refusal is logged.
LOG_TABLES = {"audit_log", "login_failure"}


def _enrich(side, mark: str) -> None:
    """Mark every person and free text of ``side``, and add the objects the access matrix lacks."""
    people = db.session.scalars(
        select(Person).where(Person.community_id == side.community.id).order_by(Person.id)
    ).all()
    for number, person in enumerate(people, start=1):
        person.name = f"{mark}人{number:02d}"
    side.people = people
    side.shift.title = f"{mark}巡逻班"
    side.series.title = f"{mark}周巡"
    side.hazard.description = f"{mark}路灯坏了"
    side.help_request.description = f"{mark}漏水求助"
    side.help_category.name_zh = f"{mark}漏水"
    side.help_category.name_en = f"{mark} leak"
    side.api_key.name = f"{mark}应用"
    side.reward.name = f"{mark}大米"
    side.household.notes = f"{mark}户备注"
    side.estate.address = f"{mark}大街1号"
    side.notification.params = {"title": f"{mark}巡逻班", "when": "2030-01-07 19:00"}
    side.entry.note = f"{mark}开账"
    side.door_visit = DoorVisit(
        community_id=side.community.id, shift_id=side.shift.id, household_id=side.household.id,
        outcome="needs_help", note=f"{mark}门访记录", visited_by_id=side.volunteer.id,
    )  # fmt: skip
    side.event = RequestEvent(
        community_id=side.community.id, request_id=side.help_request.id,
        actor_id=side.resident.id, action="comment", note=f"{mark}时间线",
    )  # fmt: skip
    side.consent = Consent(
        person_id=side.resident.person.id, community_id=side.community.id,
        purpose="leaderboard", notice_version="2026-11",
    )  # fmt: skip
    side.audit = AuditEntry(
        community_id=side.community.id, actor_user_id=side.secretary.id,
        actor_name=side.secretary.username, action="export", detail=f"{mark}审计",
    )  # fmt: skip
    db.session.add_all([side.door_visit, side.event, side.consent, side.audit])
    db.session.commit()


@pytest.fixture
def seeded(world):
    """Communities A and B, each with one of every kind of object (see the module's doc)."""
    for key in ("a", "b"):
        side = getattr(world, key)
        _add_duties(side)
        _enrich(side, MARKS[key])
    return world


def markers(side) -> list[str]:
    """Strings of ``side`` that no user of the other community may ever see."""
    found = [p.name for p in side.people]
    found += [p.phone for p in side.people if p.phone]
    found += [mask_phone(p.phone) for p in side.people if p.phone]
    found += [user.username for user in side.users.values()]
    found += [
        side.community.name,
        side.estate.name,
        side.grid.name,
        side.grid2.name,
        side.shift.title,
        side.series.title,
        side.hazard.description,
        side.help_request.description,
        side.help_category.name_zh,
        side.api_key.name,
        side.reward.name,
        side.redemption.voucher_code,
        side.certificate.number,
        side.household.notes,
        side.estate.address,
        side.entry.note,
        side.door_visit.note,
        side.event.note,
        side.audit.detail,
        side.volunteer.calendar_token,
    ]
    return found


def body_text(response) -> str:
    """What a response shows: its text, or the text of every part of an XLSX workbook."""
    data = response.get_data()
    if data[:2] == b"PK":  # an XLSX workbook is a zip archive of XML parts
        with ZipFile(BytesIO(data)) as book:
            parts = [book.read(name).decode("utf-8") for name in book.namelist()]
        return html.unescape("\n".join(parts))
    return data.decode("utf-8", errors="replace")


def snapshot(exclude: set[str] = LOG_TABLES) -> dict[str, list]:
    """Every row of every table (except the logs), to prove a request changed nothing."""
    rows = {}
    for table in db.metadata.sorted_tables:
        if table.name in exclude:
            continue
        result = db.session.execute(text(f'SELECT * FROM "{table.name}"')).all()
        rows[table.name] = sorted(map(tuple, result), key=repr)
    db.session.commit()
    return rows
