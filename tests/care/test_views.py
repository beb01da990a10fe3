"""Scheduled household help through the browser's requests: enrolment, planning, the
volunteer's list and series sign-up, the visit at the door, the household's confirmation, the
coverage page, and who may see and do what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from portal.care.models import CareHousehold, HelpTask, HelpVisit, TaskCommitment
from portal.core.timeutil import local_today, now_utc
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols.models import Shift, ShiftSeries, Signup
from portal.points.models import PointsEntry
from portal.trust.models import Consent
from tests import factories


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _enrol(client, auth, side, **extra):
    auth.login(side.secretary.username)
    data = {"person_id": side.resident.person.id, "consent": "y", **extra}
    return client.post(f"/care/households/enrol/{side.household.id}", data=data)


def _task_form(side, **extra):
    start = local_today() + timedelta(days=1)
    data = {
        "household_ids": [side.household.id],
        "category_id": side.category.id,
        "title": "每周买菜",
        "repeat": "weekly",
        "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
        "starts_on": start.isoformat(),
        "ends_on": (start + timedelta(days=13)).isoformat(),
        "start_time": "09:00",
        "end_time": "10:00",
        "capacity": "1",
        "volunteer_sex": "",
        "private_notes": "钥匙在门卫处，买菜清单贴在冰箱上",
    }
    data.update(extra)
    return data


def _care(side) -> CareHousehold:
    return db.session.scalar(
        select(CareHousehold).where(CareHousehold.household_id == side.household.id)
    )


def test_secretary_enrols_a_household_with_its_consent_and_prints_its_door_card(
    client, auth, care_world
):
    a = care_world.a
    response = _enrol(client, auth, a, volunteer_sex="female")
    assert response.status_code == 303
    care = _care(a)
    assert care.volunteer_sex == "female" and len(care.door_code) == 8
    consent = db.session.scalar(select(Consent).where(Consent.person_id == a.resident.person.id))
    assert consent.purpose == "regular_help" and consent.recorded_by_user_id == a.secretary.id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert a.resident.person.name in page and "No help is planned" in page or "没有" in page
    card = client.get(f"/care/households/{care.id}/card")
    assert card.status_code == 200 and care.door_code in card.get_data(as_text=True)
    assert "<svg" in card.get_data(as_text=True)
    assert card.headers["Cache-Control"] == "no-store"
    # The household page under Places links to it.
    assert f"/care/households/{care.id}" in client.get(
        f"/places/households/{a.household.id}"
    ).get_data(as_text=True)


def test_enrolling_without_the_consent_ticked_saves_nothing_and_keeps_the_choice(
    client, auth, care_world
):
    a = care_world.a
    auth.login(a.secretary.username)
    client.post("/language", data={"lang": "en"})
    response = client.post(
        f"/care/households/enrol/{a.household.id}",
        data={"person_id": a.resident.person.id, "volunteer_sex": "female"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Record the household&#39;s consent to regular help visits first" in body
    assert 'value="female" selected' in body or "selected" in body
    assert _count(CareHousehold) == 0 and _count(Consent) == 0


def test_a_grid_worker_plans_a_daily_task_and_bad_input_saves_nothing(client, auth, care_world):
    a = care_world.a
    _enrol(client, auth, a, volunteer_sex="female")
    care = _care(a)
    client.post("/logout")
    auth.login(a.gridworker.username)
    client.post("/language", data={"lang": "en"})
    url = f"/care/tasks/new?care={care.id}"
    assert client.get(url).status_code == 200
    # No end date: the series rule's message, nothing saved, what was typed kept.
    response = client.post(url, data=_task_form(a, ends_on="", volunteer_sex="female"))
    body = response.get_data(as_text=True)
    assert "a series with no end is not allowed" in body
    assert "钥匙在门卫处" in body
    # Over 500 occurrences (daily for 600 days: still within the two years a date may reach).
    far = (local_today() + timedelta(days=600)).isoformat()
    body = client.post(url, data=_task_form(a, ends_on=far, volunteer_sex="female")).get_data(
        as_text=True
    )
    assert "more than 500" in body
    # The household asked for women volunteers only: "any" is refused.
    body = client.post(url, data=_task_form(a)).get_data(as_text=True)
    assert "Women volunteers only" in body
    assert _count(HelpTask) == 0 and _count(Shift) == 0 and _count(ShiftSeries) == 0
    response = client.post(url, data=_task_form(a, volunteer_sex="female"))
    assert response.status_code == 303
    task = db.session.scalar(select(HelpTask))
    shifts = db.session.scalars(select(Shift).where(Shift.help_task_id == task.id)).all()
    assert len(shifts) == 14
    assert {s.kind for s in shifts} == {"help_visit"}
    assert {s.checkin_code for s in shifts} == {care.door_code}
    assert task.grid_id == a.grid.id and task.volunteer_sex == "female"


def test_a_task_for_a_household_not_enrolled_or_without_consent_is_refused(
    client, auth, care_world
):
    a = care_world.a
    _enrol(client, auth, a)
    care = _care(a)
    db.session.execute(update(Consent).values(withdrawn_at=now_utc()))
    db.session.commit()
    client.post("/language", data={"lang": "en"})
    body = client.post(f"/care/tasks/new?care={care.id}", data=_task_form(a)).get_data(as_text=True)
    assert "No consent to regular help is recorded for room 101" in body
    body = client.post(
        f"/care/tasks/new?care={care.id}", data=_task_form(a, household_ids=[a.household2.id])
    ).get_data(as_text=True)
    assert "Choose households enrolled for regular help" in body
    assert _count(HelpTask) == 0 and _count(Shift) == 0


def _planned(client, auth, side, **extra) -> HelpTask:
    _enrol(client, auth, side, volunteer_sex="female")
    care = _care(side)
    response = client.post(
        f"/care/tasks/new?care={care.id}", data=_task_form(side, volunteer_sex="female", **extra)
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    client.post("/logout")
    return db.session.scalar(select(HelpTask))


def test_volunteers_see_tasks_of_their_grid_and_take_the_whole_series(client, auth, care_world):
    a = care_world.a
    task = _planned(client, auth, a)
    auth.login(a.helper.username)
    client.post("/language", data={"lang": "en"})
    listing = client.get("/care/tasks").get_data(as_text=True)
    assert "每周买菜" in listing
    page = client.get(f"/care/tasks/{task.id}").get_data(as_text=True)
    assert "钥匙在门卫处" not in page and "shown once you take a visit" in page
    response = client.post(f"/care/tasks/{task.id}/take")
    assert response.status_code == 303
    taken = db.session.scalars(
        select(Signup.status).where(Signup.person_id == a.helper.person.id)
    ).all()
    assert taken == ["confirmed"] * 14
    assert _count(TaskCommitment) == 1
    page = client.get(f"/care/tasks/{task.id}").get_data(as_text=True)
    assert "钥匙在门卫处" in page and "Stop helping with every visit" in page
    # The male volunteer is refused by the household's wish, with the reason.
    client.post("/logout")
    auth.login(a.volunteer.username)
    client.post("/language", data={"lang": "en"})
    shift = db.session.scalars(select(Shift).order_by(Shift.starts_at)).first()
    db.session.execute(update(Shift).where(Shift.id == shift.id).values(capacity=2))
    db.session.commit()
    answer = client.post(f"/shifts/{shift.id}/signup", follow_redirects=True)
    assert "This household asked for Women volunteers only" in answer.get_data(as_text=True)
    assert (
        db.session.scalar(select(func.count()).where(Signup.person_id == a.volunteer.person.id))
        == 0
    )
    # Leaving the series gives the places back.
    client.post("/logout")
    auth.login(a.helper.username)
    assert client.post(f"/care/tasks/{task.id}/leave").status_code == 303
    statuses = db.session.scalars(
        select(Signup.status).where(Signup.person_id == a.helper.person.id)
    ).all()
    assert set(statuses) == {"cancelled"} and _count(TaskCommitment) == 0


def _visit_now(client, auth, side) -> Shift:
    """A one-off visit starting in 10 minutes (check-in is open), the helper holding its place.

    Planned through the form for tomorrow, then moved to now (whatever the hour: a visit planned
    for today could not fit before local midnight late in the evening)."""
    _enrol(client, auth, side, volunteer_sex="female")
    care = _care(side)
    tomorrow = (local_today() + timedelta(days=1)).isoformat()
    response = client.post(
        f"/care/tasks/new?care={care.id}",
        data=_task_form(side, repeat="once", day=tomorrow, volunteer_sex="female"),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    client.post("/logout")
    shift = db.session.scalar(select(Shift))
    start = now_utc() + timedelta(minutes=10)
    db.session.execute(
        update(Shift)
        .where(Shift.id == shift.id)
        .values(starts_at=start, ends_at=start + timedelta(hours=1))
    )
    db.session.commit()
    auth.login(side.helper.username)
    client.post("/language", data={"lang": "en"})
    assert client.post(f"/shifts/{shift.id}/signup").status_code == 303
    return shift


def test_the_volunteer_checks_in_at_the_door_and_reports_the_visit_done(client, auth, care_world):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "钥匙在门卫处" in page and 'id="door-checkin"' in page
    wrong = client.post(f"/care/visits/{shift.id}/checkin", data={"code": "WRONG123"})
    assert wrong.status_code == 422
    assert "Wrong code. Check the card on the household" in wrong.get_data(as_text=True)
    care = _care(a)
    ok = client.post(f"/care/visits/{shift.id}/checkin", data={"code": care.door_code.lower()})
    assert ok.status_code == 303
    signup = db.session.scalar(select(Signup).where(Signup.shift_id == shift.id))
    assert signup.checked_in_at is not None
    done = client.post(
        f"/care/visits/{shift.id}/report", data={"note": "买了米和青菜", "outcome": "done"}
    )
    assert done.status_code == 303
    visit = db.session.scalar(select(HelpVisit))
    assert (visit.status, visit.note, visit.request_id) == ("done", "买了米和青菜", None)
    again = client.post(f"/care/visits/{shift.id}/report", data={"note": "x", "outcome": "done"})
    assert "already reported" in again.get_data(as_text=True)


def test_something_wrong_opens_a_request_to_the_grid_worker(client, auth, care_world):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    client.post(f"/care/visits/{shift.id}/checkin", data={"code": _care(a).door_code})
    response = client.post(
        f"/care/visits/{shift.id}/report", data={"note": "老人发烧了", "outcome": "problem"}
    )
    assert response.status_code == 303
    visit = db.session.scalar(select(HelpVisit))
    assert visit.status == "problem" and visit.request_id is not None
    from portal.help.models import HelpRequest

    req = db.session.get(HelpRequest, visit.request_id)
    assert req.handler_user_id == a.gridworker.id and "老人发烧了" in req.description
    assert req.urgency == "urgent"


def test_something_wrong_takes_one_tap(client, auth, care_world):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    client.post(f"/care/visits/{shift.id}/checkin", data={"code": _care(a).door_code})
    response = client.post(f"/care/visits/{shift.id}/report", data={"outcome": "problem"})
    assert response.status_code == 303
    visit = db.session.scalar(select(HelpVisit))
    from portal.help.models import HelpRequest

    req = db.session.get(HelpRequest, visit.request_id)
    assert visit.status == "problem" and req.handler_user_id == a.gridworker.id
    assert "no details given" in req.description


def test_the_household_confirms_once_and_the_hours_enter_the_ledger_once(client, auth, care_world):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    client.post(f"/care/visits/{shift.id}/checkin", data={"code": _care(a).door_code})
    client.post("/logout")
    # The visit has happened: move it into the past.
    past = now_utc() - timedelta(hours=2)
    db.session.execute(
        update(Shift)
        .where(Shift.id == shift.id)
        .values(starts_at=past, ends_at=past + timedelta(hours=1))
    )
    db.session.commit()
    auth.login(a.resident.username)
    client.post("/language", data={"lang": "en"})
    mine = client.get("/care/my-household").get_data(as_text=True)
    assert "Help visits to my home" in mine
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert 'id="visit-confirm"' in page and "钥匙在门卫处" not in page
    bad = client.post(
        f"/care/visits/{shift.id}/confirm",
        data={"came": [a.helper.person.id], "rating": "9"},
    )
    assert "Choose 1 to 5 stars" in bad.get_data(as_text=True)
    response = client.post(
        f"/care/visits/{shift.id}/confirm",
        data={"came": [a.helper.person.id], "rating": "5", "comment": "很细心"},
    )
    assert response.status_code == 303
    visit = db.session.scalar(select(HelpVisit))
    assert visit.rating == 5 and visit.confirmed_by_id == a.resident.id
    signup = db.session.scalar(select(Signup).where(Signup.shift_id == shift.id))
    assert signup.hours == Decimal("1.00") and signup.attendance == "present"
    entries = db.session.scalars(
        select(PointsEntry).where(
            PointsEntry.source_type == "signup", PointsEntry.source_id == signup.id
        )
    ).all()
    assert len(entries) == 1 and entries[0].hours == Decimal("1.00")
    again = client.post(
        f"/care/visits/{shift.id}/confirm", data={"came": [a.helper.person.id], "rating": "4"}
    )
    assert "already confirmed" in again.get_data(as_text=True)
    assert _count(PointsEntry) == 1
    assert db.session.scalar(select(HelpVisit.rating)) == 5


def test_a_resident_of_another_household_may_not_confirm(client, auth, care_world):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    client.post("/logout")
    auth.login(a.pending.username)  # a resident of household 2
    response = client.post(f"/care/visits/{shift.id}/confirm", data={"came": [a.helper.person.id]})
    assert response.status_code == 403
    assert db.session.scalar(select(HelpVisit)) is None


def test_missed_visits_are_flagged_once_by_the_reminder_command(client, auth, care_world, runner):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    past = now_utc() - timedelta(hours=3)
    db.session.execute(
        update(Shift)
        .where(Shift.id == shift.id)
        .values(starts_at=past, ends_at=past + timedelta(hours=1))
    )
    db.session.commit()
    first = runner.invoke(args=["send-reminders"])
    assert "1 missed help visit(s) flagged" in first.output
    second = runner.invoke(args=["send-reminders"])
    assert "0 missed help visit(s) flagged" in second.output
    assert db.session.scalar(select(HelpVisit.status)) == "missed"
    notes = db.session.scalars(
        select(Notification).where(Notification.kind == "help_visit_missed")
    ).all()
    assert [n.user_id for n in notes] == [a.gridworker.id]


def test_coverage_highlights_households_with_no_help_or_unfilled_places(client, auth, care_world):
    a = care_world.a
    _planned(client, auth, a)
    # A second care household in the same grid with nothing planned.
    other = factories.make_household(a.building, room="102")
    person = factories.make_person(a.community, household=other, name="李奶奶")
    db.session.commit()
    auth.login(a.secretary.username)
    client.post(f"/care/households/enrol/{other.id}", data={"person_id": person.id, "consent": "y"})
    client.post("/language", data={"lang": "en"})
    page = client.get(f"/care/coverage?grid={a.grid.id}").get_data(as_text=True)
    assert "No help planned" in page
    assert "short of volunteers" in page
    assert page.count('class="none"') == 1


@pytest.mark.parametrize(
    ("role", "status"),
    [("resident", 403), ("volunteer", 403), ("grid_worker", 200), ("secretary", 200),
     ("subdistrict_admin", 200)],
)  # fmt: skip
def test_coverage_and_household_pages_per_role(client, auth, care_world, role, status):
    a = care_world.a
    _planned(client, auth, a)
    care = _care(a)
    auth.login(a.users[role].username)
    assert client.get("/care/coverage").status_code == status
    assert client.get(f"/care/households/{care.id}").status_code == status
    planning = client.get(f"/care/tasks/new?care={care.id}").status_code
    assert planning == (200 if role in ("grid_worker", "secretary") else 403)


def test_private_notes_are_shown_to_staff_and_assigned_volunteers_only(client, auth, care_world):
    a = care_world.a
    task = _planned(client, auth, a)
    for role, shown in [("resident", False), ("volunteer", False), ("grid_worker", True),
                        ("secretary", True), ("subdistrict_admin", True)]:  # fmt: skip
        auth.login(a.users[role].username)
        page = client.get(f"/care/tasks/{task.id}").get_data(as_text=True)
        assert ("钥匙在门卫处" in page) is shown, role
        client.post("/logout")


def test_another_community_or_grid_gets_404(client, auth, care_world):
    a, b = care_world.a, care_world.b
    task = _planned(client, auth, a)
    care = _care(a)
    shift = db.session.scalars(select(Shift)).first()
    for user in b.users.values():
        auth.login(user.username)
        assert client.get(f"/care/tasks/{task.id}").status_code in (403, 404)
        assert client.get(f"/care/households/{care.id}").status_code in (403, 404)
        assert client.post(f"/care/tasks/{task.id}/take").status_code in (403, 404)
        assert client.post(f"/care/visits/{shift.id}/confirm").status_code in (403, 404)
        client.post("/logout")
    # A grid worker of another grid of the same community.
    other = factories.make_user("grid_worker", a.community, username="gw2", grids=[a.grid2])
    db.session.commit()
    auth.login(other.username)
    assert client.get(f"/care/households/{care.id}").status_code == 404
    assert client.get(f"/care/tasks/{task.id}").status_code == 404
    assert client.get(f"/care/coverage?grid={a.grid.id}").status_code == 404


def test_ending_a_task_cancels_its_coming_visits_and_tells_the_volunteers(client, auth, care_world):
    a = care_world.a
    task = _planned(client, auth, a)
    auth.login(a.helper.username)
    client.post(f"/care/tasks/{task.id}/take")
    client.post("/logout")
    auth.login(a.volunteer.username)
    assert client.post(f"/care/tasks/{task.id}/end").status_code == 403
    client.post("/logout")
    auth.login(a.gridworker.username)
    response = client.post(f"/care/tasks/{task.id}/end", data={"reason": "老人搬去子女家"})
    assert response.status_code == 303
    assert db.session.get(HelpTask, task.id).status == "ended"
    statuses = db.session.scalars(select(Shift.status).where(Shift.help_task_id == task.id)).all()
    assert set(statuses) == {"cancelled"}
    told = db.session.scalars(
        select(Notification.user_id).where(Notification.kind == "shift_cancelled")
    ).all()
    assert set(told) == {a.helper.id} and len(told) == 14


def test_withdrawing_the_consent_stops_the_households_help(client, auth, care_world):
    a = care_world.a
    task = _planned(client, auth, a)
    consent = db.session.scalar(select(Consent).where(Consent.purpose == "regular_help"))
    auth.login(a.resident.username)
    response = client.post("/me/privacy/withdraw", data={"consent_id": consent.id})
    assert response.status_code == 303
    assert db.session.get(HelpTask, task.id).status == "ended"
    assert set(db.session.scalars(select(Shift.status).where(Shift.help_task_id == task.id))) == {
        "cancelled"
    }
    client.post("/logout")
    auth.login(a.secretary.username)
    client.post("/language", data={"lang": "en"})
    page = client.get(f"/care/households/{_care(a).id}").get_data(as_text=True)
    assert "The consent to regular help was withdrawn" in page


def test_my_data_download_names_the_enrolment_on_my_consent(client, auth, care_world):
    a = care_world.a
    task = _planned(client, auth, a)
    auth.login(a.resident.username)
    data = client.get("/me/data").get_json(force=True)
    enrolled = data["regular_help"]["households_enrolled_on_my_consent"]
    assert len(enrolled) == 1 and enrolled[0]["volunteer_sex"] == "female"
    client.post("/logout")
    auth.login(a.helper.username)
    client.post(f"/care/tasks/{task.id}/take")
    data = client.get("/me/data").get_json(force=True)
    assert data["regular_help"]["tasks_i_help_with_every_visit"] == [task.id]
    assert data["regular_help"]["households_enrolled_on_my_consent"] == []


def test_a_skill_needed_admits_only_volunteers_whose_registration_names_it(
    client, auth, care_world
):
    a = care_world.a
    _enrol(client, auth, a)
    care = _care(a)
    client.post("/language", data={"lang": "en"})
    long_skill = client.post(
        f"/care/tasks/new?care={care.id}", data=_task_form(a, required_skill="驾" * 41)
    )
    assert "40 characters" in long_skill.get_data(as_text=True)
    assert _count(HelpTask) == 0
    response = client.post(
        f"/care/tasks/new?care={care.id}", data=_task_form(a, required_skill="驾驶")
    )
    assert response.status_code == 303
    task = db.session.scalar(select(HelpTask))
    assert task.required_skill == "驾驶"
    client.post("/logout")
    shift = db.session.scalars(select(Shift).order_by(Shift.starts_at)).first()
    auth.login(a.helper.username)
    client.post("/language", data={"lang": "en"})
    refused = client.post(f"/shifts/{shift.id}/signup", follow_redirects=True)
    assert "names the skill “驾驶”" in refused.get_data(as_text=True)
    a.helper.person.volunteer.skills = "会驾驶，有车"
    db.session.commit()
    assert client.post(f"/shifts/{shift.id}/signup").status_code == 303
    assert (
        db.session.scalar(select(Signup.status).where(Signup.person_id == a.helper.person.id))
        == "confirmed"
    )


def test_the_door_cards_qr_code_checks_in_through_the_common_check_in_page(
    client, auth, care_world
):
    a = care_world.a
    shift = _visit_now(client, auth, a)
    code = _care(a).door_code
    page = client.get(f"/checkin?code={code}").get_data(as_text=True)
    assert f'value="{code}"' in page
    response = client.post("/checkin", data={"code": code})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/shifts/{shift.id}")
    signup = db.session.scalar(select(Signup).where(Signup.shift_id == shift.id))
    assert signup.checked_in_at is not None
    # Hours come with the household's confirmation, not with a check-out.
    out = client.post(f"/shifts/{shift.id}/checkout", follow_redirects=True)
    assert "the household confirms it and your hours" in out.get_data(as_text=True)
    assert db.session.scalar(select(Signup.hours_recorded_at)) is None


@pytest.mark.parametrize(
    "data",
    [
        {"repeat": "once", "day": (local_today() + timedelta(days=3 * 365)).isoformat()},
        {"repeat": "once", "day": "9999-12-31"},
        {"ends_on": (local_today() + timedelta(days=3 * 365)).isoformat(), "weekdays": ["MO"]},
    ],
    ids=["once in three years", "once on 9999-12-31", "weekly until three years ahead"],
)
def test_household_help_is_planned_within_two_years(client, auth, care_world, data):
    a = care_world.a
    _enrol(client, auth, a)
    care = _care(a)
    client.post("/logout")
    auth.login(a.gridworker.username)
    client.post("/language", data={"lang": "en"})
    response = client.post(f"/care/tasks/new?care={care.id}", data=_task_form(a, **data))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Choose a date within two years from today" in body
    assert "钥匙在门卫处" in body
    assert _count(HelpTask) == 0 and _count(Shift) == 0 and _count(ShiftSeries) == 0
