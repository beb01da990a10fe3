"""Managing rewards: creating and editing with a message per field and nothing half-saved, the
photo stored re-encoded (no EXIF), and the list of rewards with its counts in a fixed number of
queries."""

from __future__ import annotations

import html
import io
import re
from datetime import date, timedelta

import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.rewards.models import Reward
from tests import factories
from tests.helpers import forged_jpeg
from tests.rewards.conftest import (
    rw_count_queries,
    rw_give_points,
    rw_make_reward,
    rw_redeemed,
    rw_reload,
)

# A year ahead: within the two years a reward's window may reach (a year of margin either way,
# so the date the test computes and the one the app checks may even differ by a day).
UNTIL = local_today() + timedelta(days=365)
VALID = {
    "name": "Rice 5 kg",
    "description": "Collect at the community office, Monday to Friday.",
    "cost": "80",
    "stock": "12",
    "per_person_limit": "2",
    "available_from": "2026-01-01",
    "available_until": UNTIL.isoformat(),
    "active": "y",
}


def _form(**changes) -> dict:
    data = {**VALID, **changes}
    return {k: v for k, v in data.items() if v is not None}


def _errors(response) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'class="error"[^>]*>([^<]*)<', _text(response))]


def _field_errors(response, field: str) -> list[str]:
    block = re.search(
        rf'<div class="msg" id="{field}-msg">(.*?)</div>', _text(response), flags=re.S
    )
    assert block, field
    return [html.unescape(e) for e in re.findall(r">([^<]+)</p>", block.group(1))]


def _text(response) -> str:
    return response.get_data(as_text=True)


def _rewards() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count(Reward.id)))


def _jpeg(with_gps: bool = False, size=(120, 90)) -> bytes:
    exif = Image.Exif()
    if with_gps:
        exif[ExifTags.Base.Make] = "TestPhone"
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


# --- creating -----------------------------------------------------------------------------------


def test_secretary_creates_a_reward(client, auth, world, rw_english):
    auth.login("secretary_a")
    response = client.post("/rewards/new", data=_form())
    assert response.status_code == 303
    assert response.headers["Location"] == "/rewards/manage"
    reward = db.session.scalars(select(Reward)).one()
    assert (reward.community_id, reward.name, reward.cost, reward.stock) == (
        world.a.community.id,
        "Rice 5 kg",
        80,
        12,
    )
    assert reward.per_person_limit == 2
    assert (reward.available_from, reward.available_until) == (date(2026, 1, 1), UNTIL)
    assert reward.active is True and reward.photo is None
    assert reward.created_by_id == world.a.secretary.id
    page = _text(client.get("/rewards/manage"))
    assert "Rice 5 kg" in page and "is now in the shop" in page


def test_empty_limit_and_window_mean_none(client, auth, world):
    auth.login("secretary_a")
    data = _form(per_person_limit="", available_from="", available_until="", active=None)
    assert client.post("/rewards/new", data=data).status_code == 303
    reward = db.session.scalars(select(Reward)).one()
    assert reward.per_person_limit is None
    assert (reward.available_from, reward.available_until) == (None, None)
    assert reward.active is False  # an unticked box


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Give the reward a name."),
        ("name", "x" * 61, "At most 60 characters."),
        ("description", "x" * 501, "At most 500 characters."),
        ("cost", "", "Enter the cost in points."),
        ("cost", "0", "The cost must be from 1 to 100000 points."),
        ("cost", "-5", "The cost must be from 1 to 100000 points."),
        ("cost", "100001", "The cost must be from 1 to 100000 points."),
        ("cost", "ten", "Enter a whole number, for example 50."),
        ("cost", "2.5", "Enter a whole number, for example 50."),
        ("stock", "", "Enter how many units there are."),
        ("stock", "-1", "The stock cannot be below 0."),
        ("stock", "0", "A new reward needs at least 1 unit in stock."),
        ("per_person_limit", "0", "Leave empty for no limit, or enter a number from 1 to 1000."),
        ("per_person_limit", "-3", "Leave empty for no limit, or enter a number from 1 to 1000."),
        ("available_from", "2026-13-45", "Enter a date such as 2026-12-01."),
        ("available_until", "2025-12-31", "The last day cannot be before the first day."),
    ],
)
def test_create_refuses_bad_input_and_keeps_what_was_typed(
    client, auth, world, rw_english, field, value, message
):
    auth.login("secretary_a")
    response = client.post("/rewards/new", data=_form(**{field: value}))
    assert response.status_code == 200
    assert any(e.startswith(message) for e in _field_errors(response, field)), _errors(response)
    assert _rewards() == 0
    page = _text(response)
    # Nothing typed is lost.
    for name in ("cost", "stock", "per_person_limit"):
        if name != field:
            assert f'name="{name}" type="text" value="{VALID[name]}"' in page or (
                f'value="{VALID[name]}"' in page
            )
    if field != "description":
        assert VALID["description"] in page


