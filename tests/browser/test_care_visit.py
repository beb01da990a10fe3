"""A volunteer on a phone takes a weekly household help task and checks in at the door."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select, update

from portal.care import services
from portal.care.models import HelpVisit, TaskCommitment
from portal.core.timeutil import now_utc, to_local
from portal.extensions import db
from portal.help.models import Category
from portal.patrols.models import Shift, Signup
from portal.patrols.scheduling import ShiftPlan
from tests import factories
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD


def _weekly_task(world):
    """A daily task for household 101 whose first visit starts in 10 minutes."""
    a = world.a
    major = Category(
        community_id=a.community.id, code="help", name_zh="邻里互助", name_en="Neighbour help",
        kind="neighbour_help",
    )  # fmt: skip
    db.session.add(major)
    db.session.flush()
    category = Category(
        community_id=a.community.id, parent_id=major.id, code="help.shopping", name_zh="代购",
        name_en="Shopping", kind="neighbour_help", handler="grid_worker",
    )  # fmt: skip
    db.session.add(category)
    helper = factories.make_user("volunteer", a.community, username="helper_a", name="陈秀英")
    helper.person.sex = "female"
    factories.make_volunteer(helper.person, ("five_elders",), grid_id=a.grid.id)
    db.session.flush()
    care = services.enrol_household(
        a.household, a.resident.person.id, "female", a.secretary, consent_given=True
    )
    # Planned from tomorrow 09:00; the first visit is then moved to start in 10 minutes (a plan
    # made for today could not fit before local midnight late in the evening).
    start_day = to_local(now_utc()).date() + timedelta(days=1)
    task = services.create_task(
        a.community.id,
        a.secretary,
        services.TaskInput(
            household_ids=[a.household.id],
            category_id=category.id,
            title="每周买菜",
            private_notes="钥匙在门卫处",
            volunteer_sex="female",
            repeat="weekly",
            plan=ShiftPlan(
                kind="help_visit",
                title="",
                grid_id=None,
                start_time=time(9),
                end_time=time(10),
                capacity=1,
                minimum=1,
                points_per_hour=10,
            ),  # fmt: skip
            weekdays=["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
            starts_on=start_day,
            ends_on=start_day + timedelta(days=20),
        ),
    )
    first = db.session.scalars(
        select(Shift).where(Shift.help_task_id == task.id).order_by(Shift.starts_at)
    ).first()
    soon = now_utc() + timedelta(minutes=10)
    db.session.execute(
        update(Shift)
        .where(Shift.id == first.id)
        .values(starts_at=soon, ends_at=soon + timedelta(hours=1))
    )
    db.session.commit()
    return task, care, helper


@needs_browser
def test_volunteer_takes_a_weekly_task_and_checks_in_at_the_door(world, live_server, browser_page):
    page = browser_page
    task, care, helper = _weekly_task(world)
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.cspViolations.push(e.violatedDirective));"
    )
    page.goto(f"{live_server}/login")
    page.fill("#identifier", "helper_a")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    # The list of households near the volunteer, then the task.
    page.goto(f"{live_server}/care/tasks")
    page.click(f"a[href='/care/tasks/{task.id}']")
    assert "钥匙在门卫处" not in page.content()
    page.click(f"form[action='/care/tasks/{task.id}/take'] button")
    page.wait_for_selector("#private-notes")
    assert "钥匙在门卫处" in page.inner_text("#private-notes")
    db.session.commit()
    assert db.session.scalar(select(TaskCommitment.person_id)) == helper.person.id
    places = db.session.scalars(
        select(Signup.status).where(Signup.person_id == helper.person.id)
    ).all()
    assert places and set(places) == {"confirmed"}

    # Today's visit: check in with the code on the household's door card, then mark it done.
    first = db.session.scalars(
        select(Shift).where(Shift.help_task_id == task.id).order_by(Shift.starts_at)
    ).first()
    page.click(f"#task-occurrences a[href='/shifts/{first.id}']")
    page.fill("#door-checkin input[name=code]", "WRONG999")
    page.click("#door-checkin button[type=submit]")
    page.wait_for_selector("#door-checkin .error")
    page.fill("#door-checkin input[name=code]", care.door_code.lower())
    page.click("#door-checkin button[type=submit]")
    page.wait_for_selector("#visit-report")
    page.fill("#visit-report textarea[name=note]", "买了米和青菜，老人身体不错")
    page.click("#visit-report button[value=done]")
    page.wait_for_selector("#visit-status")
    db.session.commit()
    signup = db.session.scalar(
        select(Signup).where(Signup.shift_id == first.id, Signup.person_id == helper.person.id)
    )
    assert signup.checked_in_at is not None
    visit = db.session.scalar(select(HelpVisit).where(HelpVisit.shift_id == first.id))
    assert (visit.status, visit.note) == ("done", "买了米和青菜，老人身体不错")
    assert page.evaluate("window.cspViolations") == []
    # The wrong code was answered 422 (the page with its message): Chromium logs that status.
    assert page.problems == [
        "Failed to load resource: the server responded with a status of 422 (UNPROCESSABLE ENTITY)"
    ]
