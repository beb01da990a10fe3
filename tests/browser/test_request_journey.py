"""A resident submits a request on a phone; the grid worker accepts it (htmx) and dispatches it."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.help.models import Category, HelpRequest, RequestEvent
from portal.volunteers.models import Volunteer
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD

DESCRIPTION = "卫生间水龙头一直滴水，想请会修的邻居帮忙换个阀芯。"


def _catalogue(community_id: int) -> Category:
    major = Category(
        community_id=community_id,
        code="help",
        name_zh="家家帮",
        name_en="Neighbour help",
        kind="report",
    )
    db.session.add(major)
    db.session.flush()
    minor = Category(
        community_id=community_id, parent_id=major.id, code="help.repair", name_zh="小修小补",
        name_en="Small repair", kind="report", handler="grid_worker", time_limit_hours=48,
    )  # fmt: skip
    db.session.add(minor)
    db.session.commit()
    return minor


def _sign_in(page, live_server: str, username: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#identifier", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")


@needs_browser
def test_resident_submits_and_grid_worker_dispatches(world, live_server, browser_page):
    page = browser_page
    minor = _catalogue(world.a.community.id)
    major_id, minor_id = minor.parent_id, minor.id
    volunteer = db.session.scalar(
        select(Volunteer).where(Volunteer.person_id == world.a.volunteer.person_id)
    )
    volunteer_id = volunteer.id

    # The resident, on a phone.
    _sign_in(page, live_server, "resident_a")
    page.goto(f"{live_server}/requests/new")
    # Choosing the major swaps in its minors (htmx): pick the minor only once they are there.
    with page.expect_response(lambda r: "/requests/new/categories" in r.url):
        page.select_option("#major", str(major_id))
    expect(page.locator(".htmx-request, .htmx-settling")).to_have_count(0)
    page.locator(f"#category option[value='{minor_id}']").wait_for(state="attached")
    page.select_option("#category", str(minor_id))
    page.fill("#description", DESCRIPTION)
    with page.expect_navigation(url=re.compile(r"/requests/\d+$")):
        page.locator("form[action='/requests/new'] button[type=submit]").click()
    assert DESCRIPTION in page.locator("main").inner_text()

    db.session.commit()  # end the test's read snapshot: see what the server wrote
    req = db.session.scalar(select(HelpRequest).where(HelpRequest.description == DESCRIPTION))
    assert req is not None and req.status == "submitted"
    assert page.url == f"{live_server}/requests/{req.id}"
    assert req.requester_id == world.a.resident.person_id
    assert req.grid_id == world.a.grid.id
    assert req.handler_user_id == world.a.gridworker.id
    request_id = req.id
    assert page.problems == []

    # The grid worker, in a browser of their own.
    context = page.context.browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN"
    )
    worker = context.new_page()
    problems: list[str] = []
    worker.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    worker.on("pageerror", lambda exc: problems.append(str(exc)))
    htmx_requests: list[str] = []
    worker.on(
        "request",
        lambda r: htmx_requests.append(r.url) if r.headers.get("hx-request") else None,
    )
    try:
        _sign_in(worker, live_server, "gridworker_a")
        worker.goto(f"{live_server}/handling")
        row = worker.locator(f"#request-{request_id}")
        row.locator("form[action$='/accept'] button").click()
        row.locator("form[action$='/accept']").wait_for(state="detached")
        assert worker.url == f"{live_server}/handling"  # swapped in place, no navigation
        assert any(url.endswith(f"/handling/{request_id}/accept") for url in htmx_requests)
        db.session.commit()
        assert db.session.get(HelpRequest, request_id).status == "accepted"

        row.locator(f"a[href$='/requests/{request_id}/dispatch']").click()
        worker.wait_for_url(f"{live_server}/requests/{request_id}/dispatch")
        worker.check(f"#volunteer-{volunteer_id}")
        worker.locator(
            f"form[action$='/requests/{request_id}/dispatch'] button[type=submit]"
        ).click()
        worker.wait_for_url(lambda url: not url.endswith("/dispatch"))
        assert problems == []
    finally:
        context.close()

    db.session.commit()
    req = db.session.get(HelpRequest, request_id)
    assert req.status == "dispatched"
    assert req.volunteer_id == world.a.volunteer.person_id
    actions = db.session.scalars(
        select(RequestEvent.action)
        .where(RequestEvent.request_id == request_id)
        .order_by(RequestEvent.id)
    ).all()
    assert actions == ["submit", "route", "accept", "dispatch"]
    assert page.problems == []