def test_every_message_shows_at_once(client, auth, world, rw_english):
    auth.login("secretary_a")
    data = _form(name="", cost="abc", stock="-2", available_until="2025-01-01")
    response = client.post("/rewards/new", data=data)
    assert response.status_code == 200
    assert _field_errors(response, "name") == ["Give the reward a name."]
    assert _field_errors(response, "cost") == ["Enter a whole number, for example 50."]
    assert _field_errors(response, "stock") == ["The stock cannot be below 0."]
    assert _field_errors(response, "available_until") == [
        "The last day cannot be before the first day."
    ]
    assert _rewards() == 0


FAR = "Choose a date within two years from today"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("available_until", "9999-12-31", FAR),
        ("available_until", (local_today() + timedelta(days=3 * 365)).isoformat(), FAR),
        ("available_from", "9999-01-01", FAR),
        ("available_until", (local_today() - timedelta(days=400)).isoformat(), "The last day has"),
    ],
    ids=["until 9999", "until in three years", "from 9999", "until last year"],
)
def test_the_window_stays_within_two_years(client, auth, world, rw_english, field, value, message):
    auth.login("secretary_a")
    data = _form(**{"available_from": "", field: value})
    response = client.post("/rewards/new", data=data)
    assert response.status_code == 200
    assert any(e.startswith(message) for e in _field_errors(response, field)), _errors(response)
    assert _rewards() == 0


def test_the_window_limit_is_two_years_from_today(app, rw_english):
    from portal.rewards.services import RewardValues, check_reward

    today = date(2026, 3, 1)
    values = {"name": "米", "cost": 5, "stock": 1}
    with app.test_request_context():
        ok = RewardValues(**values, available_until=date(2028, 3, 1))
        assert check_reward(ok, creating=True, today=today) == {}
        late = RewardValues(**values, available_until=date(2028, 3, 2))
        assert set(check_reward(late, creating=True, today=today)) == {"available_until"}
        # An old reward keeps a window that has ended when it is edited.
        ended = RewardValues(
            **values, available_from=date(2020, 1, 1), available_until=date(2025, 1, 1)
        )
        assert check_reward(ended, creating=False, today=today) == {}


def test_messages_are_in_chinese_by_default(client, auth, world):
    auth.login("secretary_a")
    response = client.post("/rewards/new", data=_form(cost="0"))
    assert response.status_code == 200
    assert _field_errors(response, "cost")  # a message, in whatever the catalogue holds
    assert _rewards() == 0


# --- photos -------------------------------------------------------------------------------------


