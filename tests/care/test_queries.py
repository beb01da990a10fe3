"""The household help pages run a fixed number of SQL statements whatever the data size (within
the budget of tests/test_page_queries.py), and their lists are paginated."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select, update

from portal.care import services
from portal.care.models import HelpVisit
from portal.core.timeutil import local_today, now_utc
from portal.extensions import db
from portal.patrols import signups
from portal.patrols.models import Shift
from portal.patrols.scheduling import ShiftPlan
from tests import factories
from tests.helpers import count_queries
from tests.test_page_queries import QUERY_BUDGET


def _grow(side, n: int) -> None:
    """``n`` enrolled households of building 1, each with a daily task, its first visit taken
    and a past visit confirmed."""
    start = local_today() + timedelta(days=1)
    for i in range(n):
        household = (
            side.household if i == 0 else factories.make_household(side.building, room=f"9{i:02d}")
        )
        person = (
            side.resident.person
            if i == 0
            else factories.make_person(side.community, household=household)
        )
        services.enrol_household(household, person.id, None, side.secretary, consent_given=True)
        task = services.create_task(
            side.community.id,
            side.secretary,
            services.TaskInput(
                household_ids=[household.id], category_id=side.category.id, title=f"代购{i}",
                private_notes="备注", volunteer_sex=None, repeat="weekly",
                plan=ShiftPlan(kind="help_visit", title="", grid_id=None,
                               start_time=time(7 + 2 * i), end_time=time(8 + 2 * i), capacity=2,
                               minimum=1, points_per_hour=10),
                weekdays=["MO", "TU", "WE", "TH", "FR", "SA", "SU"], starts_on=start,
                ends_on=start + timedelta(days=30),
            ),
        )  # fmt: skip
        shifts = db.session.scalars(
            select(Shift).where(Shift.help_task_id == task.id).order_by(Shift.starts_at)
        ).all()
        signups.sign_up(shifts[0], side.helper.person)
        # A past visit: the second occurrence moved into the past, signed up, confirmed.
        past = now_utc() - timedelta(days=2, hours=i)
        signups.sign_up(shifts[1], side.helper.person)
        db.session.execute(
            update(Shift)
            .where(Shift.id == shifts[1].id)
            .values(starts_at=past, ends_at=past + timedelta(hours=1))
        )
        db.session.refresh(shifts[1])
        services.confirm_visit(
            shifts[1], side.secretary, came=[side.helper.person.id], rating=5, comment="",
            now=now_utc(),
        )  # fmt: skip
    db.session.commit()


def _pages(side) -> dict[str, list[str]]:
    care = services.care_of_household(side.household.id)
    task_id = db.session.scalar(select(HelpVisit.task_id).order_by(HelpVisit.id))
    shift_id = db.session.scalar(
        select(Shift.id)
        .where(Shift.help_task_id == task_id, Shift.starts_at > now_utc())
        .order_by(Shift.starts_at)
    )
    return {
        side.helper.username: ["/care/tasks", f"/care/tasks/{task_id}", f"/shifts/{shift_id}"],
        side.secretary.username: [
            f"/care/coverage?grid={side.grid.id}",
            f"/care/households/{care.id}",
            f"/care/tasks/{task_id}",
        ],
        side.resident.username: ["/care/my-household", f"/shifts/{shift_id}"],
    }


def _shape(path: str) -> str:
    """The path without its ids and query: the same page at both sizes."""
    return "/".join("N" if part.isdigit() else part for part in path.split("?")[0].split("/"))


def _counts(client, auth, side) -> dict[str, int]:
    counts = {}
    for username, paths in _pages(side).items():
        auth.login(username)
        for path in paths:
            client.get(path)  # warm: first-request work is not per page
            with count_queries() as counter:
                response = client.get(path)
            assert response.status_code == 200, (username, path)
            counts[f"{username} {_shape(path)}"] = counter["n"]
        client.post("/logout")
    return counts


def test_care_pages_keep_a_fixed_statement_count(client, auth, care_world):
    a = care_world.a
    _grow(a, 2)
    small = _counts(client, auth, a)
    db.session.execute(
        update(HelpVisit).values(rating=4)
    )  # more rows below must not change the counts
    _grow_more(a)
    large = _counts(client, auth, a)
    assert small == large
    assert max(large.values()) <= QUERY_BUDGET, large


def _grow_more(side) -> None:
    """Twelve more households with tasks and visits in the same building."""
    start = local_today() + timedelta(days=1)
    for i in range(12):
        household = factories.make_household(side.building, room=f"8{i:02d}")
        person = factories.make_person(side.community, household=household)
        services.enrol_household(household, person.id, None, side.secretary, consent_given=True)
        task = services.create_task(
            side.community.id,
            side.secretary,
            services.TaskInput(
                household_ids=[household.id, side.household.id], category_id=side.category.id,
                title=f"陪护{i}", private_notes="", volunteer_sex=None, repeat="weekly",
                plan=ShiftPlan(kind="help_visit", title="", grid_id=None, start_time=time(14),
                               end_time=time(15), capacity=1, minimum=1, points_per_hour=10),
                weekdays=["MO", "WE", "FR"], starts_on=start, ends_on=start + timedelta(days=30),
            ),
        )  # fmt: skip
        shifts = db.session.scalars(
            select(Shift).where(Shift.help_task_id == task.id).order_by(Shift.starts_at)
        ).all()
        past = now_utc() - timedelta(days=3, hours=i)
        carer = factories.make_user("volunteer", side.community, username=f"carer{i}")
        factories.make_volunteer(carer.person, ("red_armband",), grid_id=side.grid.id)
        signups.sign_up(shifts[0], carer.person)
        db.session.execute(
            update(Shift)
            .where(Shift.id == shifts[0].id)
            .values(starts_at=past, ends_at=past + timedelta(hours=1))
        )
        db.session.refresh(shifts[0])
        services.confirm_visit(
            shifts[0], side.secretary, came=[carer.person.id], rating=4, comment="",
            now=now_utc(),
        )  # fmt: skip
    db.session.commit()
