"""Issue 15: photos are decoded before the write transaction begins, and a photo with more
pixels than any phone takes is refused from its header, before it is decoded."""

from __future__ import annotations

import contextvars
import io
import sqlite3

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from portal.core import photos
from portal.extensions import db
from portal.help.models import HelpRequest, RequestPhoto
from tests import factories
from tests.help.conftest import in_image
from tests.helpers import forged_jpeg, jpeg_of

DESCRIPTION = "楼下的路灯坏了，晚上很黑"


def _data(side, photo: bytes | None = None, **kw) -> dict:
    data = {
        "category": str(side.cat.water.id),
        "description": DESCRIPTION,
        "where": "address",
        "building": "",
        "address": "幸福路 8 号",
        "preferred_time": "晚上七点以后",
        "urgency": "normal",
        **kw,
    }
    if photo is not None:
        data["photos"] = [(io.BytesIO(photo), "IMG_0042.JPG")]
    return data


def _submit(client, data: dict):
    return client.post("/requests/new", data=data, content_type="multipart/form-data")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "The photo has too many pixels: at most 24 megapixels. Choose a smaller photo."),
        ("zh", "照片像素过高：最多 2400 万像素。请换一张像素较低的照片。"),
    ],
)
@pytest.mark.parametrize(
    "size",
    [(6000, 4001), (7000, 7000), (20000, 20000)],
    ids=["just-over-24mp", "attack-49mp", "bomb-400mp"],
)
def test_photo_over_the_pixel_limit_is_refused_and_the_text_kept(
    client, auth, in_world, in_uploads, monkeypatch, lang, message, size
):
    decoded = []
    monkeypatch.setattr(photos, "_decode", lambda image: decoded.append(image) or image)
    auth.login("resident_a")
    client.post("/language", data={"lang": lang})
    response = _submit(client, _data(in_world.a, forged_jpeg(*size)))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert message in body
    assert DESCRIPTION in body and "幸福路 8 号" in body and "晚上七点以后" in body
    assert decoded == []  # refused from the header alone
    assert _count(HelpRequest) == 0 and _count(RequestPhoto) == 0
    assert not in_uploads.exists() or not any(in_uploads.rglob("*.*"))


def test_photo_at_the_default_limit_is_kept_decoded_at_half_scale(
    client, auth, in_world, in_uploads, monkeypatch
):
    decoded_sizes = []
    real = photos._decode

    def watching(image):
        decoded = real(image)
        decoded_sizes.append(decoded.size)
        return decoded

    monkeypatch.setattr(photos, "_decode", watching)
    auth.login("resident_a")
    response = _submit(client, _data(in_world.a, jpeg_of(6000, 4000)))  # 24,000,000 pixels
    assert response.status_code == 303
    assert decoded_sizes == [(3000, 2000)]  # JPEG draft: a quarter of the pixels in memory
    photo = db.session.scalars(select(RequestPhoto)).one()
    with Image.open(in_uploads / photo.file) as stored:
        assert stored.size == (2048, 1365)


def test_the_limit_is_configurable_and_counts_pixels(client, auth, in_world, in_uploads, app):
    app.config["PHOTO_MAX_PIXELS"] = 640 * 480
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    response = _submit(client, _data(in_world.a, jpeg_of(641, 480)))
    assert "The photo has too many pixels" in response.get_data(as_text=True)
    assert _count(HelpRequest) == 0
    response = _submit(client, _data(in_world.a, jpeg_of(480, 640)))
    assert response.status_code == 303
    assert _count(RequestPhoto) == 1


@pytest.mark.parametrize(
    ("fmt", "size", "allowed"),
    [
        ("PNG", (3000, 2000), True),
        ("PNG", (3000, 2001), False),
        ("WEBP", (2000, 1500), True),
        ("WEBP", (2000, 1501), False),
    ],
)
def test_images_decoded_whole_have_a_lower_limit(
    client, auth, in_world, in_uploads, fmt, size, allowed
):
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format=fmt)
    response = _submit(client, _data(in_world.a, buffer.getvalue()))
    assert (response.status_code == 303) is allowed
    if not allowed:
        assert "The photo has too many pixels" in response.get_data(as_text=True)


