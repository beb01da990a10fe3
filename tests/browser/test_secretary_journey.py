"""The secretary's main journey in a real browser: sign in, approve through htmx, find in roster."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.volunteers.models import Volunteer
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD


@needs_browser
def test_secretary_approves_a_pending_volunteer_and_finds_them(world, live_server, browser_page):
    page = browser_page
    pending = world.a.pending_volunteer
    name = world.a.pending.person.name
    htmx_requests = []
    page.on(
        "request",
        lambda req: htmx_requests.append(req.url) if req.headers.get("hx-request") else None,
    )

    page.goto(f"{live_server}/login")
    page.fill("#identifier", "secretary_a")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/volunteers/queue")
    row = page.locator(f"#volunteer-{pending.id}")
    assert name in row.inner_text()
    row.locator("form[action$='/approve'] button").click()
    row.locator("form[action$='/approve']").wait_for(state="detached")
    assert page.url == f"{live_server}/volunteers/queue"  # swapped in place, no navigation
    assert any(url.endswith(f"/volunteers/{pending.id}/approve") for url in htmx_requests)

    db.session.commit()  # end the test's read snapshot: see what the server wrote
    approved = db.session.scalar(select(Volunteer).where(Volunteer.id == pending.id))
    assert approved.status == "approved"
    assert approved.decided_by_id == world.a.secretary.id

    page.goto(f"{live_server}/volunteers/")
    page.fill("input[name=q]", name)
    page.keyboard.press("Enter")
    results = page.locator("#roster-results")
    results.get_by_text(name).first.wait_for()
    assert name in results.inner_text()
    assert page.problems == []
