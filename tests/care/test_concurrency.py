"""Rules of household help that must hold under parallel requests, proven with real concurrent
requests (each thread its own client, app context and database session, as under a multi-worker
server): a visit is confirmed and paid once; a task's places are never overbooked; a missed visit
is flagged once."""

from __future__ import annotations

import threading
from datetime import time, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from portal.care import services
from portal.care.models import HelpVisit
from portal.core.timeutil import local_today, now_utc
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols import signups
from portal.patrols.models import Shift, Signup
from portal.patrols.scheduling import ShiftPlan
from portal.points.models import PointsEntry
from tests import factories
from tests.factories import PASSWORD
from tests.helpers import post_in_parallel

THREADS = 6


def _clients(app, usernames: list[str]) -> list:
    clients = []
    for username in usernames:
        client = app.test_client()
        response = client.post("/login", data={"identifier": username, "password": PASSWORD})
        assert response.status_code == 303
        clients.append(client)
    return clients


def _task(side, *, weekly: bool, capacity: int = 1):
    services.enrol_household(
        side.household, side.resident.person.id, None, side.secretary, consent_given=True
    )
    start = local_today() + timedelta(days=1)
    task = services.create_task(
        side.community.id,
        side.secretary,
        services.TaskInput(
            household_ids=[side.household.id],
            category_id=side.category.id,
            title="每周买菜",
            private_notes="",
            volunteer_sex=None,
            repeat="weekly" if weekly else "once",
            plan=ShiftPlan(
                kind="help_visit",
                title="",
                grid_id=None,
                start_time=time(9),
                end_time=time(10),
                capacity=capacity,
                minimum=1,
                points_per_hour=10,
            ),  # fmt: skip
            day=start,
            weekdays=["MO", "WE", "FR"],
            starts_on=start,
            ends_on=start + timedelta(days=27),
        ),
    )
    db.session.commit()
    return task


def test_parallel_confirmations_confirm_and_pay_once(app, care_world):
    a = care_world.a
    task = _task(a, weekly=False)
    shift = db.session.scalar(select(Shift).where(Shift.help_task_id == task.id))
    signups.sign_up(shift, a.helper.person)
    past = now_utc() - timedelta(hours=2)
    db.session.execute(
        update(Shift)
        .where(Shift.id == shift.id)
        .values(starts_at=past, ends_at=past + timedelta(hours=1))
    )
    db.session.commit()
    usernames = [a.resident.username, a.gridworker.username, a.secretary.username] * 2
    clients = _clients(app, usernames)
    url = f"/care/visits/{shift.id}/confirm"
    data = [{"came": [a.helper.person.id], "rating": str(n % 5 + 1)} for n in range(THREADS)]
    statuses = post_in_parallel(app, clients, [url] * THREADS, data)
    assert sorted(statuses) == [303] + [422] * (THREADS - 1)
    assert db.session.scalar(select(func.count()).select_from(HelpVisit)) == 1
    signup = db.session.scalar(select(Signup).where(Signup.shift_id == shift.id))
    assert signup.hours == Decimal("1.00")
    entries = db.session.scalars(
        select(PointsEntry).where(PointsEntry.source_id == signup.id)
    ).all()
    assert [(e.points, e.hours) for e in entries] == [(10, Decimal("1.00"))]


def test_parallel_takes_of_a_one_place_series_never_overbook(app, care_world):
    a = care_world.a
    task = _task(a, weekly=True)
    helpers = []
    for n in range(THREADS):
        user = factories.make_user("volunteer", a.community, username=f"carer{n}")
        factories.make_volunteer(user.person, ("red_armband",), grid_id=a.grid.id)
        helpers.append(user)
    db.session.commit()
    clients = _clients(app, [u.username for u in helpers])
    url = f"/care/tasks/{task.id}/take"
    statuses = post_in_parallel(app, clients, [url] * THREADS, [{}] * THREADS)
    assert statuses == [303] * THREADS
    shifts = db.session.scalars(select(Shift).where(Shift.help_task_id == task.id)).all()
    assert len(shifts) >= 8
    for shift in shifts:
        confirmed = db.session.scalar(
            select(func.count()).where(Signup.shift_id == shift.id, Signup.status == "confirmed")
        )
        waiting = db.session.scalar(
            select(func.count()).where(Signup.shift_id == shift.id, Signup.status == "waitlisted")
        )
        assert (shift.taken, confirmed, waiting) == (1, 1, THREADS - 1)


def test_parallel_missed_visit_runs_flag_once(app, care_world):
    a = care_world.a
    task = _task(a, weekly=False)
    shift = db.session.scalar(select(Shift).where(Shift.help_task_id == task.id))
    past = now_utc() - timedelta(hours=3)
    db.session.execute(
        update(Shift)
        .where(Shift.id == shift.id)
        .values(starts_at=past, ends_at=past + timedelta(hours=1))
    )
    db.session.commit()
    barrier = threading.Barrier(THREADS)
    flagged: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                if db.engine.dialect.name == "sqlite":
                    db.session.connection(execution_options={"sqlite_immediate": True})
                flagged.append(services.flag_missed_visits())
                db.session.commit()
            except BaseException as exc:  # reported below
                db.session.rollback()
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(flagged) == [0] * (THREADS - 1) + [1]
    db.session.commit()
    assert db.session.scalars(select(HelpVisit.status)).all() == ["missed"]
    notices = db.session.scalars(
        select(Notification.user_id).where(Notification.kind == "help_visit_missed")
    ).all()
    assert notices == [a.gridworker.id]
