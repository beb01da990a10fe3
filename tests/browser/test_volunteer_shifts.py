"""A volunteer on a phone: find a shift, take a place through htmx, give it back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.patrols.models import Shift, Signup
from tests import factories
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD


def _shift_with_one_place_taken(world) -> Shift:
    a = world.a
    starts_at = (now_utc() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    shift = Shift(
        community_id=a.community.id,
        grid_id=a.grid.id,
        kind="patrol",
        title="育才花园夜间巡逻",
        meeting_point="北门岗亭",
        route=[{"building_id": a.building.id, "label": ""}],
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        capacity=5,
        minimum=2,
        taken=1,
        allowed_types="red_armband",
        checkin_code="K7M2QX",
    )
    db.session.add(shift)
    db.session.flush()
    other = factories.make_user("volunteer", a.community, name="李桂兰")
    factories.make_volunteer(other.person, ("red_armband",), grid_id=a.grid.id)
    db.session.add(
        Signup(
            community_id=a.community.id,
            shift_id=shift.id,
            person_id=other.person.id,
            status="confirmed",
        )
    )
    db.session.commit()
    return shift


def _row(shift: Shift, person_id: int) -> tuple[int, str | None]:
    db.session.commit()  # end the test's read snapshot: see what the server wrote
    taken = db.session.scalar(select(Shift.taken).where(Shift.id == shift.id))
    status = db.session.scalar(
        select(Signup.status).where(Signup.shift_id == shift.id, Signup.person_id == person_id)
    )
    return taken, status


@needs_browser
def test_volunteer_signs_up_and_cancels_on_a_phone(world, live_server, browser_page):
    page = browser_page
    shift = _shift_with_one_place_taken(world)
    person_id = world.a.volunteer.person.id
    htmx_requests: list[str] = []
    page.on(
        "request",
        lambda req: htmx_requests.append(req.url) if req.headers.get("hx-request") else None,
    )
    # CSP violations are reported as events too (the init script is not subject to the CSP).
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.cspViolations.push(e.violatedDirective));"
    )

    page.goto(f"{live_server}/login")
    page.fill("#identifier", "volunteer_a")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.click("form.lang button[value=en]")  # English, so that the texts can be asserted
    page.wait_for_load_state()

    page.goto(f"{live_server}/shifts")
    item = page.locator(f"#shift-{shift.id}")
    assert "育才花园夜间巡逻" in item.inner_text()
    item.get_by_role("link", name="育才花园夜间巡逻").click()
    page.wait_for_url(f"{live_server}/shifts/{shift.id}")
    detail_url = page.url

    box = page.locator(f"#signup-{shift.id}")
    places = page.locator(f"#places-{shift.id}")
    assert places.inner_text() == "1 of 5 places taken"
    # The bell listens for the sign-up event and refreshes itself.
    with page.expect_request(lambda req: req.url.endswith("/notifications/bell")):
        box.locator("form[action$='/signup'] button").click()
    box.locator("form[action$='/cancel']").wait_for()
    assert places.inner_text() == "2 of 5 places taken"
    assert "You have a place" in box.inner_text()
    assert page.url == detail_url  # swapped in place, no navigation
    assert any(url.endswith(f"/shifts/{shift.id}/signup") for url in htmx_requests)
    assert _row(shift, person_id) == (2, "confirmed")

    box.locator("form[action$='/cancel'] button").click()
    box.locator("form[action$='/signup']").wait_for()
    assert places.inner_text() == "1 of 5 places taken"
    assert page.url == detail_url
    assert any(url.endswith(f"/shifts/{shift.id}/cancel") for url in htmx_requests)
    assert _row(shift, person_id) == (1, "cancelled")

    # Nothing wider than the phone's screen; no script errors, no CSP violations.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("window.cspViolations") == []
    assert page.problems == []


@needs_browser
def test_a_lost_answer_and_a_second_tap_sign_up_once(world, live_server, browser_page):
    """The network drops the sign-up's answer after the server took the place; the volunteer
    taps again. htmx resends the same Idempotency-Key, so the server answers with the first
    result (the page reloads showing the place) instead of refusing a second sign-up."""
    page = browser_page
    shift = _shift_with_one_place_taken(world)
    person_id = world.a.volunteer.person.id
    keys: list[str | None] = []
    answers = {"dropped": 0}

    def drop_first_answer(route) -> None:  # noqa: ANN001
        keys.append(route.request.headers.get("idempotency-key"))
        if answers["dropped"] == 0:
            route.fetch()  # the server does the work...
            answers["dropped"] += 1
            route.abort("connectionreset")  # ...and the phone never hears back
        else:
            route.continue_()

    page.goto(f"{live_server}/login")
    page.fill("#identifier", "volunteer_a")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.click("form.lang button[value=en]")
    page.wait_for_load_state()
    page.goto(f"{live_server}/shifts/{shift.id}")
    page.route(f"**/shifts/{shift.id}/signup", drop_first_answer)

    box = page.locator(f"#signup-{shift.id}")
    box.locator("form[action$='/signup'] button").click()
    page.locator("#flash .flash-error").wait_for()
    assert "No connection" in page.locator("#flash").inner_text()
    assert _row(shift, person_id) == (2, "confirmed")  # the first tap did take the place

    with page.expect_navigation():  # the server replays: HX-Redirect to this page
        box.locator("form[action$='/signup'] button").click()
    page.locator(f"#signup-{shift.id} form[action$='/cancel']").wait_for()
    assert page.locator(f"#places-{shift.id}").inner_text() == "2 of 5 places taken"
    assert "already" not in page.locator("main").inner_text()
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert _row(shift, person_id) == (2, "confirmed")
    db.session.commit()
    signups = db.session.scalars(select(Signup).where(Signup.shift_id == shift.id)).all()
    assert len(signups) == 2  # the other volunteer's and this one's: nothing twice
    # The dropped answer is logged (the browser's reset, htmx's send error); nothing else.
    expected = ("ERR_CONNECTION_RESET", "htmx:sendError", "htmx:afterRequest")
    assert [p for p in page.problems if not any(mark in p for mark in expected)] == []
