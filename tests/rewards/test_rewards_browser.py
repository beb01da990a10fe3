"""The shop on a phone in a real browser: a volunteer redeems (htmx), sees the voucher code and
QR; the secretary finds the code and hands the reward over. Nothing is wider than the screen
and the Content-Security-Policy reports nothing."""

from __future__ import annotations

import io

from PIL import Image

from portal.core.photos import prepare_photo, store_photo
from portal.extensions import db
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import needs_browser
from tests.factories import PASSWORD
from tests.rewards.conftest import rw_balance, rw_give_points, rw_make_reward, rw_redemptions

live_server = browser_fixtures.live_server
browser_page = browser_fixtures.browser_page


def _sign_in(page, live_server: str, username: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#identifier", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def _sign_out(page) -> None:
    page.context.clear_cookies()  # another person on another phone


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width


@needs_browser
def test_volunteer_redeems_and_secretary_hands_over_on_a_phone(
    app, world, live_server, browser_page, rw_uploads
):
    from werkzeug.datastructures import FileStorage

    page = browser_page
    rw_give_points(world.a.volunteer.person, 100)
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "teal").save(buffer, format="JPEG")
    with app.test_request_context():
        upload = FileStorage(stream=io.BytesIO(buffer.getvalue()), filename="p.jpg")
        photo = store_photo(prepare_photo(upload))
    reward = rw_make_reward(world.a, name="定制雨伞", cost=60, stock=3, photo=photo)
    rw_make_reward(world.a, name="已兑完的毛巾", cost=5, stock=0)
    db.session.commit()

    _sign_in(page, live_server, "volunteer_a")
    page.goto(f"{live_server}/rewards")
    assert "100" in page.locator("#balance").inner_text()
    assert page.locator(".reward-card.sold-out").count() == 1
    _fits(page)
    page.click(f"#reward-{reward.id} a")
    page.wait_for_url(f"{live_server}/rewards/{reward.id}")
    button = page.locator(f"#redeem-{reward.id} button")
    box = button.bounding_box()
    assert box["height"] >= 44 and box["x"] + box["width"] <= 390
    button.click()
    page.wait_for_url(f"{live_server}/rewards/vouchers/*")  # HX-Redirect after the htmx POST
    (redemption,) = rw_redemptions(reward.id)
    assert page.locator("#voucher-code").inner_text() == redemption.voucher_code
    assert page.locator("img.voucher-qr").evaluate("img => img.naturalWidth") > 0
    _fits(page)
    assert rw_balance(world.a.volunteer.person.id) == 40

    _sign_out(page)
    _sign_in(page, live_server, "secretary_a")
    page.goto(f"{live_server}/rewards/redemptions")
    page.fill("#code", redemption.voucher_code.lower())
    page.press("#code", "Enter")
    # Enter fires the input's change and the form's submit; hx-sync="this:replace" keeps one answer
    page.wait_for_url(f"**code={redemption.voucher_code.lower()}*")
    row = page.locator(f"#redemption-{redemption.id}")
    row.wait_for()
    _fits(page)
    row.locator("form[action$='/hand-over'] button").click()
    row.locator(".badge-handed_over").wait_for()
    db.session.commit()
    assert rw_redemptions(reward.id)[0].status == "handed_over"
    assert page.problems == []
