"""A volunteer signs up and cancels on a phone in a real browser (htmx swaps in place), and the
week view stacks its days on a phone and shows them side by side on a wide screen."""

from __future__ import annotations

import re
from datetime import time, timedelta

from portal.core.timeutil import local_to_utc, local_today
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD
from tests.patrols.conftest import su_hold, su_make_shift, su_make_volunteer, su_signup_of

live_server = browser_fixtures.live_server
browser_page = browser_fixtures.browser_page


def _numbers(text: str) -> list[str]:
    return sorted(re.findall(r"\d+", text))


def _sign_in(page, live_server: str, username: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#identifier", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")


@needs_browser
def test_volunteer_signs_up_and_cancels_on_a_phone(world, live_server, browser_page):
    page = browser_page
    shift = su_make_shift(world.a, capacity=2, title="手机报名巡逻")
    su_hold(shift, su_make_volunteer(world.a, name="王秀兰").person)
    me = world.a.volunteer.person
    htmx_posts = []
    page.on(
        "request",
        lambda req: (
            htmx_posts.append(req.url)
            if req.method == "POST" and req.headers.get("hx-request")
            else None
        ),
    )
    _sign_in(page, live_server, "volunteer_a")

    page.goto(f"{live_server}/shifts")
    page.click(f"#shift-{shift.id} a")
    page.wait_for_url(f"{live_server}/shifts/{shift.id}")
    box = page.locator(f"#signup-{shift.id}")
    going = page.locator(f"#going-{shift.id}")
    assert _numbers(page.locator(f"#places-{shift.id}").inner_text()) == ["1", "2"]
    assert "王*兰" in going.inner_text() and me.name not in going.inner_text()

    box.locator("form[action$='/signup'] button").click()
    box.locator("form[action$='/cancel']").wait_for()
    assert page.url == f"{live_server}/shifts/{shift.id}"  # swapped in place
    assert _numbers(page.locator(f"#places-{shift.id}").inner_text()) == ["2", "2"]
    going.get_by_text(me.name).wait_for()  # the list reloaded itself on "signup-changed"
    assert su_signup_of(shift, me).status == "confirmed"

    page.locator(f"#signup-{shift.id} form[action$='/cancel'] button").click()
    page.locator(f"#signup-{shift.id} form[action$='/signup']").wait_for()
    assert _numbers(page.locator(f"#places-{shift.id}").inner_text()) == ["1", "2"]
    page.wait_for_function(
        "([id, name]) => !document.getElementById(id).innerText.includes(name)",
        arg=[f"going-{shift.id}", me.name],
    )
    assert su_signup_of(shift, me).status == "cancelled"
    assert [url.rsplit("/", 1)[1] for url in htmx_posts] == ["signup", "cancel"]

    # The button fits the phone's screen and is a comfortable tap target.
    button = page.locator(f"#signup-{shift.id} button").bounding_box()
    assert button["height"] >= 44 and button["x"] + button["width"] <= 390
    assert page.problems == []


def _day_boxes(page) -> list[dict]:
    return [page.locator(".week-day").nth(i).bounding_box() for i in range(7)]


@needs_browser
def test_week_view_is_a_list_on_phones_and_columns_on_wide_screens(
    world, live_server, browser_page
):
    page = browser_page
    day = local_today() + timedelta(days=7)
    monday = day - timedelta(days=day.weekday())
    su_make_shift(world.a, title="周一巡逻", starts_at=local_to_utc(monday, time(19)))
    su_make_shift(world.a, title="周三巡逻", starts_at=local_to_utc(monday + timedelta(2), time(8)))
    _sign_in(page, live_server, "volunteer_a")

    page.goto(f"{live_server}/shifts?view=week&week={monday.isoformat()}")
    boxes = _day_boxes(page)
    assert all(later["y"] > earlier["y"] for earlier, later in zip(boxes, boxes[1:], strict=False))
    assert "周三巡逻" in page.locator(".week-day").nth(2).inner_text()

    page.set_viewport_size({"width": 1280, "height": 900})
    page.reload()
    boxes = _day_boxes(page)
    assert len({round(box["y"]) for box in boxes}) == 1
    assert all(later["x"] > earlier["x"] for earlier, later in zip(boxes, boxes[1:], strict=False))

    page.click(f"a[href='/shifts?view=week&week={(monday + timedelta(7)).isoformat()}']")
    page.wait_for_url(re.compile(r".*week=" + (monday + timedelta(7)).isoformat()))
    assert "周一巡逻" not in page.locator("#shift-results").inner_text()
    assert page.problems == []
