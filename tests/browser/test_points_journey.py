"""A volunteer on a phone: their points, agreeing to the leaderboard (htmx, in place), finding
themselves there masked, and an hours certificate that anyone can check."""

from __future__ import annotations

import re
from decimal import Decimal

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD


def _checks(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url
    assert page.evaluate("window.cspViolations") == [], page.url


@needs_browser
def test_volunteer_points_leaderboard_and_certificate(world, live_server, browser_page):
    page = browser_page
    person = world.a.volunteer.person
    ledger.award(
        person.id, kind="patrol", source_type="signup", source_id=1, base_points=Decimal(40),
        hours=Decimal("4"), occurred_on=local_today(), note="育才花园夜间巡逻",
    )  # fmt: skip
    db.session.commit()
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
    page.click("form.lang button[value=en]")
    page.wait_for_load_state()

    # The nav's group opens without a page load and leads to My points.
    page.click("nav details.menu summary >> nth=0")
    page.locator("nav a[href='/points/leaderboard']").wait_for()
    page.goto(f"{live_server}/points")
    assert page.locator("#points-balance").inner_text() == "40"
    assert page.locator("#points-hours").inner_text().startswith("4")
    _checks(page)

    listing = page.locator("#listing")
    assert "not shown on leaderboards" in listing.inner_text()
    url = page.url
    listing.locator("button[type=submit]").click()
    page.locator("#listing button.danger").wait_for()
    assert page.url == url  # swapped in place
    db.session.commit()
    assert db.session.get(PointsAccount, person.id).listed is True

    page.goto(f"{live_server}/points/leaderboard?scope=community&period=month")
    board = page.locator("#board").inner_text()
    masked = person.name[0] + "*" * (len(person.name) - 2) + person.name[-1]
    assert masked in board and person.name not in page.locator("#board").inner_html()
    _checks(page)

    page.goto(f"{live_server}/certificates")
    page.click("#certificate-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/certificates/TX\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    text = page.locator("main").inner_text()
    assert "4" in text and masked in text
    pdf_link = page.locator("a[href$='/pdf']").first.get_attribute("href")
    response = page.request.get(f"{live_server}{pdf_link}")
    assert response.status == 200 and response.body()[:5] == b"%PDF-"
    _checks(page)
    assert page.problems == []