def test_progressive_jpeg_has_the_lower_limit(client, auth, in_world, in_uploads):
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    response = _submit(client, _data(in_world.a, jpeg_of(3000, 3001, progressive=True)))
    assert "at most 9 megapixels" in response.get_data(as_text=True)
    assert _count(HelpRequest) == 0


def _lock_is_free(path: str) -> bool:
    """Another connection can take SQLite's write lock at once."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def _sign_in_elsewhere(app, username: str) -> int:
    """Another person signs in (a write) while this request runs: a request of its own, in a
    fresh context (its own session and connection), as another gunicorn worker would."""

    def run() -> int:
        other = app.test_client()
        token = other.csrf_token()
        response = FlaskClient.open(
            other,
            "/login",
            method="POST",
            data={"identifier": username, "password": factories.PASSWORD},
            headers={"X-CSRFToken": token},
            buffered=True,
        )
        return response.status_code

    return contextvars.Context().run(run)


def test_photos_decode_before_the_write_begins_and_others_write_meanwhile(
    client, auth, in_world, in_uploads, app, monkeypatch
):
    seen: dict = {}
    real = photos._decode

    def watching(image):
        session = db.session()  # the uploading request's own session
        seen["in_transaction"] = session.in_transaction()
        if db.engine.dialect.name == "sqlite":
            seen["lock_free"] = _lock_is_free(db.engine.url.database)
        seen["other_sign_in"] = _sign_in_elsewhere(app, "volunteer_a")
        return real(image)

    monkeypatch.setattr(photos, "_decode", watching)
    auth.login("resident_a")
    response = _submit(client, _data(in_world.a, in_image("JPEG", size=(800, 600))))
    assert response.status_code == 303
    assert seen["in_transaction"] is False
    if db.engine.dialect.name == "sqlite":
        assert seen["lock_free"] is True
    assert seen["other_sign_in"] == 303
    assert _count(HelpRequest) == 1 and _count(RequestPhoto) == 1


def test_decoding_under_the_sqlite_write_lock_is_refused(app, in_uploads):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    from werkzeug.datastructures import FileStorage

    from portal.database import begin_write

    with app.test_request_context(method="POST"):
        begin_write()
        with pytest.raises(RuntimeError):
            photos.prepare_photo(FileStorage(io.BytesIO(in_image("JPEG")), filename="a.jpg"))
        db.session.rollback()


def test_a_stored_photo_goes_with_a_transaction_that_does_not_commit(app, in_uploads):
    from werkzeug.datastructures import FileStorage

    def stored() -> list:
        return list(in_uploads.rglob("*.jpg")) if in_uploads.exists() else []

    with app.test_request_context():
        photo = photos.prepare_photo(FileStorage(io.BytesIO(in_image("JPEG")), filename="a.jpg"))
        db.session.commit()
        photos.store_photo(photo)
        assert len(stored()) == 1
        db.session.rollback()
        assert stored() == []
        name = photos.store_photo(photo)
        db.session.commit()
        assert [p.name for p in stored()] == [name.split("/")[1]]


def test_with_every_decode_slot_taken_a_photo_is_refused_at_once(
    client, auth, in_world, in_uploads, app, monkeypatch
):
    """A sync worker never waits for a slot: the person is asked to send it again."""
    decoded = []
    monkeypatch.setattr(photos, "_decode", lambda image: decoded.append(image) or image)
    app.config["PHOTO_DECODE_SLOTS"] = 1
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    with app.test_request_context(), photos._decode_slot() as held:
        assert held == 0
        response = _submit(client, _data(in_world.a, in_image("JPEG")))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Many photos are being sent right now. Please send it again in a moment." in body
    assert DESCRIPTION in body
    assert decoded == [] and _count(HelpRequest) == 0