def test_photo_is_stored_re_encoded_without_exif(client, auth, world, rw_uploads):
    auth.login("secretary_a")
    data = _form(photo=(io.BytesIO(_jpeg(with_gps=True)), "IMG_0001.JPG"))
    response = client.post("/rewards/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    reward = db.session.scalars(select(Reward)).one()
    assert re.fullmatch(r"\d{4}/[0-9a-f]{32}\.jpg", reward.photo)
    stored = (rw_uploads / reward.photo).read_bytes()
    assert b"TestPhone" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and len(image.getexif()) == 0

    served = client.get(f"/rewards/{reward.id}/photo")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.data == stored
    # Everyone signed in of the community sees it, a subdistrict admin too.
    for username in ("resident_a", "admin_a"):
        auth.logout()
        auth.login(username)
        assert client.get(f"/rewards/{reward.id}/photo").status_code == 200
    auth.logout()
    auth.login("resident_b")
    assert client.get(f"/rewards/{reward.id}/photo").status_code == 404


def test_a_file_that_is_not_a_photo_is_refused(client, auth, world, rw_uploads, rw_english):
    auth.login("secretary_a")
    data = _form(photo=(io.BytesIO(b"not an image at all" * 10), "evil.jpg"))
    response = client.post("/rewards/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert _field_errors(response, "photo") == [
        "This file is not a photo. Upload a JPEG, PNG or WebP image."
    ]
    assert "please choose it again" in _text(response)
    assert _rewards() == 0
    assert not rw_uploads.exists() or not any(rw_uploads.rglob("*.*"))


def test_a_photo_over_the_pixel_limit_is_refused(client, auth, world, rw_uploads, rw_english):
    auth.login("secretary_a")
    data = _form(photo=(io.BytesIO(forged_jpeg(6000, 4001)), "huge.jpg"))
    response = client.post("/rewards/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert _field_errors(response, "photo") == [
        "The photo has too many pixels: at most 24 megapixels. Choose a smaller photo."
    ]
    assert _rewards() == 0


def test_a_good_photo_is_not_kept_when_a_field_is_wrong(
    client, auth, world, rw_uploads, rw_english
):
    auth.login("secretary_a")
    data = _form(cost="0", photo=(io.BytesIO(_jpeg()), "rice.jpg"))
    response = client.post("/rewards/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "please choose it again" in _text(response)
    assert _rewards() == 0
    assert not rw_uploads.exists() or not any(rw_uploads.rglob("*.*"))


def test_replacing_and_removing_the_photo(client, auth, world, rw_uploads):
    auth.login("secretary_a")
    data = _form(photo=(io.BytesIO(_jpeg()), "one.jpg"))
    client.post("/rewards/new", data=data, content_type="multipart/form-data")
    reward = db.session.scalars(select(Reward)).one()
    first = reward.photo
    data = _form(photo=(io.BytesIO(_jpeg(size=(60, 60))), "two.jpg"))
    response = client.post(
        f"/rewards/{reward.id}/edit", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 303
    second = rw_reload(Reward, reward.id).photo
    assert second and second != first
    assert not (rw_uploads / first).exists() and (rw_uploads / second).exists()

    response = client.post(f"/rewards/{reward.id}/edit", data=_form(remove_photo="y"))
    assert response.status_code == 303
    assert rw_reload(Reward, reward.id).photo is None
    assert not (rw_uploads / second).exists()
    assert client.get(f"/rewards/{reward.id}/photo").status_code == 404


# --- editing ------------------------------------------------------------------------------------


def test_edit_shows_the_values_and_saves_changes(client, auth, world, rw_english):
    reward = rw_make_reward(world.a, name="Umbrella", cost=30, stock=4)
    auth.login("secretary_a")
    page = _text(client.get(f"/rewards/{reward.id}/edit"))
    assert 'value="Umbrella"' in page and 'value="30"' in page and 'value="4"' in page
    response = client.post(
        f"/rewards/{reward.id}/edit", data=_form(name="Big umbrella", cost="35", stock="0")
    )
    assert response.status_code == 303
    saved = rw_reload(Reward, reward.id)
    # Editing sets the units left; 0 is allowed on edit (sold out).
    assert (saved.name, saved.cost, saved.stock) == ("Big umbrella", 35, 0)


def test_edit_stock_is_the_new_number_of_units_left(client, auth, world):
    reward = rw_make_reward(world.a, cost=10, stock=5)
    rw_give_points(world.a.volunteer.person, 100)
    rw_redeemed(world.a, reward)
    assert rw_reload(Reward, reward.id).stock == 4
    auth.login("secretary_a")
    client.post(f"/rewards/{reward.id}/edit", data=_form(cost="10", stock="20"))
    assert rw_reload(Reward, reward.id).stock == 20


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stock", "-1", "The stock cannot be below 0."),
        ("cost", "0", "The cost must be from 1 to 100000 points."),
        ("available_until", "2025-12-31", "The last day cannot be before the first day."),
        ("name", "", "Give the reward a name."),
    ],
)
def test_edit_refuses_bad_input_and_changes_nothing(
    client, auth, world, rw_english, field, value, message
):
    reward = rw_make_reward(world.a, name="Umbrella", cost=30, stock=4)
    auth.login("secretary_a")
    response = client.post(f"/rewards/{reward.id}/edit", data=_form(**{field: value}))
    assert response.status_code == 200
    assert _field_errors(response, field) == [message]
    saved = rw_reload(Reward, reward.id)
    assert (saved.name, saved.cost, saved.stock, saved.available_until) == (
        "Umbrella",
        30,
        4,
        None,
    )
    assert 'value="Rice 5 kg"' in _text(response) or field == "name"


def test_edit_of_another_communitys_reward_is_not_found(client, auth, world):
    reward = rw_make_reward(world.b, name="西城奖品", cost=30)
    auth.login("secretary_a")
    assert client.get(f"/rewards/{reward.id}/edit").status_code == 404
    assert client.post(f"/rewards/{reward.id}/edit", data=_form()).status_code == 404
    assert rw_reload(Reward, reward.id).name == "西城奖品"


# --- the list -----------------------------------------------------------------------------------


def test_list_shows_every_reward_with_counts(client, auth, world, rw_english):
    on = rw_make_reward(world.a, name="On offer", cost=10, stock=3)
    rw_make_reward(world.a, name="Taken off", active=False)
    rw_make_reward(world.a, name="Gone", stock=0)
    rw_make_reward(world.b, name="Other community")
    rw_give_points(world.a.volunteer.person, 100)
    rw_redeemed(world.a, on)
    rw_redeemed(world.a, on)
    auth.login("secretary_a")
    page = _text(client.get("/rewards/manage"))
    assert "On offer" in page and "Taken off" in page and "Gone" in page
    assert "Other community" not in page
    row = re.search(rf'<tr id="reward-{on.id}".*?</tr>', page, flags=re.S).group(0)
    cells = re.findall(r"<td>(.*?)</td>", row, flags=re.S)
    assert cells[2].strip() == "1"  # units left
    assert re.sub(r"<[^>]+>", "", cells[3]).strip() == "2"  # waiting to be handed over
    assert "Sold out" in page and "Not on offer" in page


def test_subdistrict_admin_reads_the_list_without_edit_links(client, auth, world):
    reward = rw_make_reward(world.a, name="On offer")
    auth.login("admin_a")
    page = _text(client.get("/rewards/manage"))
    assert "On offer" in page
    assert f"/rewards/{reward.id}/edit" not in page
    assert "/rewards/new" not in page


def _fill(side, n: int) -> None:
    for i in range(n):
        db.session.add(
            Reward(community_id=side.community.id, name=f"奖品{i}", cost=10 + i, stock=5)
        )
    db.session.commit()


def test_list_runs_a_fixed_number_of_queries(client, auth, world):
    auth.login("secretary_a")
    _fill(world.a, 3)
    reward = db.session.scalars(select(Reward)).first()
    rw_give_points(world.a.volunteer.person, 1000)
    rw_redeemed(world.a, reward)
    with rw_count_queries() as small:
        assert client.get("/rewards/manage").status_code == 200
    _fill(world.a, 27)
    for other in db.session.scalars(select(Reward).limit(5)):
        rw_redeemed(world.a, other)
    with rw_count_queries() as large:
        assert client.get("/rewards/manage").status_code == 200
    assert small["n"] == large["n"]


def test_subdistrict_admin_sees_each_rewards_community(client, auth, world):
    second = factories.make_community(world.a.subdistrict, name="南门社区")
    db.session.add(Reward(community_id=second.id, name="南门奖品", cost=5, stock=1))
    db.session.commit()
    rw_make_reward(world.a, name="东城奖品")
    auth.login("admin_a")
    page = _text(client.get("/rewards/manage"))
    assert "南门奖品" in page and "东城奖品" in page
    assert "南门社区" in page and world.a.community.name in page
